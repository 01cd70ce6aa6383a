"""``inference.run``: one model, one method, one backend -> ``InferenceResult``.

Everything is checked before anything runs: the model name, backend, method,
every option, the data against the model's signature, and the device. A run
that fails part-way raises and returns nothing.
"""
from __future__ import annotations

import numbers
import platform
import time
import warnings
from collections.abc import Mapping

import numpy as np

from inference import network_modes
from inference.arviz_compat import ARVIZ_VERSION
from inference.criticism import add_pointwise
from inference.diagnostics import mcmc_warnings, summarize
from inference.minibatch import check_batch_size
from inference.options import resolve_options
from inference.potential_runs import run_on_potential
from inference.registry import Method, get_method, methods
from inference.result import InferenceResult
from ppl_models import BACKENDS, ModelSpec, get_model
from ppl_models.errors import UnknownChoiceError
from ppl_models.spec import resolve_function

_VERSIONS = {"numpyro": "inference.backends.numpyro_common:versions", "pyro": "inference.backends.pyro_common:versions"}


class InferenceWarning(UserWarning):
    """A diagnostic says the draws may not be trustworthy (divergences, R-hat, low ESS)."""


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return get_model(model)
    raise TypeError(f"model must be a registered name or a ModelSpec, not {type(model).__name__}")


def check_likelihood(spec: ModelSpec, method: Method) -> None:
    """An implicit model (no likelihood) goes only to the likelihood-free methods."""
    if not spec.likelihood and method.needs_likelihood:
        free = [m.name for m in methods().values() if not m.needs_likelihood]
        raise ValueError(f"model {spec.name!r} is implicit: it has no likelihood, which method {method.name!r} "
                         f"needs. Methods that can fit it: {', '.join(free)}")


def run(model: str | ModelSpec, *, method: str, backend: str, seed: int = 0, **options) -> InferenceResult:
    """Run ``method`` (a registered method: ``inference.registry``, ``ppl methods``) on ``model``
    with ``backend`` (``"pyro"``, ``"numpyro"``).

    ``model`` is a registered name or a ``ModelSpec``. ``options`` are the method's (see
    ``inference.options.METHODS``) plus ``device``, ``dtype`` and ``progress_bar``; an unknown
    option is an error. Every random number derives from ``seed``.
    """
    spec = resolve_model(model)
    if backend not in BACKENDS:
        raise UnknownChoiceError("backend", backend, BACKENDS)
    if backend not in spec.backends:
        raise UnknownChoiceError(f"backend for model {spec.name!r}", backend, spec.backends)
    entry = get_method(method)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    check_likelihood(spec, entry)
    opts = resolve_options(method, backend, options)
    if entry.prepare is not None:
        entry.prepare(spec, backend, opts)
    network_modes.check(spec, backend, method, opts)
    if opts.get("batch_size") is not None:
        check_batch_size(spec, opts["batch_size"], method)
    model_fn = spec.model_fn(backend)
    dtype = opts.pop("dtype") or spec.dtype

    t0 = time.perf_counter()
    if entry.takes == "potential":
        result = run_on_potential(method, entry.runner, spec, model_fn, seed=int(seed), dtype=dtype, **opts)
    else:
        result = entry.runner(spec, model_fn, backend=backend, method=method, seed=int(seed), dtype=dtype, **opts)
    result.timing["wall"] = time.perf_counter() - t0
    if entry.posterior:
        add_pointwise(spec, result, seed=int(seed), device=opts["device"], dtype=dtype)  # log-likelihood, replicates
    if spec.minibatch is not None:
        # a data set for minibatches is big (MNIST: 188 MB as float32); the spec can rebuild it
        left_out = sorted(set(result.observed_data) & set(spec.minibatch.keys))
        result.observed_data = {k: v for k, v in result.observed_data.items() if k not in left_out}
        result.info["observed_data_left_out"] = left_out
    result.info.update(
        seed=int(seed), device=opts["device"], dtype=dtype, family=entry.family,
        **({"data_keys_ignored": ignored} if (ignored := spec.ignored_keys(backend)) else {}),
        # array-valued options (fitted params) are recorded by their names only, with the values a
        # runner chose for options left to it (``info["resolved_options"]``)
        options={**{k: sorted(v) if isinstance(v, Mapping) and k != "library_options" else v
                    for k, v in opts.items()}, "dtype": dtype,
                 **result.info.pop("resolved_options", {})},
        versions={"python": platform.python_version(), "numpy": np.__version__, "arviz": ARVIZ_VERSION,
                  **resolve_function(_VERSIONS[backend])()},
    )
    if entry.family == "mcmc":
        result.warnings.extend(mcmc_warnings(summarize(result.samples), result.sample_stats))
    for message in result.warnings:
        warnings.warn(f"{spec.name} ({backend} {method}): {message}", InferenceWarning, stacklevel=2)
    return result
