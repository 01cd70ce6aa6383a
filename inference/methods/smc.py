"""Adaptive tempered sequential Monte Carlo (Del Moral, Doucet & Jasra 2006; the temperatures chosen
adaptively as in Jasra et al. 2011), BlackJAX's ``adaptive_tempered_smc``: particles drawn from the
prior move through the tempered posteriors p(x) p(y | x)^lambda, lambda rising from 0 to 1, each
step as far as keeps the particles' effective sample size at ``target_ess`` of their number. At each
temperature the particles are resampled (systematic), moved by ``num_mcmc_steps`` HMC steps that
target the current tempered posterior, and reweighted by the next increment of the likelihood.

The inner HMC is tuned from the particles: its inverse mass matrix is the particles' weighted
covariance before each step (``dense_mass``; else its diagonal), as in Buchholz, Chopin & Jacob
(2021, "Adaptive tuning of Hamiltonian Monte Carlo within sequential Monte Carlo"), and its step
size is scaled after each step by exp(acceptance - 0.65), towards an acceptance rate of 0.65, up to
at most 1 (in the particles' sds).

The product of the mean incremental weights estimates the evidence p(y) (without bias for a fixed
schedule of temperatures; choosing them from the particles adds a bias of order 1/num_particles,
Beskos et al. 2016). ``num_runs``
independent runs of ``num_particles`` each give ``log_evidence``, the log of the mean of their
evidence estimates, and ``log_evidence_se``, the sd of their log estimates over sqrt(num_runs)
(the delta method, as for importance sampling); ``diagnostics`` keeps each run's estimate
(``log_evidence_runs``) and number of temperatures (``num_tempering_steps``). Each run's final
particles, resampled and moved once more by HMC at lambda = 1, are one "chain" of the result.

The model must have a proper prior on continuous latents (prior draws start the particles), and
no networks or minibatches. The likelihood is every observed site, ``numpyro.factor`` terms
included (tempered with it); the prior is the rest of the log density, Jacobians included.
"""
from __future__ import annotations

from inference.options import boolean, integer, open_unit, opt, positive
from inference.registry import register_method

_NUMPYRO = ("numpyro",)
TARGET_ACCEPTANCE = 0.65  # HMC's optimal acceptance rate for the step size (Beskos et al. 2013)
# the step size's cap, in units of the particles' sds (the mass matrix whitens them): leapfrog on a unit
# Gaussian is unstable beyond 2, and in few dimensions the acceptance rate stays high right up to it,
# so targeting 0.65 alone drove the step there and the next moves' acceptance to 0 (kidiq, 2 latents)
MAX_STEP_SIZE = 1.0
LOW_ACCEPTANCE = 0.1  # below it, the last HMC moves hardly moved the particles: a warning


def _base_distribution(fn):
    while hasattr(fn, "base_dist"):  # Independent, Masked, Expanded, Transformed wrappers
        fn = fn.base_dist
    return fn


def _site_log_prob(site):
    import jax.numpy as jnp

    lp = site["fn"].log_prob(site["value"])
    if site["scale"] is not None:
        lp = site["scale"] * lp
    return jnp.sum(lp)


