"""Nested sampling (Skilling 2004, 2006) for the evidence: jaxns's static nested sampler (Albert 2020,
"JAXNS: a high-performance nested sampling package based on JAX"; the phantom-powered variant,
Albert 2023, arXiv:2312.11330) through NumPyro's wrapper, ``numpyro.contrib.nested_sampling``.

Each latent is written as its prior's inverse CDF of a uniform variable, so the prior is uniform on
a unit cube (NumPyro's ``UniformReparam``). A set of ``num_live_points`` points drawn from it is
shrunk, over and over, towards higher likelihood: the lowest-likelihood point dies and is replaced by
a point from the prior above its likelihood (slice sampling, from another live point). The dead
points, weighted by the prior volume each stands for times its likelihood, are weighted draws of
the posterior, and the sum of those weights is the evidence p(y). The run stops when what the live
points could still add is below ``dlogz`` of the evidence (or at ``max_samples`` dead points).

``log_evidence`` and ``log_evidence_se`` are jaxns's estimate of E[log Z] and its standard deviation
from the statistics of the shrinkage (the prior volume each step leaves is a random fraction), in one
run. The posterior draws are ``num_samples`` of the dead points resampled by their weights
(systematic resampling, then shuffled), one "chain"; by default as many as the weights' effective
sample size (Kish), so that the draws' Monte Carlo standard error is about that of the weighted
points themselves (more draws would only repeat points, and understate it). ``diagnostics`` keeps
``ess`` (Kish's effective sample size of the weights), ``num_dead_points``,
``num_likelihood_evaluations`` and ``termination_reason`` (jaxns's bit mask).

The model's latents must have proper priors that NumPyro writes as an inverse CDF of uniforms
(``uniform_reparam_transform``: most univariate distributions, Normal to Gamma and Beta, and
MultivariateNormal; not ImproperUniform or LKJ, which are named in the error), discrete sites
only if enumerated; no networks or minibatches. jaxns computes in float64, so the method runs in
float64.
"""
from __future__ import annotations

from inference.options import integer, opt, or_none, positive
from inference.registry import register_method

_NUMPYRO = ("numpyro",)
# jaxns's termination bits (jaxns.utils.summary) -> what they mean
TERMINATION = ("reached max_samples", "evidence uncertainty low enough", "small remaining evidence (dlogz)",
               "reached the ESS", "used the max number of likelihood evaluations", "likelihood contour reached",
               "sampler efficiency too low", "all live points on a single plateau (a sign of a precision error)",
               "relative spread of the live points < rtol", "absolute spread of the live points < atol",
               "no seed points left", "XL < max(XL) * peak_XL_frac")
CONVERGED = 2  # bit of "small remaining evidence": the run ended as it should


def _reasons(mask: int) -> list[str]:
    return [why for bit, why in enumerate(TERMINATION) if mask >> bit & 1]


def _without_inverse_cdf(model, data: dict, seed: int) -> list[str]:
    """The latent sites whose priors NumPyro cannot write as an inverse CDF (``UniformReparam``)."""
    import jax.numpy as jnp
    from numpyro import handlers
    from numpyro.contrib.nested_sampling import uniform_reparam_transform

    def feasible(site):  # a point in each latent's support, without drawing it (ImproperUniform cannot)
        if site["type"] == "sample" and not site["is_observed"]:
            return site["fn"].support.feasible_like(jnp.zeros(site["fn"].shape()))
        return None

    out = []
    traced = handlers.trace(handlers.substitute(handlers.seed(model, seed), substitute_fn=feasible))
    for name, site in traced.get_trace(**data).items():
        if site["type"] == "sample" and not site["is_observed"]:
            try:
                uniform_reparam_transform(site["fn"])(jnp.full(site["fn"].shape(), 0.5))
            except NotImplementedError:
                out.append(f"site {name!r} ({type(site['fn']).__name__})")
    return out


def prepare(spec, backend: str, options: dict) -> None:
    if options.get("dtype") not in (None, "float64"):
        raise ValueError(f"nested sampling runs in float64 (jaxns computes in it), not dtype={options['dtype']!r}")
    options["dtype"] = "float64"


def systematic_resample(log_weights, num: int, rng):
    """``num`` indices drawn by systematic resampling with the (unnormalized) ``log_weights``, shuffled
    (in nested-sampling order they would run from the prior's tail to the posterior's mode)."""
    import numpy as np

    w = np.exp(log_weights - np.max(log_weights))
    cdf = np.cumsum(w / w.sum())
    idx = np.minimum(np.searchsorted(cdf, (rng.uniform() + np.arange(num)) / num), len(w) - 1)
    return rng.permutation(idx)


