"""Overhead of the layer around each BlackJAX method against the same BlackJAX code written by hand,
in one process, interleaved.

    PPL_DATA_DIR=../shared/data python benchmarks/blackjax_overhead.py [--rounds 3] [--methods nuts chees]

Eight schools (non-centered), float64, each method with its layer defaults (``SETTINGS``), on both
sides:

* layer: ``inference.run(MODEL, method=..., backend="numpyro", seed=seed, **settings)``: the model
  lowered to a ``Potential``, the method's runner, the draws constrained and named, sample
  statistics, the pointwise log-likelihood and replicated data, R-hat/ESS and warnings (MCMC);
* hand: the same BlackJAX calls on the log density of ``numpyro.infer.util.initialize_model``
  applied to eight schools written directly in NumPyro (``overhead.raw_model``), initial points
  drawn as the layer draws them, the same keys split the same way, the draws constrained with
  NumPyro's ``postprocess_fn``. SMC's prior and likelihood are NumPyro's handlers on the same model
  (``block`` hides the observed site from ``potential_energy``; the likelihood is the observed
  site's ``log_prob``), and its tempering loop is written out again here.

Methods (``METHODS``): ``nuts`` (``engine="blackjax"``: window adaptation + NUTS), ``mclmc``
(``mclmc_find_L_and_step_size`` + MCLMC), ``pathfinder`` (multi-path, PSIS resampling), ``smc``
(adaptive tempered SMC with particle-tuned HMC) and ``chees`` (Pathfinder starts,
``chees_adaptation`` + ``dynamic_hmc``).

Wall time of the whole call, compilation included, both sides (nothing is cached across calls: each
call builds new closures, so JAX traces and compiles again; JAX's persistent compilation cache is
not enabled). Each round runs both with the same seed, in alternating order (layer first in even
rounds); a first warm-up round is discarded. Reported per method: the median of each time, the
median of the per-round ratios layer / hand (1.00 = no overhead), the same ratio of the process's
CPU time (``time.process_time``, all threads: less sensitive than wall time to other processes on a
shared machine), the largest difference between the two sides' draws of ``mu`` (0 when the two are
the same computation), and where the layer's time went (medians): the runner
(``timing["sampling"]``: compilation and sampling, which the hand code does too; SMC's counts only
its jitted run), lowering and constraining (``timing["wall"]`` less the runner's, which the hand
code does too, once), the pointwise log-likelihood and replicated data (``timing["pointwise"]``)
and the rest (options, R-hat/ESS and warnings): the last two are work the hand version does not do.
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time
import warnings

import numpy as np
from overhead import raw_model  # benchmarks/overhead.py: eight schools by hand, beside this script

import inference
import inference.methods.chees  # noqa: F401  (registers "chees" until it is in registry.BUILTINS)
import ppl_models
from benchmarks.entry import run_benchmark

MODEL = "eight_schools-eight_schools_noncentered"
# each method's layer defaults, written out: both sides run these
SETTINGS = {
    "nuts": dict(num_warmup=1000, num_samples=1000, num_chains=4, target_accept_prob=0.8, max_tree_depth=10),
    "mclmc": dict(num_warmup=5000, num_samples=5000, num_chains=4, desired_energy_var=5e-4,
                  diagonal_preconditioning=True),
    "pathfinder": dict(num_samples=1000, num_paths=4, maxiter=100, maxcor=10, num_elbo_draws=100, ftol=1e-5,
                       gtol=1e-8, importance_resampling=True),
    "smc": dict(num_particles=1000, num_runs=4, target_ess=0.5, num_mcmc_steps=5, num_integration_steps=10,
                initial_step_size=0.5, dense_mass=True, max_tempering_steps=500),
    "chees": dict(num_warmup=1000, num_samples=500, num_chains=16, target_accept_prob=0.651, learning_rate=0.025,
                  initial_step_size=0.1, max_leapfrog_steps=1000, init="pathfinder", diagonal_preconditioning=True),
}
LAYER_EXTRA = {"nuts": dict(engine="blackjax")}  # how the layer is asked for BlackJAX (NUTS has two engines)


class Lowered:
    """Eight schools by hand as BlackJAX wants it: a flat unconstrained vector, its log density, initial
    points, and the constrained sites of draws (NumPyro's ``initialize_model``; no layer code)."""

    def __init__(self, seed: int):
        import jax
        import jax.numpy as jnp
        from jax.flatten_util import ravel_pytree
        from numpyro.infer.util import initialize_model

        self.data = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v
                     for k, v in ppl_models.get_model(MODEL).data.items()}
        self.model = raw_model("numpyro")
        info = initialize_model(jax.random.PRNGKey(seed), self.model, model_kwargs=self.data, dynamic_args=False)
        flat, self.unravel = ravel_pytree(info.param_info.z)
        self.dim, self.potential_fn, self.postprocess_fn = flat.shape[0], info.potential_fn, info.postprocess_fn

    def logdensity(self, x):
        return -self.potential_fn(self.unravel(x))

    def init(self, rng_key, n):
        import jax
        from jax.flatten_util import ravel_pytree
        from numpyro.infer.util import initialize_model

        z = initialize_model(jax.random.split(rng_key, n), self.model, model_kwargs=self.data,
                             dynamic_args=False).param_info.z
        return jax.vmap(lambda zi: ravel_pytree(zi)[0])(z)

    def constrain(self, draws) -> dict[str, np.ndarray]:
        import jax

        chains, num = draws.shape[:2]
        sites = jax.jit(jax.vmap(lambda x: self.postprocess_fn(self.unravel(x))))(draws.reshape(chains * num, -1))
        return {k: np.asarray(v).reshape(chains, num, *v.shape[1:]) for k, v in sites.items()}