def prior_and_likelihood(model, data: dict, potential):
    """The ``Potential``'s log density split into ``(log_prior, log_likelihood, sample_prior)``.

    ``log_likelihood(x)`` sums the observed sites' log densities (scaled as NumPyro scales them)
    with the latents at the flat unconstrained vector ``x``; ``log_prior(x)`` is NumPyro's log
    density of the model with its observed sites hidden (``handlers.block``): the latents' prior
    densities with the Jacobians of the transforms to the unconstrained space. The two are
    checked to add up to ``potential.logdensity``. ``sample_prior(rng_key, n)`` draws ``(n, dim)``
    points from the prior (the model run forward, the observed sites held at the data), mapped to
    the unconstrained space and laid out as the Potential's flat vector. Raises ``ValueError`` for
    an improper prior or a discrete latent."""
    import functools

    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro import handlers
    from numpyro.distributions import ImproperUniform
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.util import potential_energy

    def traced(x):
        params = potential.unravel(x)

        def value(site):
            if site["type"] == "sample" and site["name"] in params:
                return biject_to(site["fn"].support)(params[site["name"]])
            return None

        return handlers.trace(handlers.substitute(handlers.seed(model, 0), substitute_fn=value)).get_trace(**data)

    trace = traced(jnp.zeros(potential.dim))
    latent = {n: s for n, s in trace.items() if s["type"] == "sample" and not s["is_observed"]}
    improper = [n for n, s in latent.items() if isinstance(_base_distribution(s["fn"]), ImproperUniform)]
    if improper:
        raise ValueError(f"SMC starts from prior draws; latent site(s) {improper} have an improper prior "
                         "(ImproperUniform) that cannot be drawn from")
    discrete = [n for n, s in latent.items() if s["fn"].support.is_discrete]
    if discrete:
        raise ValueError(f"SMC moves continuous latents; site(s) {discrete} are discrete")

    # the prior: NumPyro's own log density (Jacobians included) with the observed sites hidden from it
    observed = {n for n, s in trace.items() if s["type"] == "sample" and s["is_observed"]}
    prior_model = handlers.block(model, hide_fn=lambda m: m["type"] == "sample" and m["name"] in observed)

    def log_prior(x):
        return -potential_energy(prior_model, (), data, potential.unravel(x))

    def log_likelihood(x):
        sites = traced(x)
        ll = sum((_site_log_prob(sites[n]) for n in sorted(observed)), jnp.zeros(()))
        return jnp.where(jnp.isnan(ll), -jnp.inf, ll)

    x = jnp.zeros(potential.dim)
    joint, split = potential.logdensity(x), log_prior(x) + log_likelihood(x)
    if not jnp.allclose(joint, split, rtol=1e-5, atol=1e-6):
        raise ValueError(f"the log prior and log likelihood of {getattr(model, '__name__', model)} do not add up "
                         f"to its log density ({float(split)} != {float(joint)} at the origin)")

    template = potential.unravel(jnp.zeros(potential.dim))  # the sites and layout of the flat vector

    def prior_point(key):
        draw = handlers.trace(handlers.seed(model, key)).get_trace(**data)
        z = {n: biject_to(draw[n]["fn"].support).inv(draw[n]["value"]) for n in template}
        return ravel_pytree(z)[0]

    @functools.partial(jax.jit, static_argnums=1)
    def sample_prior(rng_key, n):
        return jax.vmap(prior_point)(jax.random.split(rng_key, n))

    return log_prior, log_likelihood, sample_prior


def tempered_smc(rng_key, particles, log_prior, log_likelihood, *, target_ess: float, num_mcmc_steps: int,
                 num_integration_steps: int, initial_step_size: float, max_tempering_steps: int,
                 dense_mass: bool):
    """One run of adaptive tempered SMC from ``particles`` ``(n, dim)`` (prior draws) to the
    posterior. Returns the final particles ``(n, dim)``, the log evidence estimate, the number of
    temperatures, whether lambda reached 1, and the last HMC moves' mean acceptance rate."""
    import functools

    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.smc import adaptive_tempered, resampling, tempered

    hmc = functools.partial(blackjax.hmc.build_kernel(), num_integration_steps=num_integration_steps)
    adaptive = adaptive_tempered.build_kernel(log_prior, log_likelihood, hmc, blackjax.hmc.init,
                                              resampling.systematic, target_ess)

    def mcmc_parameters(state, step_size):
        # the particles' weighted covariance (or its diagonal) as HMC's inverse mass matrix; parameters
        # with a leading axis of 1 are shared by all particles (blackjax.smc.from_mcmc)
        centred = state.particles - state.weights @ state.particles
        cov = (state.weights[:, None] * centred).T @ centred
        var = jnp.diag(cov)
        scale = jnp.where(var > 0, var, 1.0)  # a coordinate every particle shares (one survivor): unit scale
        metric = cov + jnp.diag(scale * 1e-6 + jnp.where(var > 0, 0.0, 1.0)) if dense_mass else scale
        return {"step_size": step_size[None], "inverse_mass_matrix": metric[None]}

    def acceptance(info):
        return jnp.mean(info.update_info.acceptance_rate)

    def cond(carry):
        _, _, _, steps, _, _, done = carry
        return ~done & (steps <= max_tempering_steps)

    def body(carry):
        key, state, log_z, steps, step_size, _, _ = carry
        key, step_key = jax.random.split(key)
        # once lambda is 1 the solver's increment is 0: the step resamples by the last weights and moves
        # the particles at the posterior, their weights then uniform and the increment of log p(y) 0
        final = state.tempering_param >= 1.0
        state, info = adaptive(step_key, state, num_mcmc_steps, mcmc_parameters(state, step_size))
        accept = acceptance(info)
        step_size = jnp.minimum(step_size * jnp.exp(accept - TARGET_ACCEPTANCE), MAX_STEP_SIZE)
        return key, state, log_z + info.log_likelihood_increment, steps + 1, step_size, accept, final

    dtype = particles.dtype
    initial = tempered.TemperedSMCState(particles, jnp.full(particles.shape[0], 1.0 / particles.shape[0], dtype),
                                        jnp.zeros((), dtype))
    start = (rng_key, initial, jnp.zeros((), dtype), jnp.zeros((), jnp.int32), jnp.asarray(initial_step_size, dtype),
             jnp.zeros((), dtype), jnp.zeros((), bool))
    _, state, log_z, steps, _, accept, done = jax.lax.while_loop(cond, body, start)
    return state.particles, log_z, steps - 1, done, accept


