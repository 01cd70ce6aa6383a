"""A RealNVP flow on dequantized MNIST grey levels (``mnist-flow``, issue 18): exact held-out bits per pixel.

The layer fits ``mnist-flow`` by maximum likelihood (``method="svi"``, ``guide=None``; NumPyro, batch
``--batch-size``, Adam at ``--learning-rate``, ``--epochs`` epochs over the 60000 training images, each
minibatch dequantized afresh), checkpointed every epoch under ``--out`` so that a killed run resumes. It
is scored on the first ``--num-test`` test images (fixed shuffle, one fixed dequantization) by its exact
density: bits per pixel, (NLL + 784 log 256) / (784 log 2), an upper bound on the grey levels' own. A grid
of 64 images drawn from the fitted flow goes to ``--figure`` (by default beside the checkpoint, so that a
short trial leaves the documentation's figure alone).

Published numbers, same measure (uniformly dequantized MNIST, bits per pixel; Grathwohl et al. 2019,
FFJORD, Table 2): MADE 2.04 and MAF 1.89 (fully connected, Papamakarios et al. 2017), RealNVP 1.06 and
Glow 1.05 (convolutional, multi-scale). This flow is the fully connected kind: six affine couplings, each
conditioner one hidden layer of 1024 ReLU units, halves of the image in raster order.

    python -m benchmarks.mnist_flow --epochs 10
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import inference
from benchmarks.entry import run_benchmark
from benchmarks.image_grid import image_grid
from inference import interrupt
from inference.backends.numpyro_likelihood import log_likelihood
from inference.networks import fitted_network
from ppl_models.flows.mnist import ALPHA, PIXELS, bits_per_pixel, mnist_flow_spec
from ppl_models.flows.realnvp import unit_interval
from ppl_models.generic import use_backend

TRAIN_IMAGES = 60_000
PUBLISHED = {"MADE (Papamakarios et al. 2017)": 2.04, "MAF (Papamakarios et al. 2017)": 1.89,
             "RealNVP, convolutional (Dinh et al. 2017)": 1.06, "Glow (Kingma & Dhariwal 2018)": 1.05}


def samples(spec, result, num: int, seed: int) -> np.ndarray:
    """``num`` images x = (sigmoid(f(z)) - alpha) / (1 - 2 alpha), z ~ Normal(0, I), clipped to [0, 1]."""
    flow = fitted_network(spec, result, "flow")
    x = flow(np.random.default_rng(seed).standard_normal((num, PIXELS)).astype(np.float32))
    with use_backend("numpyro"):
        for transform in unit_interval(ALPHA):  # the model's own map onto (0, 1)
            x = transform(x)
    return np.clip(np.asarray(x, dtype=float), 0.0, 1.0)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--num-test", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", type=Path, default=Path("runs/mnist_flow"), help="the training checkpoint")
    parser.add_argument("--figure", type=Path, default=None, help="the sample grid (default: samples.png under "
                        "--out; the documentation's is docs/figures/mnist_flow_samples.png)")
    parser.add_argument("--progress", action="store_true", help="a progress bar on stderr")
    args = parser.parse_args(argv)
    figure = args.figure or args.out / "samples.png"
    spec = mnist_flow_spec()
    steps_per_epoch = TRAIN_IMAGES // args.batch_size
    num_steps = int(args.epochs * steps_per_epoch)
    checkpoint = args.out / f"flow-{num_steps}steps-lr{args.learning_rate:g}-seed{args.seed}.ckpt"
    t0 = time.perf_counter()
    with interrupt.activity("mnist-flow: training", checkpoint=str(checkpoint)):
        fit = inference.run(spec, method="svi", backend="numpyro", guide=None, batch_size=args.batch_size,
                            num_steps=num_steps, learning_rate=args.learning_rate, seed=args.seed,
                            device=args.device, progress_bar=args.progress, checkpoint=str(checkpoint),
                            checkpoint_every=steps_per_epoch)
    train_s = time.perf_counter() - t0
    test = mnist_flow_spec(num_test=args.num_test).held_out.data()
    bits = bits_per_pixel(-log_likelihood(test, fit.params, device=args.device))  # per test image, exact
    image_grid(samples(spec, fit, 64, args.seed), figure)
    print(f"# mnist-flow, {args.epochs:g} epochs ({num_steps} steps, batch {args.batch_size}, "
          f"lr {args.learning_rate:g})\n# {train_s:.0f} s of training in this process; {args.num_test} test images")
    print("| model | test bits per pixel: mean (se) | median | share above 8 (worse than uniform) |\n|---|---|---|---|")
    print(f"| mnist-flow (this run, exact) | {bits.mean():.3f} ({bits.std(ddof=1) / np.sqrt(bits.size):.3f}) | "
          f"{np.median(bits):.3f} | {np.mean(bits > 8):.4f} |")
    for name, value in PUBLISHED.items():
        print(f"| {name} | {value:.2f} | | |")
    print(f"# samples: {figure}")


if __name__ == "__main__":
    run_benchmark(main)
