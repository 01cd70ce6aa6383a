"""Does writing a model once for both backends (``ppl_models.generic``) cost Pyro time per step?

    python -m benchmarks.generic_dispatch [--rounds 6] [--steps 300]   (from the repository root)

The same hand-written Pyro SVI loop (AutoNormal, Trace_ELBO, Adam; eight schools, float64)
with the raw Pyro model of ``benchmarks/overhead.py`` and with the generic model bound to
Pyro, interleaved; prints median ms per step and the median per-round ratio generic / raw.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormal

from benchmarks.entry import run_benchmark
from benchmarks.overhead import raw_model
from ppl_models.generic import for_backends
from ppl_models.hierarchical.eight_schools import eight_schools_noncentered


def ms_per_step(model, data, steps: int) -> float:
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    svi = SVI(model, AutoNormal(model), pyro.optim.Adam({"lr": 0.01}), Trace_ELBO())
    svi.step(**data)
    t0 = time.perf_counter()
    for _ in range(steps):
        svi.step(**data)
    return (time.perf_counter() - t0) / steps * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=300)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    torch.set_default_dtype(torch.float64)
    data = dict(J=8, sigma=torch.tensor([15.0, 10, 16, 11, 9, 11, 10, 18]),
                y=torch.tensor([28.0, 8, -3, 7, -1, 1, 18, 12]))
    models = {"raw": raw_model("pyro"), "generic": for_backends(eight_schools_noncentered)["pyro"]}
    times = {k: [] for k in models}
    for r in range(args.rounds):
        for name in list(models)[:: 1 if r % 2 else -1]:
            times[name].append(ms_per_step(models[name], data, args.steps))
    ratio = statistics.median(a / b for a, b in zip(times["generic"], times["raw"], strict=True))
    print({k: round(statistics.median(v), 3) for k, v in times.items()}, f"ratio generic/raw {ratio:.3f}")


if __name__ == "__main__":
    run_benchmark(main)
