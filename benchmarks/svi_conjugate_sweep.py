"""How far SVI's answer is from the exact posterior, over seeds: the optimization error
that tests/test_svi_conjugate.py must stay clear of.

    python -m benchmarks.svi_conjugate_sweep [--seeds 0 1 2 3]   (from the repository root)

Runs the test's schedule (8000 Adam steps, learning rate 0.1 decaying to 0.001; 8 particles
on NumPyro, 4 with the JIT ELBO on Pyro) with the full-rank and the mean-field guide, and
prints the standardized error of each posterior mean (in exact posterior sds) and the ratio
of each sd to its target: the exact sd for the full-rank guide, the KL-optimal mean-field sd
for the mean-field guide.
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import inference
import ppl_models
from tests.test_svi_conjugate import PARTICLES, SETTINGS


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    args = p.parse_args()
    warnings.simplefilter("ignore")
    spec = ppl_models.get_model("kidiq-conjugate_regression")
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
    main()
