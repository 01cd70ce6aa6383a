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

from inference.arviz_compat import ARVIZ_VERSION
from inference.criticism import add_pointwise
from inference.diagnostics import mcmc_warnings, summarize
from inference.minibatch import check_batch_size
from inference.options import METHODS, resolve_options, schedule_defaults
from inference.result import InferenceResult
from ppl_models import BACKENDS, ModelSpec, get_model
from ppl_models.errors import UnknownChoiceError
from ppl_models.spec import resolve_function

_RUNNERS = {
    ("numpyro", "nuts"): "inference.backends.numpyro_mcmc:run",
    ("numpyro", "hmc"): "inference.backends.numpyro_mcmc:run",
    ("numpyro", "svi"): "inference.backends.numpyro_svi:run",
    ("pyro", "nuts"): "inference.backends.pyro_mcmc:run",
    ("pyro", "hmc"): "inference.backends.pyro_mcmc:run",
    ("pyro", "svi"): "inference.backends.pyro_svi:run",
    ("numpyro", "rws"): "inference.backends.numpyro_svi:run",
    ("pyro", "rws"): "inference.backends.pyro_svi:run",
    ("numpyro", "is"): "inference.backends.numpyro_importance:run",
    ("pyro", "is"): "inference.backends.pyro_importance:run",
    ("numpyro", "adversarial"): "inference.backends.numpyro_implicit:run",
    ("numpyro", "mmd"): "inference.backends.numpyro_implicit:run",
    ("pyro", "adversarial"): "inference.backends.pyro_implicit:run",
    ("pyro", "mmd"): "inference.backends.pyro_implicit:run",
    ("numpyro", "avb"): "inference.backends.numpyro_implicit:run",
    ("pyro", "avb"): "inference.backends.pyro_implicit:run",
}
# methods that compare generated points to data, and so never evaluate the likelihood
LIKELIHOOD_FREE = ("adversarial", "mmd")
_VERSIONS = {"numpyro": "inference.backends.numpyro_common:versions", "pyro": "inference.backends.pyro_common:versions"}


class InferenceWarning(UserWarning):
    """A diagnostic says the draws may not be trustworthy (divergences, R-hat, low ESS)."""


def resolve_model(model: str | ModelSpec) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return get_model(model)
    raise TypeError(f"model must be a registered name or a ModelSpec, not {type(model).__name__}")


def check_likelihood(spec: ModelSpec, method: str) -> None:
    """An implicit model (no likelihood) goes only to the likelihood-free methods."""
    if not spec.likelihood and method not in LIKELIHOOD_FREE:
        raise ValueError(f"model {spec.name!r} is implicit: it has no likelihood, which method {method!r} needs. "
                         f"Methods that can fit it: {', '.join(LIKELIHOOD_FREE)}")


def run(model: str | ModelSpec, *, method: str, backend: str, seed: int = 0, **options) -> InferenceResult:
    """Run ``method`` (``"nuts"``, ``"hmc"``, ``"svi"``, ``"rws"``, ``"is"``, ``"adversarial"``, ``"mmd"``,
    ``"avb"``) on ``model`` with ``backend`` (``"pyro"``, ``"numpyro"``).

    ``model`` is a registered name or a ``ModelSpec``. ``options`` are the method's
    (see ``inference.options.METHODS``) plus ``device``, ``dtype`` and ``progress_bar``;
    an unknown option is an error. Every random number derives from ``seed``.
    """
    spec = resolve_model(model)
    if backend not in BACKENDS:
        raise UnknownChoiceError("backend", backend, BACKENDS)
    if backend not in spec.backends:
        raise UnknownChoiceError(f"backend for model {spec.name!r}", backend, spec.backends)
    if method not in METHODS:
        raise UnknownChoiceError("method", method, METHODS)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    check_likelihood(spec, method)
    opts = resolve_options(method, backend, options)
    if "lr_decay" in opts:  # SVI, RWS: the step-size schedule the model's kind calls for, where not given
        opts.update(schedule_defaults(opts, bool(spec.networks)))
    if method == "is" and opts["guide"] is None:
        opts["guide"] = "spec" if spec.guide and backend in spec.guide else "prior"
    if method == "avb" and not spec.guide:
        raise ValueError(f"method 'avb' fits a model together with its own guide (an implicit one, say "
                         f"ppl_models.latent_gaussian.vae.implicit_vae_guide); {spec.name!r} has no guide")
    if method in ("svi", "rws", "is") and opts["guide"] == "spec" and not (spec.guide and backend in spec.guide):
        autoguides = [g for g in METHODS[method]["guide"].choices or ("prior",) if g not in (None, "spec")]
        where = f" on {backend} (it has one on {', '.join(spec.guide)} only)" if spec.guide else ""
        raise UnknownChoiceError("guide", "spec", autoguides, f"guide='spec' asks for the model's own guide, but "
                                 f"{spec.name!r} has no guide of its own{where}; use one of: {', '.join(autoguides)}")
    if method == "avb" or (method in ("svi", "rws", "is") and opts["guide"] == "spec"):
        spec.guide_fn(backend)  # the model must have a guide for this backend, taking this data
    if opts.get("batch_size") is not None:
        check_batch_size(spec, opts["batch_size"], method)
    model_fn = spec.model_fn(backend)
    runner = resolve_function(_RUNNERS[backend, method])
    dtype = opts.pop("dtype") or spec.dtype

    t0 = time.perf_counter()
    result = runner(spec, model_fn, method=method, seed=int(seed), dtype=dtype, **opts)
    result.timing["wall"] = time.perf_counter() - t0
    add_pointwise(spec, result, seed=int(seed), device=opts["device"], dtype=dtype)  # log-likelihood, replicated data
    if spec.minibatch is not None:
        # a data set for minibatches is big (MNIST: 188 MB as float32); the spec can rebuild it
        left_out = sorted(set(result.observed_data) & set(spec.minibatch.keys))
        result.observed_data = {k: v for k, v in result.observed_data.items() if k not in left_out}
        result.info["observed_data_left_out"] = left_out
    result.info.update(
        seed=int(seed), device=opts["device"], dtype=dtype,
        **({"data_keys_ignored": ignored} if (ignored := spec.ignored_keys(backend)) else {}),
        # array-valued options (fitted params) are recorded by their names only
        options={**{k: sorted(v) if isinstance(v, Mapping) else v for k, v in opts.items()}, "dtype": dtype},
        versions={"python": platform.python_version(), "numpy": np.__version__, "arviz": ARVIZ_VERSION,
                  **resolve_function(_VERSIONS[backend])()},
    )
    if method in ("nuts", "hmc"):
        result.warnings.extend(mcmc_warnings(summarize(result.samples), result.sample_stats))
    for message in result.warnings:
        warnings.warn(f"{spec.name} ({backend} {method}): {message}", InferenceWarning, stacklevel=2)
    return result