def run(spec, model, *, backend, method, seed, device, dtype, progress_bar, num_live_points, max_samples, dlogz,
        num_samples):
    import time

    import jax
    import numpy as np
    import numpyro

    from inference.backends.numpyro_common import backend_context, to_backend, trace_sites
    from inference.result import InferenceResult

    if spec.networks:
        raise ValueError(f"method {method!r} samples a model's latent variables; {spec.name!r} has networks")
    if spec.minibatch is not None:
        raise ValueError(f"method {method!r} needs the whole likelihood; {spec.name!r} is trained on minibatches")
    del progress_bar, dtype  # jaxns runs compiled whole, in float64 (``prepare``)
    with backend_context(device, "float64") as dev:
        try:
            from numpyro.contrib.nested_sampling import NestedSampler
        except ImportError as e:
            raise ImportError(f"method {method!r} needs jaxns 2.6 (pip install 'jaxns>=2.6,<3', or the package's "
                              f"'nested' extra): {e}") from None
        data = to_backend(spec.data, "float64")
        sites = trace_sites(model, data, seed)
        constructor = {"max_samples": max_samples, "devices": [dev]}
        if num_live_points is not None:
            constructor["num_live_points"] = num_live_points
        sampler = NestedSampler(model, constructor_kwargs=constructor, termination_kwargs={"dlogZ": dlogz})
        t0 = time.perf_counter()
        try:
            # jaxns first runs the likelihood once, outside jit, at the unit hypercube's centre (u = 0.5) to
            # learn its shapes. A prior folded at 0 maps it to the boundary of its support (diamonds' sigma,
            # |StudentT(3, 0, 10).icdf(0.5)| = 0), a scale that NumPyro's argument validation refuses; the
            # value there is only a placeholder, and inside jit validation does not run anyway
            with numpyro.validation_enabled(False):
                sampler.run(jax.random.PRNGKey(seed), **data)
        except NotImplementedError as e:
            missing = _without_inverse_cdf(model, data, seed)
            raise ValueError(f"nested sampling draws each latent as its prior's inverse CDF of a uniform; NumPyro has "
                             f"none for {', '.join(missing) if missing else repr(e)} in {spec.name!r}") from None
        results = jax.block_until_ready(sampler._results)
        elapsed = time.perf_counter() - t0
        weighted, log_weights = sampler.get_weighted_samples()
        weighted = {k: np.asarray(v) for k, v in weighted.items()}
        log_weights = np.asarray(log_weights, dtype=float)
    ess = float(results.ESS)
    log_evidence, se = float(results.log_Z_mean), float(results.log_Z_uncert)
    mask = int(results.termination_reason)
    num = max(1, int(round(ess))) if num_samples is None else num_samples
    idx = systematic_resample(log_weights, num, np.random.default_rng(seed))
    samples = {k: v[idx][None] for k, v in weighted.items() if k in sites.latent or k in sites.deterministic}

    warnings = []
    if not mask >> CONVERGED & 1:
        warnings.append(f"nested: the run stopped ({'; '.join(_reasons(mask)) or 'no reason given'}) before the "
                        f"live points' share of the evidence fell below dlogz={dlogz}: the log evidence may be "
                        "too low (raise max_samples)")
    if not (np.isfinite(log_evidence) and np.isfinite(se)):
        raise RuntimeError(f"nested: non-finite log evidence {log_evidence} (se {se})")
    if num > 1.5 * ess:
        warnings.append(f"nested: num_samples={num} draws from weighted points of effective sample size {ess:.0f}: "
                        "the draws repeat points, and their Monte Carlo standard errors understate the error")
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method, samples=samples, observed_data=sites.observed,
        log_evidence=log_evidence, log_evidence_se=se,
        diagnostics={"ess": np.asarray(ess), "num_dead_points": np.asarray(int(results.total_num_samples)),
                     "num_likelihood_evaluations": np.asarray(int(results.total_num_likelihood_evaluations)),
                     "termination_reason": np.asarray(mask)},
        timing={"sampling": elapsed}, warnings=warnings,
        info={"termination": _reasons(mask),
              "resolved_options": {"num_live_points": int(sampler.constructor_kwargs["num_live_points"]),
                                   "num_samples": num}},
    )


register_method(
    "nested", family="importance", backends=_NUMPYRO, takes="model", doc=__doc__, prepare=prepare,
    options={
        "num_live_points": opt(None, "live points (default: NumPyro's, 25 per latent dimension); more give a "
                                     "smaller standard error of the log evidence and more posterior draws",
                               or_none(integer(1)), _NUMPYRO),
        "max_samples": opt(100_000, "dead points at most (memory is allocated for them up front); a run stopped by "
                                    "it warns", integer(1), _NUMPYRO),
        "dlogz": opt(1e-4, "stop when the live points could add less than this to log p(y)", positive(), _NUMPYRO),
        "num_samples": opt(None, "posterior draws kept, resampled from the weighted dead points (default: their "
                                 "effective sample size)", or_none(integer(1)), _NUMPYRO),
    },
)(run)
