"""Gradient estimators for discrete latents against the exact gradient.

On a model with a few binary latents per data point (a tiny sigmoid belief network, say), the ELBO and
the K-sample bound can be summed over every value of the latents, so their gradients are exact
(``inference.backends.numpyro_gradients``). Each estimator's draws of the gradient at the same
parameters then give its bias, with its Monte Carlo standard error, and its variance:

* ``score``: the plain score function, each site's score weighed by the whole ELBO
  (``inference.backends.numpyro_gradients.ScoreFunctionELBO``);
* ``score_pyro``: Pyro's ``Trace_ELBO``, the score function Rao-Blackwellized over plates only (each data
  point's score weighed by that data point's ELBO);
* ``graph``: Rao-Blackwellized, each site's score weighed by its downstream cost only (``TraceGraph_ELBO``
  of NumPyro, and of Pyro with no baseline declared);
* ``graph_avg``, ``graph_nn``: Pyro's ``TraceGraph_ELBO`` with the guide's decaying-average baseline, and
  with that plus NVIL's neural baseline (trained during ``warmup`` calls);
* ``vimco``: VIMCO (``inference.objectives``), against the gradient of the K-sample bound, not the ELBO;
* ``relaxed``: the Concrete relaxation at a temperature, reparameterized (biased: its expectation is the
  gradient of the relaxed model's ELBO);
* ``trace_numpyro``: NumPyro's ``Trace_ELBO``, which has no score-function term: biased for a guide
  with discrete sites (it is here to show that the check catches a biased estimator).

Bias is judged per coordinate: |mean - exact| <= 4 se, se = sd / sqrt(draws).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppl_models.nets.factories import SEPARATOR


@dataclass(frozen=True)
class Estimator:
    backend: str
    elbo: str  # Trace_ELBO, TraceGraph_ELBO, vimco, score
    baseline: str | None = None  # what the guide declares (ppl_models.discrete_latent.sbn)
    relaxed: bool = False
    description: str = ""
    unbiased: bool = True


ESTIMATORS = {
    "score": Estimator("numpyro", "score", description="score function, plain (NumPyro)"),
    "score_pyro": Estimator("pyro", "Trace_ELBO", description="score function, per data point (Pyro Trace_ELBO)"),
    "graph": Estimator("numpyro", "TraceGraph_ELBO",
                       description="score function, Rao-Blackwellized (NumPyro TraceGraph_ELBO)"),
    "graph_pyro": Estimator("pyro", "TraceGraph_ELBO",
                            description="score function, Rao-Blackwellized (Pyro TraceGraph_ELBO, no baseline)"),
    "graph_avg": Estimator("pyro", "TraceGraph_ELBO", "decaying",
                           description="+ decaying-average baseline (Pyro TraceGraph_ELBO)"),
    "graph_nn": Estimator("pyro", "TraceGraph_ELBO", "neural",
                          description="+ decaying-average and neural baselines, NVIL (Pyro TraceGraph_ELBO)"),
    "vimco": Estimator("numpyro", "vimco", description="VIMCO (NumPyro)"),
    "vimco_pyro": Estimator("pyro", "vimco", description="VIMCO (Pyro)"),
    "relaxed": Estimator("numpyro", "Trace_ELBO", relaxed=True, unbiased=False,
                         description="Concrete relaxation, reparameterized (NumPyro Trace_ELBO)"),
    "trace_numpyro": Estimator("numpyro", "Trace_ELBO", unbiased=False,
                               description="NumPyro Trace_ELBO (no score-function term)"),
}


def tiny_sbn(baseline: str | None = None, num_images: int = 2, pixels: int = 6, layers=(3, 2), seed: int = 0):
    """An SBN (``ppl_models.discrete_latent.sbn``) on ``num_images`` random binary images of ``pixels``
    pixels with binary layers of sizes ``layers``: 2^sum(layers) values of each image's latents."""
    from ppl_models.discrete_latent.sbn import sbn_from_images

    x = (np.random.default_rng(seed).random((num_images, pixels)) < 0.5).astype(np.float64)
    return sbn_from_images(x, tuple(layers), baseline, "tiny-sbn")


def study_params(spec, seed: int = 0) -> dict[str, np.ndarray]:
    """A point to take gradients at: every parameter of model and guide drawn Normal(0, 1), so that the
    guide's probabilities are far from 1/2 (networks' weights, prior logits; not the baselines')."""
    from inference.backends.numpyro_common import backend_context, to_backend, with_networks
    from inference.backends.numpyro_gradients import initial_params

    with backend_context("cpu", "float64"):
        model, guide = with_networks(spec, seed, "float64", spec.model_fn("numpyro"), spec.guide_fn("numpyro"))
        shapes = {k: np.shape(v) for k, v in initial_params(model, guide, to_backend(spec.data, "float64")).items()
                  if not _learnt(k)}
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(shape) for k, shape in sorted(shapes.items())}


def _learnt(name: str) -> bool:
    """Parameters an estimator learns along the way (Pyro's baselines), not the objective's."""
    return name.startswith("__baseline") or name.split(SEPARATOR)[0] in ("baseline", "baseline2")


def exact(spec, params: dict, num_particles: int = 1) -> dict[str, np.ndarray]:
    """The exact gradient of the ELBO (``num_particles=1``) or of the K-sample bound at ``params``."""
    from inference.backends.numpyro_common import backend_context, to_backend, with_networks
    from inference.backends.numpyro_gradients import exact_gradient

    with backend_context("cpu", "float64"):
        model, guide = with_networks(spec, 0, "float64", spec.model_fn("numpyro"), spec.guide_fn("numpyro"))
        grads = exact_gradient(model, guide, _jax(params), to_backend(spec.data, "float64"), num_particles)
        return {k: np.asarray(v) for k, v in grads.items()}


