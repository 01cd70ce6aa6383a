"""The model registry: names (``<data>-<model>``) -> ``ModelSpec``.

Built-in specs are registered by importing the modules in ``BUILTIN_MODULES``
(an explicit list, no entry points). A module registers a spec factory with the
``@register_model(name, backends=..., reference=..., description=...)`` decorator;
users may also register a ready spec.

A factory reads data, so it runs only when the model is asked for (``get_model``). What a
listing shows (``ModelInfo``: backends, where the reference comes from, a one-line
description) is given at registration, so that ``list_model_info`` reads no data; a built
spec is checked against what was declared for it.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from ppl_models.data.paths import data_dir
from ppl_models.errors import UnknownChoiceError
from ppl_models.spec import BACKENDS, ModelSpec

BUILTIN_MODULES = (
    "ppl_models.hierarchical.eight_schools",
    "ppl_models.hierarchical.radon",
    "ppl_models.regression.linear",
    "ppl_models.regression.diamonds",
    "ppl_models.regression.blr",
    "ppl_models.regression.kilpisjarvi",
    "ppl_models.conjugate.linear_regression",
    "ppl_models.latent_gaussian.ppca",
    "ppl_models.latent_gaussian.gp_pois_regr",
    "ppl_models.latent_gaussian.gp_regr",
    "ppl_models.latent_gaussian.vae",
    "ppl_models.time_series.ark",
    "ppl_models.time_series.arma",
    "ppl_models.time_series.garch",
    "ppl_models.time_series.hmm",
    "ppl_models.ode.lotka_volterra",
    "ppl_models.ode.one_comp_mm_elim_abs",
    "ppl_models.gym.targets",
    "ppl_models.mixture.low_dim_gauss_mix",
    "ppl_models.lda.lda",
    "ppl_models.lda.prodlda",
    "ppl_models.implicit.generators",
    "ppl_models.implicit.avb_toy",
    "ppl_models.autoregressive.made",
    "ppl_models.flows.realnvp",
    "ppl_models.flows.mnist",
    "ppl_models.discrete_latent.sbn",
)


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of a model without building its spec (reading no data).

    ``backends`` and ``reference`` (the ``source`` of the spec's reference, ``""`` when it has
    none) are None when the registration did not say; they are then learnt when the spec is built.
    """

    name: str
    backends: tuple[str, ...] | None = None
    reference: str | None = None
    description: str = ""


def info_of(spec: ModelSpec, description: str = "") -> ModelInfo:
    """The ``ModelInfo`` of a built spec."""
    return ModelInfo(spec.name, spec.backends, spec.reference.source if spec.reference else "",
                     description or spec.description.strip().split("\n")[0])


_factories: dict[str, Callable[[], ModelSpec]] = {}
_infos: dict[str, ModelInfo] = {}
_built: dict[tuple[str, str], ModelSpec] = {}
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def register_model(spec_or_name: ModelSpec | str, *, backends: tuple[str, ...] | None = None,
                   reference: str | None = None, description: str = "", overwrite: bool = False):
    """Register a model.

    ``register_model(spec)`` registers a ready ``ModelSpec`` under ``spec.name``.
    ``@register_model("name", backends=..., reference=..., description=...)`` decorates a
    zero-argument factory that builds the spec on first use (so data is read only when the
    model is asked for). ``backends`` and ``reference`` (the spec's ``reference.source``, ``""``
    for none) are what listings show without building the spec; the built spec must agree.
    """
    if backends is not None:
        backends = tuple(backends)
        for b in backends:
            if b not in BACKENDS:
                raise UnknownChoiceError("backend", b, BACKENDS)

    def add(name: str, factory: Callable[[], ModelSpec], info: ModelInfo):
        if name in _factories and not overwrite:
            raise ValueError(f"a model named {name!r} is already registered (pass overwrite=True to replace it)")
        _factories[name] = factory
        _infos[name] = info
        for key in [k for k in _built if k[0] == name]:
            del _built[key]

    if isinstance(spec_or_name, ModelSpec):
        spec = spec_or_name
        add(spec.name, lambda: spec, info_of(spec, description))
        return spec

    def decorator(factory: Callable[[], ModelSpec]):
        add(spec_or_name, factory, ModelInfo(spec_or_name, backends, reference, description))
        return factory

    return decorator


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _load_builtins()
    return sorted(_factories)


def model_info(name: str) -> ModelInfo:
    """What is known of ``name`` without building its spec (no data is read)."""
    _load_builtins()
    if name not in _infos:
        raise UnknownChoiceError("model", name, _infos)
    return _infos[name]


def list_model_info() -> list[ModelInfo]:
    """``ModelInfo`` of every registered model, sorted by name; reads no data."""
    return [model_info(name) for name in list_models()]


def _check_declared(spec: ModelSpec, info: ModelInfo) -> None:
    built = info_of(spec)
    for field in ("backends", "reference"):
        declared = getattr(info, field)
        if declared is not None and declared != getattr(built, field):
            raise ValueError(f"model {spec.name!r} was registered with {field}={declared!r}, but its spec has "
                             f"{getattr(built, field)!r}: make the registration say what the spec does")


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
        info = _infos[name]
        _check_declared(spec, info)
        if info.backends is None or info.reference is None:
            _infos[name] = info_of(spec, info.description)
        _built[key] = spec
    return _built[key]
