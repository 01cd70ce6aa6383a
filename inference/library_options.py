"""The libraries' own keyword arguments, passed through to them and checked against their signatures.

A method may name the library class its runner builds (``library=`` when it registers: a function
of the backend and the options, returning the class, or None): NumPyro's or Pyro's ``NUTS`` and
``HMC``, an autoguide. Any keyword that class's constructor accepts, and that is not one of the
method's own options or set by the layer, can then be given to ``inference.run`` like an option:
``adapt_mass_matrix=False``, ``regularize_mass_matrix=False``, ``find_heuristic_step_size=True``,
``forward_mode_differentiation=True``, ``init_scale=0.01``. Its value is checked against the
type of the library's default; a name that is neither an option nor the library's keyword is an
error listing both, with the closest. The accepted ones travel in ``options["library_options"]``.

Initialization strategies are given by name (``init_strategy`` for MCMC, ``init_loc_fn`` for an
autoguide): ``"init_to_median"``, ``"init_to_mean"``, ``"init_to_uniform"``, ``"init_to_sample"``,
``"init_to_feasible"``, or a dict of site values for ``init_to_value``; each backend builds its own.
"""
from __future__ import annotations

import importlib
import inspect
import numbers
from collections.abc import Callable, Mapping

INIT_STRATEGIES = ("init_to_feasible", "init_to_mean", "init_to_median", "init_to_sample", "init_to_uniform")
INIT_ARGUMENTS = ("init_strategy", "init_loc_fn")
# what the layer sets itself (or an option of the method does): never taken from the user this way
LAYER_SET = frozenset({"model", "potential_fn", "kinetic_fn", "prefix", "max_plate_nesting", "ignore_jit_warnings",
                       "transforms", "jit_options", "nonlinearity", "create_plates", "init_transform_kwargs"})
_MODULES = {"numpyro": {"mcmc": "numpyro.infer", "autoguide": "numpyro.infer.autoguide",
                        "init": "numpyro.infer.initialization"},
            "pyro": {"mcmc": "pyro.infer", "autoguide": "pyro.infer.autoguide",
                     "init": "pyro.infer.autoguide.initialization"}}


def library_class(backend: str, kind: str, name: str):
    """``kind`` ("mcmc" or "autoguide") class ``name`` of ``backend``'s library (imported here)."""
    return getattr(importlib.import_module(_MODULES[backend][kind]), name)


def accepted(cls, options: Mapping) -> dict[str, inspect.Parameter]:
    """The keywords of ``cls``'s constructor a user may pass: not the layer's, not the method's options."""
    return {name: p for name, p in inspect.signature(cls).parameters.items()
            if name not in LAYER_SET and name not in options
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def check_value(name: str, value, parameter: inspect.Parameter, where: str) -> None:
    """Refuse a value whose type is not that of the library's default (any number for a numeric one)."""
    if name in INIT_ARGUMENTS:
        if not (value in INIT_STRATEGIES or isinstance(value, Mapping)):
            raise ValueError(f"{name}={value!r} for {where}: expected one of {', '.join(INIT_STRATEGIES)}, or a "
                             "dict of site values (init_to_value)")
        return
    default = parameter.default
    if default is inspect.Parameter.empty or default is None or callable(default):
        return
    if isinstance(default, bool):
        ok, expect = isinstance(value, bool), "True or False"
    elif isinstance(default, numbers.Real):  # an integer default too: libraries write 1 for a float (Pyro's step_size)
        ok, expect = isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"
    else:
        ok, expect = isinstance(value, type(default)), type(default).__name__
    if not ok:
        raise ValueError(f"{name}={value!r} for {where} is invalid: expected {expect}, as the library's default "
                         f"{default!r}")


def init_strategy(backend: str, value) -> Callable:
    """The backend's initialization function for a strategy's name, or for a dict of values."""
    module = importlib.import_module(_MODULES[backend]["init"])
    if isinstance(value, Mapping):
        if backend == "pyro":  # Pyro takes the values as they are: tensors
            import torch

            value = {k: torch.as_tensor(v, dtype=torch.get_default_dtype()) for k, v in value.items()}
        return module.init_to_value(values=dict(value))
    return getattr(module, value)()


def to_library(backend: str, library_options: Mapping) -> dict:
    """``library_options`` as the library takes them: initialization strategies built."""
    return {k: init_strategy(backend, v) if k in INIT_ARGUMENTS else v for k, v in library_options.items()}