def hand_nuts(low, rng_key, s):
    import blackjax
    import jax
    from blackjax.adaptation.base import get_filter_adapt_info_fn

    init_key, warm_key, sample_key = jax.random.split(rng_key, 3)
    n = s["num_chains"]
    warmup = blackjax.window_adaptation(blackjax.nuts, low.logdensity, is_mass_matrix_diagonal=True,
                                        target_acceptance_rate=s["target_accept_prob"],
                                        adaptation_info_fn=get_filter_adapt_info_fn(),
                                        max_num_doublings=s["max_tree_depth"])

    def chain(wkey, skey, position):
        (state, parameters), _ = warmup.run(wkey, position, num_steps=s["num_warmup"])
        step = blackjax.nuts(low.logdensity, **parameters).step

        def one(state, key):
            state, i = step(key, state)
            return state, (state.position, i.is_divergent, i.acceptance_rate, i.num_integration_steps, i.energy)

        return jax.lax.scan(one, state, jax.random.split(skey, s["num_samples"]))[1]

    draws, *_ = jax.jit(jax.vmap(chain))(jax.random.split(warm_key, n), jax.random.split(sample_key, n),
                                         low.init(init_key, n))
    return draws


def hand_mclmc(low, rng_key, s):
    import blackjax
    import jax

    frac = 1.0 / (3.0 + 1.0 / 3.0)  # the three tuning stages (and the preconditioner's third) fill num_warmup

    def chain(key, position):
        init_key, tune_key, sample_key = jax.random.split(key, 3)
        state = blackjax.mcmc.mclmc.init(position, low.logdensity, init_key)
        state, params, _ = blackjax.mclmc_find_L_and_step_size(
            mclmc_kernel=blackjax.mcmc.mclmc.build_kernel(), num_steps=s["num_warmup"], state=state,
            rng_key=tune_key, logdensity_fn=low.logdensity, frac_tune1=frac, frac_tune2=frac, frac_tune3=frac,
            desired_energy_var=s["desired_energy_var"], diagonal_preconditioning=True)
        sampler = blackjax.mclmc(low.logdensity, L=params.L, step_size=params.step_size,
                                 inverse_mass_matrix=params.inverse_mass_matrix)

        def one(state, key):
            state, info = sampler.step(key, state)
            return state, (state.position, info.energy_change, info.nonans)

        return jax.lax.scan(one, state, jax.random.split(sample_key, s["num_samples"]))[1]

    init_key, run_key = jax.random.split(rng_key)
    n = s["num_chains"]
    draws, *_ = jax.jit(jax.vmap(chain))(jax.random.split(run_key, n), low.init(init_key, n))
    return draws


def hand_pathfinder(low, rng_key, s):
    import jax
    import jax.numpy as jnp
    from blackjax.diagnostics import psis_weights
    from blackjax.vi import pathfinder

    init_key, path_key, resample_key = jax.random.split(rng_key, 3)
    n = s["num_paths"]

    def one_path(key, x):
        fit_key, draw_key = jax.random.split(key)
        state, _ = pathfinder.approximate(fit_key, low.logdensity, x, s["num_elbo_draws"], maxiter=s["maxiter"],
                                          maxcor=s["maxcor"], ftol=s["ftol"], gtol=s["gtol"])
        draws, logq = pathfinder.sample(draw_key, state, s["num_samples"])
        return draws, logq, jax.vmap(low.logdensity)(draws)

    @jax.jit
    def run(keys, x0, resample_key):
        draws, logq, logp = jax.vmap(one_path)(keys, x0)
        log_w, _ = psis_weights(jnp.where(jnp.isfinite(logp) & jnp.isfinite(logq), logp - logq, -jnp.inf).ravel())
        index = jax.random.choice(resample_key, log_w.size, (log_w.size,), p=jnp.exp(log_w))
        return draws.reshape(log_w.size, -1)[index].reshape(draws.shape)

    return run(jax.random.split(path_key, n), low.init(init_key, n), resample_key)


