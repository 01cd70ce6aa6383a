"""Overhead of the layer around BlackJAX's NUTS against the same BlackJAX code written by hand, in one
process, interleaved.

    PPL_DATA_DIR=../shared/data python benchmarks/blackjax_overhead.py [--rounds 3]

Eight schools (non-centered), float64, 4 chains x (1000 warmup + 1000 draws), BlackJAX's window
adaptation (diagonal mass matrix, target acceptance 0.8) and NUTS (max 10 doublings), chains
vmapped, the whole run one jitted program, on both sides:

* layer: ``inference.run(..., method="nuts", engine="blackjax")``: the model lowered to a
  ``Potential``, the draws constrained and named, sample statistics, the pointwise log-likelihood
  and replicated data, R-hat/ESS and warnings;
* hand: the same BlackJAX calls on the log density of ``numpyro.infer.util.initialize_model``
  (the eight schools model written directly in NumPyro), initial points drawn as the layer draws
  them, the draws constrained with NumPyro's ``postprocess_fn``.

Wall time of the whole call, compilation included, both sides (nothing is cached across calls: each
call builds new closures, so JAX traces and compiles again). Each round runs both with the same seed,
in alternating order (layer first in even rounds); a first warm-up round is discarded. Reported: the
median of each time and the median of the per-round ratios layer / hand (1.00 = no overhead), and
the largest difference between the two sides' draws of ``mu`` (the same keys on both sides: 0 when
the two are the same computation).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
from overhead import raw_model  # benchmarks/overhead.py: eight schools by hand, beside this script

import inference
import ppl_models

MODEL = "eight_schools-eight_schools_noncentered"
SETTINGS = dict(num_warmup=1000, num_samples=1000, num_chains=4, target_accept_prob=0.8, max_tree_depth=10)


def hand(seed: int) -> tuple[float, np.ndarray]:
    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.adaptation.base import get_filter_adapt_info_fn
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    t0 = time.perf_counter()
    with jax.enable_x64(True):
        data = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v
                for k, v in ppl_models.get_model(MODEL).data.items()}
        model = raw_model("numpyro")
        info = initialize_model(jax.random.PRNGKey(seed), model, model_kwargs=data, dynamic_args=False)
        _, unravel = ravel_pytree(info.param_info.z)

        def logdensity(x):
            return -info.potential_fn(unravel(x))

        rng_key = jax.random.PRNGKey(seed)
        init_key, warm_key, sample_key = jax.random.split(rng_key, 3)
        n = SETTINGS["num_chains"]
        z = initialize_model(jax.random.split(init_key, n), model, model_kwargs=data, dynamic_args=False).param_info.z
        positions = jax.vmap(lambda zi: ravel_pytree(zi)[0])(z)
        warmup = blackjax.window_adaptation(blackjax.nuts, logdensity, is_mass_matrix_diagonal=True,
                                            target_acceptance_rate=SETTINGS["target_accept_prob"],
                                            adaptation_info_fn=get_filter_adapt_info_fn(),
                                            max_num_doublings=SETTINGS["max_tree_depth"])

        def chain(wkey, skey, position):
            (state, parameters), _ = warmup.run(wkey, position, num_steps=SETTINGS["num_warmup"])
            step = blackjax.nuts(logdensity, **parameters).step

            def one(state, key):
                state, i = step(key, state)
                return state, (state.position, i.is_divergent, i.acceptance_rate, i.num_integration_steps, i.energy)

            return jax.lax.scan(one, state, jax.random.split(skey, SETTINGS["num_samples"]))[1]

        draws, *stats = jax.jit(jax.vmap(chain))(jax.random.split(warm_key, n), jax.random.split(sample_key, n),
                                                 positions)
        flat = draws.reshape(-1, draws.shape[-1])
        sites = jax.jit(jax.vmap(lambda x: info.postprocess_fn(unravel(x))))(flat)
        samples = {k: np.asarray(v).reshape(n, SETTINGS["num_samples"], *v.shape[1:]) for k, v in sites.items()}
        stats = [np.asarray(s) for s in stats]
    assert samples["theta"].shape == (4, 1000, 8)
    return time.perf_counter() - t0, samples["mu"]


def layer(seed: int) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    r = inference.run(MODEL, method="nuts", engine="blackjax", backend="numpyro", seed=seed, **SETTINGS)
    return time.perf_counter() - t0, r.samples["mu"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    times = {"layer": [], "hand": []}
    diffs = []
    for seed in range(args.rounds + 1):  # round 0 warms up caches and is discarded
        first, second = (layer, hand) if seed % 2 == 0 else (hand, layer)
        (ta, mu_a), (tb, mu_b) = first(seed), second(seed)
        if seed > 0:
            times["layer"].append(ta if seed % 2 == 0 else tb)
            times["hand"].append(tb if seed % 2 == 0 else ta)
            diffs.append(float(np.max(np.abs(mu_a - mu_b))))
            print(f"round {seed}/{args.rounds}: layer {times['layer'][-1]:.3f} s, hand {times['hand'][-1]:.3f} s, "
                  f"max |mu_layer - mu_hand| {diffs[-1]:.3g}", flush=True)
    ratio = statistics.median(a / b for a, b in zip(times["layer"], times["hand"], strict=True))
    print(f"\nBlackJAX NUTS, eight schools, whole call: layer {statistics.median(times['layer']):.3f} s, "
          f"hand {statistics.median(times['hand']):.3f} s (medians over {args.rounds} rounds after one warm-up); "
          f"median ratio layer/hand {ratio:.3f}; max |mu difference| {max(diffs):.3g}")


if __name__ == "__main__":
    main()