def run(spec, model, *, backend, method, seed, device, dtype, progress_bar, num_particles, num_runs, target_ess,
        num_mcmc_steps, num_integration_steps, initial_step_size, dense_mass, max_tempering_steps):
    import time

    import jax
    import numpy as np
    from scipy.special import logsumexp

    from inference.backends.numpyro_common import backend_context, to_backend, trace_sites
    from inference.potential import Potential
    from inference.result import InferenceResult

    if spec.networks:
        raise ValueError(f"method {method!r} samples a model's latent variables; {spec.name!r} has networks")
    if spec.minibatch is not None:
        raise ValueError(f"method {method!r} needs the whole likelihood; {spec.name!r} is trained on minibatches")
    del progress_bar  # runs compiled whole: no progress to show
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        sites = trace_sites(model, data, seed)
        potential = Potential.of(model, data, seed)
        log_prior, log_likelihood, sample_prior = prior_and_likelihood(model, data, potential)
        init_key, run_key = jax.random.split(jax.random.PRNGKey(seed))
        t0 = time.perf_counter()
        x0 = sample_prior(init_key, num_runs * num_particles).reshape(num_runs, num_particles, potential.dim)
        one = lambda key, x: tempered_smc(  # noqa: E731
            key, x, log_prior, log_likelihood, target_ess=target_ess, num_mcmc_steps=num_mcmc_steps,
            num_integration_steps=num_integration_steps, initial_step_size=initial_step_size,
            max_tempering_steps=max_tempering_steps, dense_mass=dense_mass)
        out = jax.block_until_ready(jax.jit(jax.vmap(one))(jax.random.split(run_key, num_runs), x0))
        elapsed = time.perf_counter() - t0
        particles, log_z, steps, reached, accept = (np.asarray(a) for a in out)
        if not reached.all():
            raise RuntimeError(f"smc: {int((~reached).sum())} of {num_runs} run(s) did not reach the posterior "
                               f"(lambda = 1) in max_tempering_steps={max_tempering_steps} temperatures")
        if not np.isfinite(log_z).all() or not np.isfinite(particles).all():
            raise RuntimeError(f"smc: non-finite log evidence or particles (log evidence per run: {log_z})")
        samples = potential.constrain_draws(particles)
    log_evidence = float(logsumexp(log_z) - np.log(num_runs))
    se = float(np.std(log_z, ddof=1) / np.sqrt(num_runs)) if num_runs > 1 else None
    warnings = []
    if num_runs == 1:
        warnings.append("smc: one run gives no standard error of the log evidence (num_runs >= 2 does)")
    if accept.min() < LOW_ACCEPTANCE:
        warnings.append(f"smc: the last HMC moves accepted {accept.min():.0%} of proposals (< {LOW_ACCEPTANCE:.0%}): "
                        "the particles hardly moved, and duplicates of a few may stand for the posterior")
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method,
        samples={k: v for k, v in samples.items() if k in sites.latent or k in sites.deterministic},
        observed_data=sites.observed, log_evidence=log_evidence, log_evidence_se=se,
        diagnostics={"log_evidence_runs": log_z, "num_tempering_steps": steps, "acceptance_rate": accept},
        timing={"sampling": elapsed}, warnings=warnings,
    )


register_method(
    "smc", family="importance", backends=_NUMPYRO, takes="model", doc=__doc__,
    options={
        "num_particles": opt(1000, "particles per run (the draws of one chain)", integer(2), _NUMPYRO),
        "num_runs": opt(4, "independent SMC runs: the chains, and the spread that gives the log evidence's "
                           "standard error", integer(1), _NUMPYRO),
        "target_ess": opt(0.5, "each temperature step keeps this fraction of the particles' effective sample size",
                          open_unit(), _NUMPYRO),
        "num_mcmc_steps": opt(5, "HMC steps that move the particles at each temperature", integer(1), _NUMPYRO),
        "num_integration_steps": opt(10, "leapfrog steps per HMC step", integer(1), _NUMPYRO),
        "initial_step_size": opt(0.5, "HMC step size at the first temperature, in the particles' sds (adapted "
                                      "after each, up to 1)", positive(),
                                 _NUMPYRO),
        "dense_mass": opt(True, "HMC's inverse mass matrix: the particles' covariance (True) or its diagonal "
                                "(False: for many latents, d^2 memory)", boolean(), _NUMPYRO),
        "max_tempering_steps": opt(500, "temperatures at most before a run is given up as stuck", integer(1),
                                   _NUMPYRO),
    },
)(run)
