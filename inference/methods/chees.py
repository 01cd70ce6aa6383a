"""ChEES-HMC (Hoffman, Radul & Sountsov 2021, "An Adaptive MCMC Scheme for Setting Trajectory
Lengths in Hamiltonian Monte Carlo", AISTATS): BlackJAX's ``blackjax.chees_adaptation`` then
``blackjax.dynamic_hmc``, many chains at once.

Plain HMC (velocity Verlet, a Metropolis correction at the end of each trajectory) whose trajectory
length is jittered: at each iteration every chain integrates ``ceil(u * L / step_size)`` leapfrog
steps, ``u`` in (0, 1] from a quasi-random Halton sequence shared by the chains. Warmup tunes, from
the ensemble of chains together (not each chain alone, as NUTS's warmup does),

* the step size by dual averaging, towards a harmonic mean of the chains' acceptance
  probabilities of ``target_accept_prob`` (0.651: the optimal acceptance rate of HMC, Beskos et
  al. 2013), kept as a moving average;
* the trajectory length L by Adam (optax; BlackJAX's ChEES update, ``learning_rate``, b1 = 0,
  b2 = 0.95) ascending the ChEES criterion: the change in the ensemble's squared distance from its
  mean, which is largest when a trajectory decorrelates the slowest direction's second moment;
* with ``diagonal_preconditioning``, a diagonal inverse mass matrix: the variances of all chains'
  positions pooled over the second half of warmup (BlackJAX's ``mass_matrix_estimation=
  "diagonal"``, with its floor on L at pi/2 times the square root of the whitened covariance's
  largest eigenvalue).

The ``num_chains`` chains then take ``num_samples`` steps each with the tuned step size, mass
matrix and mean trajectory length, the whole run one jitted program.

The step size is shared by the chains, and a chain whose transitions all diverge is left out of the
adaptation's statistics: a chain that starts far in the tails of a badly scaled posterior, where
the gradient is 1e7 and the stable step 1e-4, never moves. From the layer's uniform starts on
(-2, 2) (``init="uniform"``, as NUTS starts) that happened to 14 of 16 chains on
kidiq-kidscore_momiq (mom_iq not centered: intercept and slope correlated, scales 100 apart),
whatever the initial step size (0.1, 0.001), learning rate (0.025, 0.5), warmup length (3000) or
mass matrix; on earnings-logearn_interaction 3 of 16 chains never moved and the step size fell to
4e-5 (500 leapfrog steps a draw, R-hat 6.6). So by default (``init="pathfinder"``) each chain starts
from one draw of single-path Pathfinder (BlackJAX's, ``blackjax.vi.pathfinder``; 100 L-BFGS
iterations at most) run from its uniform start, as Zhang et al. (2022) propose to start MCMC:
near the posterior, yet dispersed. On both posteriors the chains then mixed (R-hat <= 1.006, no
divergence). Its cost is compilation, 5 to 30 s on a CPU, run time well under a second.

Per-draw statistics, ArviZ's names: ``acceptance_rate`` (the Metropolis acceptance probability),
``diverging`` (energy error above 1000), ``n_steps`` (leapfrog steps, one gradient each; the same
for every chain at a draw), ``energy`` (the Hamiltonian at the draw) and ``step_size`` (the tuned
one, the same for all).
"""
from __future__ import annotations

from inference.options import boolean, integer, one_of, open_unit, opt, positive
from inference.registry import register_method

NUMPYRO = ("numpyro",)

# Defaults. 16 chains x 500 draws: the ensemble's statistics need many chains (on an accelerator, more cost
# little more), and 16 keep a CPU run short; 8000 draws in all. 1000 warmup steps (BlackJAX's own default)
# and TFP's adaptation rate 0.025 as Adam's learning rate (b1 = 0, b2 = 0.95, as BlackJAX's tests): on kidiq
# (Pathfinder starts, seed 0) it gave 8.3 leapfrog steps a draw and a bulk ESS of 2119 (32 per 1000
# gradients), where 0.5 gave 41.6 steps and 4975 (15 per 1000); on eight schools (uniform starts) 3.2 steps
# and 3110 (121 per 1000) against 0.5's 12.0 steps and 4057 (42 per 1000). The defaults mixed on both at
# seeds 0 to 2. The diagonal mass matrix is needed on kidiq, whose scales are 100 apart: without it the
# chains had not mixed after the same warmup (R-hat 1.98, bulk ESS 22, step size 0.0125). The initial step
# size 0.1 is BlackJAX's; max_leapfrog_steps 1000 BlackJAX's default.

