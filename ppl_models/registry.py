"""The model registry: names (``<data>-<model>``) -> ``ModelSpec``.

Built-in specs are registered by importing the modules in ``BUILTIN_MODULES``
(an explicit list, no entry points). A module registers a spec factory with the
``@register_model(name)`` decorator; users may also register a ready spec.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable

from ppl_models.data.paths import data_dir
from ppl_models.errors import UnknownChoiceError
from ppl_models.spec import ModelSpec

BUILTIN_MODULES = (
    "ppl_models.hierarchical.eight_schools",
    "ppl_models.hierarchical.radon",
    "ppl_models.regression.linear",
    "ppl_models.conjugate.linear_regression",
    "ppl_models.latent_gaussian.ppca",
    "ppl_models.latent_gaussian.vae",
    "ppl_models.lda.lda",
    "ppl_models.lda.prodlda",
    "ppl_models.implicit.generators",
    "ppl_models.implicit.avb_toy",
)
_factories: dict[str, Callable[[], ModelSpec]] = {}
_built: dict[tuple[str, str], ModelSpec] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def register_model(spec_or_name: ModelSpec | str, *, overwrite: bool = False):
    """Register a model.

    ``register_model(spec)`` registers a ready ``ModelSpec`` under ``spec.name``.
    ``@register_model("name")`` decorates a zero-argument factory that builds the
    spec on first use (so data is read only when the model is asked for).
    """

    def add(name: str, factory: Callable[[], ModelSpec]):
        if name in _factories and not overwrite:
            raise ValueError(f"a model named {name!r} is already registered (pass overwrite=True to replace it)")
        _factories[name] = factory
        for key in [k for k in _built if k[0] == name]:
            del _built[key]

    if isinstance(spec_or_name, ModelSpec):
        spec = spec_or_name
        add(spec.name, lambda: spec)
        return spec

    def decorator(factory: Callable[[], ModelSpec]):
        add(spec_or_name, factory)
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_builtins()
    return sorted(_factories)


def get_model(name: str) -> ModelSpec:
    """The spec registered as ``name`` (built once per data directory)."""
    _load_builtins()
    if name not in _factories:
        raise UnknownChoiceError("model", name, _factories)
    key = (name, str(data_dir()))
    if key not in _built:
        spec = _factories[name]()
        if spec.name != name:
            raise ValueError(f"the factory registered as {name!r} built a spec named {spec.name!r}")
        _built[key] = spec
    return _built[key]
