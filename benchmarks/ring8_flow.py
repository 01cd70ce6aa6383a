"""ring8-flow: a RealNVP flow fitted by maximum likelihood to the ring of eight Gaussians, scored
against the truth.

The truth is known exactly (``ppl_models.implicit.toys.RingOfGaussians``: eight Gaussians of sd 0.02
on the circle of radius 2), so a fit's held-out negative log-likelihood per point, exact for a flow
(no importance sampling), can be set against the least any density can reach: the ring's entropy
H(p) = log 8 + log(2 pi e sd^2) = -2.907 nats, to which the mean of -log p(x) over the same test points
is an unbiased estimate. A fit's expected held-out NLL is H(p) + KL(p || q): the gap is its KL
divergence from the truth. Points drawn from the fitted flow are scored as the implicit models are,
by the modes they cover (within 3 sd of a mode) and the share of them near some mode.

    python -m benchmarks.ring8_flow --num-steps 5000 --backends numpyro,pyro

``--device cuda`` trains on a GPU (an error before anything runs where there is none).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import inference
from benchmarks.entry import run_benchmark
from inference.backends import benchmark_backends
from inference.networks import fitted_network
from ppl_models.errors import DeviceError
from ppl_models.flows.realnvp import HELD_OUT_SEED, NUM_HELD_OUT, RING, ring_flow_spec
from ppl_models.nets import RealNVP


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-steps", type=int, default=5000)
    parser.add_argument("--backends", default="numpyro,pyro")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lr-decay", type=float, default=0.1, help="factor the step size falls by over the run")
    parser.add_argument("--hidden", default="64,64")
    parser.add_argument("--num-couplings", type=int, default=6)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="PyTorch's CPU threads (1 on a machine other jobs share: its thread pool then spins)")
    args = parser.parse_args(argv)
    try:
        backends = benchmark_backends(args.backends, args.device, args.torch_threads)
    except DeviceError as e:  # one line, before any training
        parser.error(str(e))
    flow = RealNVP(2, tuple(int(h) for h in args.hidden.split(",")), args.num_couplings)
    spec = ring_flow_spec(flow)
    test = RING.sample(NUM_HELD_OUT, HELD_OUT_SEED)
    true_nll = -RING.log_density(test)
    print(f"{flow}; {args.num_steps} steps of {args.batch_size} points, Adam {args.learning_rate:g} falling by "
          f"{args.lr_decay:g}; device {args.device}")
    print(f"truth: entropy H(p) = {RING.entropy():.3f} nats; the true density's NLL on the {NUM_HELD_OUT} test "
          f"points {true_nll.mean():.3f} (se {true_nll.std(ddof=1) / np.sqrt(true_nll.size):.3f})")
    print(f"{'backend':<9} {'train s':>8} {'test NLL':>9} {'test se':>8} {'gap (KL)':>9} {'modes':>6} {'near':>6}")
    for backend in backends:
        t0 = time.perf_counter()
        fit = inference.run(spec, method="svi", backend=backend, guide=None, batch_size=args.batch_size,
                            num_steps=args.num_steps, learning_rate=args.learning_rate, lr_decay=args.lr_decay,
                            num_samples=0, seed=args.seed, device=args.device)
        seconds = time.perf_counter() - t0
        scores = inference.held_out_scores(spec, fit)
        z = np.random.default_rng(args.seed).standard_normal((NUM_HELD_OUT, 2))
        coverage = RING.coverage(fitted_network(spec, fit, "flow")(z))
        print(f"{backend:<9} {seconds:>8.1f} {scores['heldout_nll']:>9.3f} {scores['heldout_nll_test_se']:>8.3f} "
              f"{scores['heldout_nll'] - true_nll.mean():>9.3f} {coverage.covered:>6d} {coverage.high_quality:>6.2f}")


if __name__ == "__main__":
    run_benchmark(main)