PATHFINDER_MAXITER = 100
PATHFINDER_ELBO_DRAWS = 50

OPTIONS = {
    "num_warmup": opt(1000, "warmup steps of the ensemble (step size, trajectory length, mass matrix)", integer(10),
                      NUMPYRO),
    "num_samples": opt(500, "draws kept per chain", integer(1), NUMPYRO),
    "num_chains": opt(16, "chains, tuned together from their ensemble", integer(2), NUMPYRO),
    "target_accept_prob": opt(0.651, "the harmonic mean of the chains' acceptance probabilities the step size is "
                                     "tuned for", open_unit(), NUMPYRO),
    "learning_rate": opt(0.025, "Adam's learning rate for the log trajectory length", positive(), NUMPYRO),
    "initial_step_size": opt(0.1, "the step size warmup starts from", positive(), NUMPYRO),
    "max_leapfrog_steps": opt(1000, "the trajectory length is capped at this many steps", integer(1), NUMPYRO),
    "init": opt("pathfinder", "where the chains start: 'uniform' on (-2, 2) as NUTS, or 'pathfinder': a draw of "
                              "single-path Pathfinder run from there", one_of("pathfinder", "uniform"), NUMPYRO),
    "diagonal_preconditioning": opt(True, "tune a diagonal inverse mass matrix from the chains' variances",
                                    boolean(), NUMPYRO),
}


@register_method("chees", family="mcmc", backends=NUMPYRO, options=OPTIONS, doc=__doc__)
def chees(potential, *, rng_key, num_warmup, num_samples, num_chains, target_accept_prob, learning_rate,
          initial_step_size, max_leapfrog_steps, init, diagonal_preconditioning):
    import blackjax
    import jax
    import jax.numpy as jnp
    import optax
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    logdensity = potential.logdensity
    warmup = blackjax.chees_adaptation(
        logdensity, num_chains, target_acceptance_rate=target_accept_prob, max_leapfrog_steps=max_leapfrog_steps,
        adaptation_info_fn=get_filter_adapt_info_fn(),  # keep none of the warmup's per-step states
        mass_matrix_estimation="diagonal" if diagonal_preconditioning else None)
    optim = optax.adam(learning_rate, b1=0.0, b2=0.95)

    def run(warm_key, sample_key, positions):
        # max_sampling_steps: the Halton sequence of jitters has enough bits for warmup and sampling
        (states, parameters), _ = warmup.run(warm_key, positions, initial_step_size, optim, num_warmup,
                                             max_sampling_steps=num_samples)
        step = jax.vmap(blackjax.dynamic_hmc(logdensity, **parameters).step)

        def one(states, key):
            states, info = step(jax.random.split(key, num_chains), states)
            return states, (states.position, info.is_divergent, info.acceptance_rate, info.num_integration_steps,
                            info.energy)

        _, out = jax.lax.scan(one, states, jax.random.split(sample_key, num_samples))
        draws, diverging, acceptance, n_steps, energy = (jnp.swapaxes(a, 0, 1) for a in out)  # (chain, draw, ...)
        step_size = jnp.broadcast_to(parameters["step_size"], (num_chains, num_samples))
        return draws, {"diverging": diverging, "acceptance_rate": acceptance, "n_steps": n_steps, "energy": energy,
                       "step_size": step_size}

    def start(key, x):
        from blackjax.vi import pathfinder

        fit_key, draw_key = jax.random.split(key)
        state, _ = pathfinder.approximate(fit_key, logdensity, x, PATHFINDER_ELBO_DRAWS, maxiter=PATHFINDER_MAXITER)
        draw, _ = pathfinder.sample(draw_key, state)
        return jnp.where(jnp.isfinite(logdensity(draw)) & jnp.isfinite(draw).all(), draw, x)

    init_key, path_key, warm_key, sample_key = jax.random.split(rng_key, 4)
    positions = potential.init(init_key, num_chains)
    if init == "pathfinder":
        positions = jax.jit(jax.vmap(start))(jax.random.split(path_key, num_chains), positions)
    return jax.jit(run)(warm_key, sample_key, positions)
