"""Gradient estimators for discrete latents against the exact gradient, on a tiny sigmoid belief network.

    python benchmarks/gradient_estimators.py [--draws 2000] [--pyro-draws 1000] [--warmup 500] [--seed 0]

The SBN of ``ppl_models.discrete_latent.sbn`` with layers of 3 and 2 binary units on 2 random binary
images of 6 pixels, every parameter drawn Normal(0, 1): 32 values of each image's latents, so the ELBO
and the K-sample bounds (32^K K-tuples per image, so K stays small) are sums and their gradients exact
(``inference.gradient_check``). Each estimator draws the gradient ``--draws`` times (``--pyro-draws``
on Pyro, after ``--warmup`` calls that train the baselines) at that point. Prints one markdown row per
estimator: its bias, as the largest |mean - exact| / se over the coordinates of the model's (decoders,
prior logits: 35 numbers) and the guide's (encoders: 29) parameters and as |mean - exact| / |exact|
(beside |se| / |exact|, what that is for an unbiased estimator, give or take), and its variance, the
trace of the covariance of one draw.
"""
from __future__ import annotations

import argparse
import time
import warnings

from benchmarks.entry import run_benchmark
from inference import gradient_check as gc

# (estimator, num_particles, temperature): the rows, in order
ROWS = [("score", 1, None), ("score_pyro", 1, None), ("graph", 1, None), ("graph_pyro", 1, None),
        ("graph_avg", 1, None), ("graph_nn", 1, None), ("graph", 3, None), ("vimco", 3, None),
        ("vimco_pyro", 3, None), ("vimco", 2, None), ("relaxed", 1, 1.0), ("relaxed", 1, 0.5),
        ("relaxed", 1, 0.1), ("trace_numpyro", 1, None)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--pyro-draws", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    spec = gc.tiny_sbn()
    params = gc.study_params(spec, args.seed)
    exact = {}
    print("| estimator | K | objective | draws | max z model | max z guide | rel. bias (se) model "
          "| rel. bias (se) guide | variance model | variance guide | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, k, temperature in ROWS:
        est = gc.ESTIMATORS[name]
        bound_k = k if est.elbo == "vimco" else 1
        if bound_k not in exact:
            exact[bound_k] = gc.exact(spec, params, bound_k)
        num = args.draws if est.backend == "numpyro" else args.pyro_draws
        t0 = time.perf_counter()
        draws = gc.draws(name, params, num, num_particles=k, temperature=temperature or 0.5, warmup=args.warmup,
                         seed=args.seed + 1)
        s = gc.summarize(draws, exact[bound_k])
        label = est.description + (f", temperature {temperature}" if temperature else "")
        objective = "ELBO" if bound_k == 1 else f"{bound_k}-sample bound"
        print(f"| {label} | {k} | {objective} | {num} | {s.max_z['model']:.1f} | {s.max_z['guide']:.1f} | "
              f"{s.relative_bias['model']:.3f} ({s.relative_se['model']:.3f}) | {s.relative_bias['guide']:.3f} "
              f"({s.relative_se['guide']:.3f}) | {s.variance['model']:.2f} | "
              f"{s.variance['guide']:.1f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