def hand_smc(low, rng_key, s):
    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.smc import adaptive_tempered, resampling, tempered
    from jax.flatten_util import ravel_pytree
    from numpyro import handlers
    from numpyro.distributions import constraints
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.util import potential_energy

    model, data = low.model, low.data
    prior_model = handlers.block(model, hide=["y"])

    def log_prior(x):
        return -potential_energy(prior_model, (), data, low.unravel(x))

    def log_likelihood(x):
        z = low.unravel(x)
        trace = handlers.trace(handlers.substitute(handlers.seed(model, 0), data={
            "mu": z["mu"], "tau": biject_to(constraints.positive)(z["tau"]),
            "theta_trans": z["theta_trans"]})).get_trace(**data)
        ll = jnp.zeros(()) + jnp.sum(trace["y"]["fn"].log_prob(trace["y"]["value"]))
        return jnp.where(jnp.isnan(ll), -jnp.inf, ll)

    def prior_point(key):
        draw = handlers.trace(handlers.seed(model, key)).get_trace(**data)
        return ravel_pytree({n: biject_to(draw[n]["fn"].support).inv(draw[n]["value"])
                             for n in ("mu", "tau", "theta_trans")})[0]

    hmc = functools.partial(blackjax.hmc.build_kernel(), num_integration_steps=s["num_integration_steps"])
    kernel = adaptive_tempered.build_kernel(log_prior, log_likelihood, hmc, blackjax.hmc.init,
                                            resampling.systematic, s["target_ess"])

    def one_run(key, particles):  # blackjax's kernel, the step size and mass matrix from the particles
        def body(carry):
            key, state, steps, step_size, _ = carry
            key, step_key = jax.random.split(key)
            final = state.tempering_param >= 1.0
            centred = state.particles - state.weights @ state.particles
            cov = (state.weights[:, None] * centred).T @ centred
            var = jnp.diag(cov)
            scale = jnp.where(var > 0, var, 1.0)
            metric = cov + jnp.diag(scale * 1e-6 + jnp.where(var > 0, 0.0, 1.0))
            state, info = kernel(step_key, state, s["num_mcmc_steps"],
                                 {"step_size": step_size[None], "inverse_mass_matrix": metric[None]})
            accept = jnp.mean(info.update_info.acceptance_rate)
            return key, state, steps + 1, jnp.minimum(step_size * jnp.exp(accept - 0.65), 1.0), final

        state = tempered.TemperedSMCState(particles, jnp.full(particles.shape[0], 1.0 / particles.shape[0]),
                                          jnp.zeros(()))
        out = jax.lax.while_loop(lambda c: ~c[-1] & (c[2] <= s["max_tempering_steps"]), body,
                                 (key, state, jnp.zeros((), jnp.int32), jnp.asarray(s["initial_step_size"]),
                                  jnp.zeros((), bool)))
        return out[1].particles

    init_key, run_key = jax.random.split(rng_key)
    runs, num = s["num_runs"], s["num_particles"]
    x0 = jax.jit(jax.vmap(prior_point))(jax.random.split(init_key, runs * num)).reshape(runs, num, low.dim)
    return jax.jit(jax.vmap(one_run))(jax.random.split(run_key, runs), x0)


