"""MCLMC, microcanonical Langevin Monte Carlo (Robnik & Seljak 2023, "Fluctuation without
dissipation: Microcanonical Langevin Monte Carlo", arXiv:2303.18221; the deterministic dynamics are
those of microcanonical HMC, Robnik, De Luca, Silverstein & Seljak 2023, JMLR 24(311)): BlackJAX's
``blackjax.mclmc``, tuned by ``blackjax.mclmc_find_L_and_step_size``.

The dynamics keep the speed fixed (isokinetic) and integrate with the two-stage McLachlan scheme (two
gradient evaluations a step), partially refreshing the velocity's direction on the scale L. There
is no Metropolis correction: the step size is tuned so that the energy error per dimension has
variance ``desired_energy_var``, which bounds the bias. Each chain is tuned on its own, in
BlackJAX's three stages of equal length (step size; then the step size with the diagonal
preconditioner, from the draws' variances, plus a third as many steps to retune the step size;
then L from the autocorrelation time), ``num_warmup`` steps in all; the tuned chain then takes
``num_samples`` steps, each kept.

Per-draw statistics: ``n_steps`` (gradient evaluations, 2 a draw), ``energy_change`` (the energy
error of the step), ``step_size``, and ``diverging``: a step whose state or energy was not finite,
which BlackJAX undoes (keeping the previous point, with a fresh direction).
"""
from __future__ import annotations

from inference.options import boolean, integer, opt, positive
from inference.registry import register_method

NUMPYRO = ("numpyro",)

# 5000 tuning steps and 5000 draws, 2 gradients each: about the gradients NUTS spends in its default 1000 + 1000
# iterations at 5 to 10 leapfrog steps each. Fewer tuning steps did not do: on kidiq-kidscore_momiq (intercept and
# slope correlated, their scales 100 apart) 1000 left the chains unmixed (R-hat 2 to 3, bulk ESS 5, the intercept's
# mean 2 reference sds off) in 3 of 3 seeds, 2000 in 2 of 3; 3000 and 5000 mixed in 3 of 3.

OPTIONS = {
    "num_warmup": opt(5000, "tuning steps per chain (step size, diagonal preconditioner, L)", integer(10), NUMPYRO),
    "num_samples": opt(5000, "draws kept per chain (one integrator step each)", integer(1), NUMPYRO),
    "num_chains": opt(4, "independent chains, each tuned on its own", integer(1), NUMPYRO),
    "desired_energy_var": opt(5e-4, "target variance of the energy error per dimension (sets the step size)",
                              positive(), NUMPYRO),
    "diagonal_preconditioning": opt(True, "tune a diagonal preconditioner (inverse mass matrix)", boolean(),
                                    NUMPYRO),
}


@register_method("mclmc", family="mcmc", backends=NUMPYRO, options=OPTIONS, doc=__doc__)
def mclmc(potential, *, rng_key, num_warmup, num_samples, num_chains, desired_energy_var, diagonal_preconditioning):
    import blackjax
    import jax
    import jax.numpy as jnp

    if potential.dim < 2:
        raise ValueError(f"MCLMC needs at least 2 dimensions; this model has {potential.dim} unconstrained one")
    logdensity = potential.logdensity
    # BlackJAX tunes for frac_tune1 + frac_tune2 (+ a third of it with preconditioning) + frac_tune3 of num_steps;
    # equal fractions summing to 1 make num_warmup the whole tuning run
    frac = 1.0 / (3.0 + (1.0 / 3.0 if diagonal_preconditioning else 0.0))

    def chain(key, position):
        init_key, tune_key, sample_key = jax.random.split(key, 3)
        state = blackjax.mcmc.mclmc.init(position, logdensity, init_key)
        state, params, _ = blackjax.mclmc_find_L_and_step_size(
            mclmc_kernel=blackjax.mcmc.mclmc.build_kernel(), num_steps=num_warmup, state=state, rng_key=tune_key,
            logdensity_fn=logdensity, frac_tune1=frac, frac_tune2=frac, frac_tune3=frac,
            desired_energy_var=desired_energy_var, diagonal_preconditioning=diagonal_preconditioning)
        sampler = blackjax.mclmc(logdensity, L=params.L, step_size=params.step_size,
                                 inverse_mass_matrix=params.inverse_mass_matrix)

        def step(state, key):
            state, info = sampler.step(key, state)
            return state, (state.position, info.energy_change, jnp.logical_not(info.nonans))

        _, (draws, energy_change, diverging) = jax.lax.scan(step, state, jax.random.split(sample_key, num_samples))
        return draws, {"n_steps": jnp.full(num_samples, 2, dtype=jnp.int32), "energy_change": energy_change,
                       "step_size": jnp.broadcast_to(params.step_size, (num_samples,)), "diverging": diverging}

    init_key, run_key = jax.random.split(rng_key)
    positions = potential.init(init_key, num_chains)
    return jax.jit(jax.vmap(chain))(jax.random.split(run_key, num_chains), positions)
