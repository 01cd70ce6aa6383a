"""How far SVI's answer is from the exact posterior, over seeds: the optimization error
that tests/test_svi_conjugate.py must stay clear of.

    python -m benchmarks.svi_conjugate_sweep [--seeds 0 1 2 3]   (from the repository root)

Runs the test's schedule (8000 Adam steps, learning rate 0.1 decaying to 0.001; 8 particles
on NumPyro, 4 with the JIT ELBO on Pyro) with the full-rank and the mean-field guide, and
prints the standardized error of each posterior mean (in exact posterior sds) and the ratio
of each sd to its target: the exact sd for the full-rank guide, the KL-optimal mean-field sd
for the mean-field guide.

    python -m benchmarks.svi_conjugate_sweep --defaults [--seeds 0 1 2 3 4] [--set learning_rate=0.01 lr_decay=1.0]

Runs the full-rank guide with the default options instead (only guide="mvn", plus any --set), and
prints the fitted guide's own location error (exact: read from its parameters, no draws) in exact
posterior sds, its sds over the exact sds, and the run's "not converged" warnings: the claim that
tests/test_svi_conjugate.py checks on fewer seeds.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

import inference
import ppl_models
from benchmarks.entry import run_benchmark
from inference.cli import parse_value as value
from tests.test_svi_conjugate import PARTICLES, SETTINGS, fitted_gaussian


def defaults(spec, seeds, options: dict) -> None:
    ref = spec.reference
    print("| backend | seed | seconds | z_mean of the guide's loc (exact sds) | guide sd / exact sd | not converged |\n"
          "|---|---|---|---|---|---|")
    for backend in ("numpyro", "pyro"):
        for seed in seeds:
            t0 = time.perf_counter()
            r = inference.run(spec, method="svi", backend=backend, guide="mvn", seed=seed, num_samples=100, **options)
            loc, cov = fitted_gaussian(r.params, backend, "mvn")
            z = (loc - ref.mean["beta"]) / ref.sd["beta"]
            warned = [w.split(";")[0][len("not converged: "):] for w in r.warnings if w.startswith("not converged")]
            print(f"| {backend} | {seed} | {time.perf_counter() - t0:.0f} | {np.round(z, 3).tolist()} "
                  f"| {np.round(np.sqrt(np.diag(cov)) / ref.sd['beta'], 3).tolist()} | {'; '.join(warned) or '-'} |",
                  flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default: 0-3, or 0-4 with --defaults")
    p.add_argument("--defaults", action="store_true", help="the full-rank guide with the default options")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="with --defaults: options to change")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)  # as the suite's workers (tests/conftest.py): tiny tensors gain nothing from threads
    spec = ppl_models.get_model("kidiq-conjugate_regression")
    if args.defaults:
        defaults(spec, args.seeds or [0, 1, 2, 3, 4], {k: value(v) for k, v in (kv.split("=", 1) for kv in args.set)})
        return
    args.seeds = args.seeds or [0, 1, 2, 3]
    ref = spec.reference
    print("| backend | guide | seed | seconds | z_mean (exact sds) | sd / target |\n|---|---|---|---|---|---|")
    for backend in ("numpyro", "pyro"):
        for guide in ("mvn", "normal"):
            target = ref.sd["beta"] if guide == "mvn" else ref.extra["beta_mean_field_sd"]
            for seed in args.seeds:
                t0 = time.perf_counter()
                r = inference.run(spec, method="svi", backend=backend, guide=guide, seed=seed, **SETTINGS,
                                  **PARTICLES[backend])
                draws = r.samples["beta"][0]
                z = (draws.mean(0) - ref.mean["beta"]) / ref.sd["beta"]
                print(f"| {backend} | {guide} | {seed} | {time.perf_counter() - t0:.0f} | {np.round(z, 3).tolist()} "
                      f"| {np.round(draws.std(0, ddof=1) / target, 3).tolist()} |", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