def hand_chees(low, rng_key, s):
    import blackjax
    import jax
    import jax.numpy as jnp
    import optax
    from blackjax.adaptation.base import get_filter_adapt_info_fn
    from blackjax.vi import pathfinder

    n = s["num_chains"]
    warmup = blackjax.chees_adaptation(low.logdensity, n, target_acceptance_rate=s["target_accept_prob"],
                                       max_leapfrog_steps=s["max_leapfrog_steps"],
                                       adaptation_info_fn=get_filter_adapt_info_fn(), mass_matrix_estimation="diagonal")

    def run(warm_key, sample_key, positions):
        (states, parameters), _ = warmup.run(warm_key, positions, s["initial_step_size"],
                                             optax.adam(s["learning_rate"], b1=0.0, b2=0.95), s["num_warmup"],
                                             max_sampling_steps=s["num_samples"])
        step = jax.vmap(blackjax.dynamic_hmc(low.logdensity, **parameters).step)

        def one(states, key):
            states, info = step(jax.random.split(key, n), states)
            return states, (states.position, info.is_divergent, info.acceptance_rate, info.num_integration_steps,
                            info.energy)

        return jnp.swapaxes(jax.lax.scan(one, states, jax.random.split(sample_key, s["num_samples"]))[1][0], 0, 1)

    def start(key, x):
        fit_key, draw_key = jax.random.split(key)
        state, _ = pathfinder.approximate(fit_key, low.logdensity, x, 50, maxiter=100)
        draw, _ = pathfinder.sample(draw_key, state)
        return jnp.where(jnp.isfinite(low.logdensity(draw)) & jnp.isfinite(draw).all(), draw, x)

    init_key, path_key, warm_key, sample_key = jax.random.split(rng_key, 4)
    positions = jax.jit(jax.vmap(start))(jax.random.split(path_key, n), low.init(init_key, n))
    return jax.jit(run)(warm_key, sample_key, positions)


METHODS = {"nuts": hand_nuts, "mclmc": hand_mclmc, "pathfinder": hand_pathfinder, "smc": hand_smc,
           "chees": hand_chees}


def hand(method: str, seed: int) -> tuple[float, float, np.ndarray, dict]:
    import jax

    t0, c0 = time.perf_counter(), time.process_time()
    with jax.enable_x64(True):
        low = Lowered(seed)
        draws = METHODS[method](low, jax.random.PRNGKey(seed), SETTINGS[method])
        samples = low.constrain(draws)
    return time.perf_counter() - t0, time.process_time() - c0, samples["mu"], {}


def layer(method: str, seed: int) -> tuple[float, float, np.ndarray, dict]:
    t0, c0 = time.perf_counter(), time.process_time()
    r = inference.run(MODEL, method=method, backend="numpyro", seed=seed, **LAYER_EXTRA.get(method, {}),
                      **SETTINGS[method])
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    parts = {"runner": r.timing["sampling"], "lower+constrain": r.timing["wall"] - r.timing["sampling"],
             "pointwise": r.timing.get("pointwise", 0.0)}
    parts["rest"] = total - sum(parts.values())
    return total, cpu, r.samples["mu"], parts


def bench(method: str, rounds: int) -> dict:
    times, cpu, diffs, parts = {"layer": [], "hand": []}, {"layer": [], "hand": []}, [], []
    for seed in range(rounds + 1):  # round 0 warms up caches and is discarded
        order = (layer, hand) if seed % 2 == 0 else (hand, layer)
        out = {f.__name__: f(method, seed) for f in order}
        if seed > 0:
            for side in times:
                times[side].append(out[side][0])
                cpu[side].append(out[side][1])
            parts.append(out["layer"][3])
            diffs.append(float(np.max(np.abs(out["layer"][2] - out["hand"][2]))))
            print(f"{method} round {seed}/{rounds}: layer {times['layer'][-1]:.2f} s (CPU {cpu['layer'][-1]:.2f} s), "
                  f"hand {times['hand'][-1]:.2f} s (CPU {cpu['hand'][-1]:.2f} s), "
                  f"max |mu_layer - mu_hand| {diffs[-1]:.3g}; layer: "
                  + ", ".join(f"{k} {v:.2f} s" for k, v in parts[-1].items()), flush=True)
    return {"layer": statistics.median(times["layer"]), "hand": statistics.median(times["hand"]),
            "ratio": statistics.median(a / b for a, b in zip(times["layer"], times["hand"], strict=True)),
            "cpu_ratio": statistics.median(a / b for a, b in zip(cpu["layer"], cpu["hand"], strict=True)),
            "diff": max(diffs), "parts": {k: statistics.median(p[k] for p in parts) for k in parts[0]}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    args = p.parse_args()
    warnings.simplefilter("ignore")
    rows = {m: bench(m, args.rounds) for m in args.methods}
    print(f"\nEight schools, whole call, medians over {args.rounds} rounds after one warm-up:\n")
    print("| method | layer | by hand | median ratio | median CPU-time ratio | max abs mu difference | layer: runner / "
          "lower+constrain / pointwise / rest |")
    print("|---|---|---|---|---|---|---|")
    for m, r in rows.items():
        parts = " / ".join(f"{v:.2f}" for v in r["parts"].values())
        print(f"| {m} | {r['layer']:.2f} s | {r['hand']:.2f} s | {r['ratio']:.2f} | {r['cpu_ratio']:.2f} | "
              f"{r['diff']:.3g} | {parts} s |")


if __name__ == "__main__":
    run_benchmark(main)
