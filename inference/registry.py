"""The open registry of inference methods: ``register_method`` and what the layer asks of a method.

A method is a name, a family, the backends it runs on, its options, and a runner. The family
decides everything the rest of the layer does with the method's results (diagnostics, comparison
columns, report figures, CLI labels), so no code outside a method's own module names a method:

* ``mcmc``: draws from chains; R-hat, ESS and divergence warnings, ESS per second;
* ``vi``: a fitted approximation trained by optimization; its losses, its draws' PSIS k-hat;
* ``importance``: weighted draws of a proposal; k-hat and the log evidence;
* ``likelihood_free``: generated data fitted to the data, never the likelihood (implicit models).

A runner takes either

* the model lowered to a ``Potential`` (``takes="potential"``, NumPyro models; the default)::

      @register_method("rwm", family="mcmc", backends=("numpyro",),
                       options={"num_warmup": 1000, "num_samples": 1000, "num_chains": 4, "scale": 0.1})
      def rwm(potential, *, rng_key, num_warmup, num_samples, num_chains, scale):
          ...
          return draws  # (num_chains, num_samples, potential.dim), unconstrained

  and returns the draws, or ``(draws, stats)`` with per-draw sample statistics ``{name: (chain,
  draw)}``, or a whole ``InferenceResult``; the layer names and constrains the sites
  (``inference.potential_runs``); or
* the spec and model function (``takes="model"``: the built-in runners), and returns an
  ``InferenceResult``: ``fn(spec, model, *, backend, method, seed, device, dtype, progress_bar,
  **options)``.

``options`` maps each option to an ``inference.options.Option`` or to a plain default, whose type
is then the option's type. Two optional hooks run before anything else: ``check(backend, options)``
checks options against each other; ``prepare(spec, backend, options)`` checks them against the
model and fills in, in place, those whose default depends on the model. ``library(backend,
options)`` names the library class the runner builds (``inference.library_options``): keywords its
constructor takes then pass through as options, checked against its signature.

The built-in methods register the same way, one module each, listed in ``BUILTINS``; a plug-in
module registers on import (``ppl --plugin MODULE`` imports one for the command line).
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from inference.options import Option, plain_option
from ppl_models import BACKENDS
from ppl_models.errors import UnknownChoiceError

FAMILIES = ("mcmc", "vi", "importance", "likelihood_free")
# families whose results hold posterior draws of the latents, with a log-likelihood to criticize
POSTERIOR_FAMILIES = ("mcmc", "vi", "importance")
TAKES = ("potential", "model")
BUILTINS = ("nuts", "hmc", "svi", "rws", "importance_sampling", "adversarial", "mmd", "avb", "mclmc", "pathfinder",
            "smc", "sa", "barker", "aies", "ensemble_slice", "nested", "chees",
            "hmcecs")


@dataclass(frozen=True)
class Method:
    name: str
    family: str
    backends: tuple[str, ...]
    options: dict[str, Option]
    runner: Callable
    takes: str = "potential"
    check: Callable | None = None
    prepare: Callable | None = None
    library: Callable | None = None
    doc: str = ""
    module: str = ""  # where it was registered: worker processes import it to find the method

    @property
    def posterior(self) -> bool:
        """Whether results hold draws of the latents (with a log-likelihood to criticize)."""
        return self.family in POSTERIOR_FAMILIES

    @property
    def needs_likelihood(self) -> bool:
        return self.family != "likelihood_free"


_METHODS: dict[str, Method] = {}
_loaded: list[bool] = []


PLUGINS_ENV = "PPL_PLUGINS"  # set for worker processes only (``plugin_environment``): never needed by hand


def _load_builtins() -> None:
    if not _loaded:
        _loaded.append(True)
        for name in BUILTINS:
            importlib.import_module(f"inference.methods.{name}")
        for source in filter(None, os.environ.get(PLUGINS_ENV, "").split(os.pathsep)):
            import_plugin(source)  # in a worker process: the plug-ins its parent had


def register_method(name: str, *, family: str, backends: tuple[str, ...] | str, options: Mapping | None = None,
                    takes: str = "potential", check: Callable | None = None, prepare: Callable | None = None,
                    library: Callable | None = None, doc: str | None = None, replace: bool = False):
    """Decorator: register the decorated runner as method ``name`` (see the module's docstring);
    ``doc`` describes the method (default: the runner's docstring)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a method's name must be an identifier, not {name!r}")
    if family not in FAMILIES:
        raise UnknownChoiceError(f"family of method {name!r}", family, FAMILIES)
    if takes not in TAKES:
        raise UnknownChoiceError(f"takes of method {name!r}", takes, TAKES)
    backends = (backends,) if isinstance(backends, str) else tuple(backends)
    for backend in backends:
        if backend not in BACKENDS:
            raise UnknownChoiceError(f"backend of method {name!r}", backend, BACKENDS)
    if takes == "potential" and backends != ("numpyro",):
        raise ValueError(f"method {name!r} takes a Potential, a JAX log density: it runs on backends=('numpyro',) "
                         f"only, not {backends}")
    table = {k: v if isinstance(v, Option) else plain_option(v, backends) for k, v in (options or {}).items()}

    def decorate(fn: Callable) -> Callable:
        _load_builtins()  # a plug-in cannot take a built-in's name by registering first
        if name in _METHODS and not replace:
            raise ValueError(f"method {name!r} is already registered (by {_METHODS[name].module}); pass "
                             "replace=True to replace it")
        if takes == "potential":
            missing = [k for k in table if k not in inspect.signature(fn).parameters]
            if missing:
                raise TypeError(f"method {name!r}: its runner {fn.__qualname__} takes no option(s) {missing}")
        _METHODS[name] = Method(name, family, backends, table, fn, takes, check, prepare, library,
                                doc or inspect.getdoc(fn) or "", fn.__module__)
        return fn

    return decorate


def unregister_method(name: str) -> None:
    """Remove a method (a plug-in, in tests)."""
    get_method(name)
    del _METHODS[name]


def get_method(name: str) -> Method:
    _load_builtins()
    if name not in _METHODS:
        raise UnknownChoiceError("method", name, sorted(_METHODS))
    return _METHODS[name]


def method_names() -> list[str]:
    _load_builtins()
    return list(_METHODS)


def methods() -> dict[str, Method]:
    _load_builtins()
    return dict(_METHODS)


def check_backend(method: Method, backend: str) -> None:
    if backend not in method.backends:
        raise UnknownChoiceError(f"backend for method {method.name!r}", backend, method.backends,
                                 f"method {method.name!r} runs on {', '.join(method.backends)} only, not on "
                                 f"{backend!r}")


def family_of(result) -> str:
    """The family of the method that made ``result`` (recorded in it; else looked up)."""
    return result.info.get("family") or get_method(result.method).family


def plugin_sources() -> list[str]:
    """Where the methods registered outside the package come from, for worker processes to import
    (``import_plugin``): a module's name, or the file of one loaded from a file (``ppl --plugin x.py``)."""
    _load_builtins()
    out = set()
    for m in _METHODS.values():
        if m.module.startswith("inference.") or m.module in ("__main__", "__mp_main__"):
            continue  # a script's methods: a spawned worker runs the script's module again itself
        loaded = sys.modules.get(m.module)
        from_file = getattr(loaded, "__ppl_plugin_file__", None)
        out.add(from_file or m.module)
    return sorted(out)


@contextlib.contextmanager
def plugin_environment():
    """Within the block, worker processes started (spawned) inherit the plug-ins registered here:
    their registries import ``plugin_sources()`` first."""
    sources = plugin_sources()
    before = os.environ.get(PLUGINS_ENV)
    if sources:
        os.environ[PLUGINS_ENV] = os.pathsep.join(sources)
    try:
        yield sources
    finally:
        if before is None:
            os.environ.pop(PLUGINS_ENV, None)
        else:
            os.environ[PLUGINS_ENV] = before


def import_plugin(source: str) -> None:
    """Import a plug-in: a module by name, or a .py file run as a module named after the file."""
    if source.endswith(".py"):
        path = Path(source)
        if not path.is_file():
            raise OSError(f"plug-in {source}: no such file")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        module.__ppl_plugin_file__ = str(path.resolve())
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return
    try:
        importlib.import_module(source)
    except ModuleNotFoundError as e:
        raise ImportError(f"plug-in {source}: no module named {e.name!r} (give a module on the Python path or a "
                          ".py file)") from None