def exact_values(spec, params: dict, num_particles: int = 1) -> tuple[float, float]:
    """The exact K-sample bound (the ELBO for K = 1) and log evidence at ``params``."""
    import jax

    from inference.backends.numpyro_common import backend_context, to_backend, with_networks
    from inference.backends.numpyro_gradients import exact_bound, exact_log_evidence

    with backend_context("cpu", "float64"):
        model, guide = with_networks(spec, 0, "float64", spec.model_fn("numpyro"), spec.guide_fn("numpyro"))
        data = to_backend(spec.data, "float64")
        values = jax.jit(lambda p: (exact_bound(model, guide, p, data, num_particles),
                                    exact_log_evidence(model, guide, p, data)))(_jax(params))
        return float(values[0]), float(values[1])


def _jax(params: dict) -> dict:
    import jax.numpy as jnp

    return {k: jnp.asarray(v) for k, v in params.items()}


def draws(name: str, params: dict, num_draws: int, num_particles: int = 1, temperature: float = 0.5,
          warmup: int = 500, seed: int = 0, **spec_kwargs) -> dict[str, np.ndarray]:
    """``num_draws`` draws of estimator ``name``'s gradient at ``params`` on ``tiny_sbn`` (with the guide's
    baselines the estimator needs): ``{param: (num_draws, ...)}``."""
    est = ESTIMATORS[name]
    spec = tiny_sbn(est.baseline, **spec_kwargs)
    if est.backend == "numpyro":
        return _numpyro_draws(est, spec, params, num_draws, num_particles, temperature, seed)
    return _pyro_draws(est, spec, params, num_draws, num_particles, warmup, seed)


def _numpyro_draws(est: Estimator, spec, params, num_draws, num_particles, temperature, seed):
    import numpyro.infer as infer

    from inference.backends.numpyro_common import backend_context, to_backend, with_networks
    from inference.backends.numpyro_gradients import ScoreFunctionELBO, gradient_draws
    from inference.backends.numpyro_objectives import ImportanceWeightedELBO, Relaxed

    with backend_context("cpu", "float64"):
        model, guide = with_networks(spec, 0, "float64", spec.model_fn("numpyro"), spec.guide_fn("numpyro"))
        if est.relaxed:
            model, guide = Relaxed(model, temperature), Relaxed(guide, temperature)
        if est.elbo in ("vimco", "score"):
            elbo = ImportanceWeightedELBO(num_particles, "vimco") if est.elbo == "vimco" else ScoreFunctionELBO(
                num_particles)
        else:
            elbo = getattr(infer, est.elbo)(num_particles=num_particles)
        out = gradient_draws(elbo, model, guide, _jax(params), to_backend(spec.data, "float64"), num_draws, seed)
        return {k: np.asarray(v) for k, v in out.items()}


def _pyro_draws(est: Estimator, spec, params, num_draws, num_particles, warmup, seed):
    import pyro
    import pyro.infer as infer
    import torch

    from inference.backends.pyro_common import backend_context, start, to_backend, with_networks
    from inference.backends.pyro_gradients import gradient_draws
    from inference.backends.pyro_objectives import ImportanceWeightedELBO

    with backend_context("cpu", "float64", small=True) as dev, pyro.get_param_store().scope():
        start(seed)
        model, guide = with_networks(spec, seed, dev, spec.model_fn("pyro"), spec.guide_fn("pyro"), params=params)
        for name, value in params.items():
            if SEPARATOR not in name:  # the networks' weights are loaded into them; the rest go to the store
                pyro.param(name, torch.as_tensor(value))
        elbo = (ImportanceWeightedELBO(num_particles, "vimco") if est.elbo == "vimco"
                else getattr(infer, est.elbo)(num_particles=num_particles))
        return gradient_draws(elbo, model, guide, params, to_backend(spec.data, dev), num_draws,
                              warmup if est.baseline else 0)


@dataclass(frozen=True)
class Summary:
    """One estimator's draws against the exact gradient, per group of parameters (model, guide)."""

    max_z: dict[str, float]  # the largest |mean - exact| / se over the group's coordinates
    relative_bias: dict[str, float]  # |mean - exact| / |exact| (Euclidean norms over the group)
    relative_se: dict[str, float]  # |se| / |exact|: what relative_bias is, give or take, for an unbiased estimator
    variance: dict[str, float]  # the trace of the covariance of one draw
    num_draws: int


def group(name: str) -> str:
    """``guide`` for the encoders' parameters, ``model`` for the rest (decoders, prior logits)."""
    return "guide" if name.split(SEPARATOR)[0].startswith("encoder") else "model"


def summarize(draws_: dict[str, np.ndarray], exact_: dict[str, np.ndarray]) -> Summary:
    num = next(iter(draws_.values())).shape[0]
    out = {"max_z": {}, "relative_bias": {}, "relative_se": {}, "variance": {}}
    for g in ("model", "guide"):
        names = [k for k in exact_ if group(k) == g]
        d = np.concatenate([draws_[k].reshape(num, -1) for k in names], axis=1)
        e = np.concatenate([np.ravel(exact_[k]) for k in names])
        mean, sd = d.mean(0), d.std(0, ddof=1)
        se = np.maximum(sd / np.sqrt(num), 1e-12)
        out["max_z"][g] = float(np.max(np.abs(mean - e) / se))
        out["relative_bias"][g] = float(np.linalg.norm(mean - e) / np.linalg.norm(e))
        out["relative_se"][g] = float(np.linalg.norm(se) / np.linalg.norm(e))
        out["variance"][g] = float(np.sum(sd**2))
    return Summary(**out, num_draws=num)
