"""MADE on statically binarized MNIST against the paper's table, on a short schedule.

Germain, Gregor, Murray & Larochelle (2015), "MADE: Masked Autoencoder for Distribution Estimation",
binarized MNIST table, negative log-likelihood of the test set (nats per image), among others:
NADE (fixed order) 88.33; MADE with one hidden layer: one mask 88.40, 32 masks 86.64.

Here ``binarized_mnist-made`` (784-500-784 ReLU, one mask, the natural pixel order unless told
otherwise) is fitted by maximum likelihood (``method="svi"``, ``guide=None``) on the 50000 training
images, with Adam, minibatches of ``--batch-size``, for ``--epochs`` epochs, on each backend of
``--backends``. Its NLL on all 10000 test images is exact (``inference.held_out_scores``:
HeldOut("exact_likelihood"), no importance sampling, estimator standard error 0); what the table
prints beside it is the test points' spread, sd / sqrt(10000). The paper trained to convergence,
with early stopping on the validation images: a few epochs land well above its numbers (RESULTS.md).

    python -m benchmarks.made_mnist --epochs 3 --backends numpyro,pyro

``--device cuda`` trains and scores on a GPU (an error before anything runs where there is none);
``--num-masks K --order random`` fits the mixture over K masks with their own orderings.
"""
from __future__ import annotations

import argparse
import time

import inference
from benchmarks.entry import run_benchmark
from inference.backends import benchmark_backends
from ppl_models.autoregressive.made import HIDDEN, made_spec
from ppl_models.errors import DeviceError
from ppl_models.nets import MADE

PAPER = {"NADE (fixed order)": 88.33, "MADE 1 hidden layer, 1 mask": 88.40, "MADE 1 hidden layer, 32 masks": 86.64}
NUM_TRAIN = 50000
BATCH_SIZE, LEARNING_RATE, LR_DECAY = 100, 1e-3, 0.3  # the defaults of the command line


def fit_made(spec, backend: str, num_steps: int, batch_size: int, learning_rate: float, lr_decay: float, seed: int,
             device: str, **extra):
    """MADE fitted by maximum likelihood (``guide=None``: nothing latent), Adam from ``learning_rate`` falling
    by ``lr_decay`` over the run; ``extra`` options go to ``inference.run`` (e.g. ``checkpoint``)."""
    return inference.run(spec, method="svi", backend=backend, guide=None, batch_size=batch_size, num_steps=num_steps,
                         learning_rate=learning_rate, lr_decay=lr_decay, num_samples=0, seed=seed, device=device,
                         **extra)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--backends", default="numpyro,pyro")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--learning-rate", type=float, default=LEARNING_RATE)
    parser.add_argument("--lr-decay", type=float, default=LR_DECAY, help="factor the step size falls by over the run")
    parser.add_argument("--hidden", default=",".join(map(str, HIDDEN)), help="hidden layer widths, e.g. 500 or 500,500")
    parser.add_argument("--num-masks", type=int, default=1)
    parser.add_argument("--order", choices=("natural", "random"), default="natural")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="PyTorch's CPU threads (1 on a machine other jobs share: its thread pool then spins)")
    args = parser.parse_args(argv)
    try:
        backends = benchmark_backends(args.backends, args.device, args.torch_threads)
    except DeviceError as e:  # one line, before any training
        parser.error(str(e))
    network = MADE(784, tuple(int(h) for h in args.hidden.split(",")), num_masks=args.num_masks, order=args.order)
    spec = made_spec("train", network=network)
    num_steps = max(1, round(args.epochs * NUM_TRAIN / args.batch_size))
    print(f"MADE {network.sizes}, {args.num_masks} mask(s), {args.order} order; {args.epochs:g} epoch(s) = "
          f"{num_steps} steps of {args.batch_size}, Adam {args.learning_rate:g} falling by {args.lr_decay:g}; "
          f"device {args.device}")
    print(f"{'backend':<10} {'train s':>8} {'score s':>8} {'train NLL':>10} {'test NLL':>9} {'test se':>8}")
    for backend in backends:
        t0 = time.perf_counter()
        fit = fit_made(spec, backend, num_steps, args.batch_size, args.learning_rate, args.lr_decay, args.seed,
                       args.device)
        t1 = time.perf_counter()
        scores = inference.held_out_scores(spec, fit)
        t2 = time.perf_counter()
        steps_per_epoch = NUM_TRAIN // args.batch_size
        train_nll = fit.losses[-steps_per_epoch:].mean() / NUM_TRAIN  # the last epoch's minibatch losses
        print(f"{backend:<10} {t1 - t0:>8.1f} {t2 - t1:>8.1f} {train_nll:>10.2f} {scores['heldout_nll']:>9.2f} "
              f"{scores['heldout_nll_test_se']:>8.2f}")
    print("paper (Germain et al. 2015), test NLL: "
          + "; ".join(f"{k} {v:.2f}" for k, v in PAPER.items()))


if __name__ == "__main__":
    run_benchmark(main)
