"""The IWAE bound against the exact evidence on PPCA (MNIST, 20 test images, k = 5 latents).

    python benchmarks/iwae_bounds_ppca.py [--num-samples 5000] [--scale 3]

Fits the PPCA guide by SVI (NumPyro), widens its scales by ``--scale`` to make a poorer
proposal, draws ``--num-samples`` importance weights per image and prints the IWAE bound
for k = 1 (the ELBO), 5, 50, 500 with standard errors, next to the exact log p(x).
"""
from __future__ import annotations

import argparse
import warnings

import numpy as np

import inference
import ppl_models
from benchmarks.entry import run_benchmark
from inference.importance import iwae_bounds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-samples", type=int, default=5000)
    p.add_argument("--scale", type=float, default=3.0)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    spec = ppl_models.get_model("mnist-ppca")
    fit = inference.run(spec, method="svi", backend="numpyro", guide="spec", num_steps=3000, learning_rate=0.02,
                        lr_decay=0.05)
    params = {**fit.params, "z_scale": args.scale * np.asarray(fit.params["z_scale"])}
    r = inference.run(spec, method="is", backend="numpyro", params=params, num_samples=args.num_samples, seed=2)
    print(f"exact log p(x) = {float(spec.reference.extra['log_evidence']):.3f}\n")
    print("| k | IWAE bound | se |\n|---|---|---|")
    for k, (bound, se) in iwae_bounds(r.log_weights, [1, 5, 50, 500]).items():
        print(f"| {k} | {bound:.3f} | {se:.3f} |")


if __name__ == "__main__":
    run_benchmark(main)
