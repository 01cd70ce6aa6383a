"""A sigmoid belief network on statically binarized MNIST, trained with score-function estimators.

    python -m benchmarks.sbn_mnist --num-steps 3000 --num-test 1000 --num-samples 1000

``binarized_mnist-sbn`` (``ppl_models.discrete_latent.sbn``: 200 binary units, linear networks; ``--layers
200,200`` for two layers), trained on the 60000 training and validation images by ``inference.run`` with
each objective of ``--objectives`` (SVI with the model's own guide, Adam at ``--learning-rate``,
minibatches of ``--batch-size``):

* ``graph_numpyro``: NumPyro's ``TraceGraph_ELBO`` (score function, Rao-Blackwellized, no baselines);
* ``graph_pyro``: Pyro's ``TraceGraph_ELBO`` with the guide's decaying-average and neural baselines (NVIL's);
* ``vimco_numpyro``, ``vimco_pyro``: VIMCO with ``--num-particles`` samples (the K-sample bound);
* ``relaxed_numpyro``: the Concrete relaxation at ``--temperature``, reparameterized (biased), in float64: in
  float32 the relaxed densities of saturated units overflowed (a non-finite loss at step 531 of 3000).

Each fit is scored by the same estimator: the test negative log-likelihood in nats, log p(x) estimated by
importance sampling with ``--num-samples`` draws of the trained guide per image (``inference.run(method="is")``
on NumPyro), on ``--num-test`` test images (a fixed shuffle of the test set). The papers trained for
millions of updates; this runs what a CPU affords, so compare the trend, not the level.

On a GPU: ``--device cuda`` trains and scores there (a clear error without one).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import inference
from benchmarks.entry import run_benchmark
from inference.backends.numpyro_common import jax_device
from inference.backends.pyro_common import torch_device
from ppl_models.discrete_latent.sbn import sbn_spec

BATCH_SIZE, LEARNING_RATE, NUM_PARTICLES, TEMPERATURE = 24, 1e-3, 5, 0.5  # the defaults of the command line
OBJECTIVES = {
    "graph_numpyro": ("numpyro", dict(elbo="graph")),
    "graph_pyro": ("pyro", dict(elbo="graph")),
    "vimco_numpyro": ("numpyro", dict(elbo="vimco")),
    "vimco_pyro": ("pyro", dict(elbo="vimco")),
    "relaxed_numpyro": ("numpyro", dict(elbo="trace", dtype="float64")),
}


def objective_options(objective: str, num_particles: int, temperature: float) -> tuple[str, dict]:
    """The backend and SVI options of one of ``OBJECTIVES``, with VIMCO's K or the relaxation's temperature."""
    backend, options = OBJECTIVES[objective]
    options = dict(options)
    if options["elbo"] == "vimco":
        options["num_particles"] = num_particles
    if objective.startswith("relaxed"):
        options["temperature"] = temperature
    return backend, options


def fit_sbn(spec, objective: str, num_steps: int, batch_size: int, learning_rate: float, num_particles: int,
            temperature: float, seed: int, device: str, **extra):
    """The SBN fitted with one of ``OBJECTIVES`` (SVI with the model's own guide, Adam at a constant
    ``learning_rate``); ``extra`` options go to ``inference.run`` (e.g. ``checkpoint``)."""
    backend, options = objective_options(objective, num_particles, temperature)
    return inference.run(spec, method="svi", backend=backend, guide="spec", num_steps=num_steps,
                         batch_size=batch_size, learning_rate=learning_rate, seed=seed, num_samples=0, device=device,
                         **options, **extra)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objectives", default="graph_numpyro,vimco_numpyro,graph_pyro")
    parser.add_argument("--layers", default="200", help="one or two layer sizes, lowest first: 200 or 200,200")
    parser.add_argument("--num-steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--num-particles", type=int, default=NUM_PARTICLES, help="VIMCO's K")
    parser.add_argument("--temperature", type=float, default=TEMPERATURE, help="the relaxed estimator's")
    parser.add_argument("--num-test", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    args = parser.parse_args(argv)
    chosen = args.objectives.split(",")
    if unknown := sorted(set(chosen) - set(OBJECTIVES)):
        parser.error(f"unknown objectives {unknown}; valid choices: {', '.join(OBJECTIVES)}")
    jax_device(args.device)  # a DeviceError now, not after the first fit
    torch_device(args.device)
    warnings.simplefilter("ignore")
    layers = tuple(int(s) for s in args.layers.split(","))
    name = "binarized_mnist-sbn" if len(layers) == 1 else "binarized_mnist-sbn2"
    spec = sbn_spec(layers=layers, name=name)
    test_spec = sbn_spec("test", layers=layers, num_images=args.num_test, name=name)
    print(f"# SBN {args.layers}: {args.num_steps} steps of {args.batch_size} images, Adam lr {args.learning_rate}; "
          f"test NLL (nats) on {args.num_test} test images, {args.num_samples} importance samples; "
          f"device {args.device}")
    print("| objective | backend | K | train s | ms/step | training bound (last 10%) | test NLL | se |")
    print("|---|---|---|---|---|---|---|---|")
    for objective in chosen:
        backend, options = objective_options(objective, args.num_particles, args.temperature)
        t0 = time.perf_counter()
        fit = fit_sbn(spec, objective, args.num_steps, args.batch_size, args.learning_rate, args.num_particles,
                      args.temperature, args.seed, args.device)
        seconds = time.perf_counter() - t0
        scored = inference.run(test_spec, method="is", backend="numpyro", params=fit.params,
                               num_samples=args.num_samples, seed=1, device=args.device)
        num = test_spec.data["num_data"]
        tail = fit.losses[-max(1, len(fit.losses) // 10):] / spec.data["num_data"]
        print(f"| {objective} | {backend} | {options.get('num_particles', 1)} | {seconds:.0f} | "
              f"{1000 * seconds / args.num_steps:.0f} | {-np.mean(tail):.2f} | {-scored.log_evidence / num:.2f} | "
              f"{scored.log_evidence_se / num:.2f} |", flush=True)


if __name__ == "__main__":
    run_benchmark(main)
