"""Pyro SVI's two defaults that buy speed, each against the old way, interleaved in one process.

    python benchmarks/pyro_svi_speed.py [--model eight_schools-eight_schools_noncentered] [--rounds 3]

1. The ELBO compiled with Pyro's JIT (``jit_compile=None``: on for a model without networks on its
   full data) against the uncompiled ELBO (``jit_compile=False``): the whole ``inference.run`` call
   with the default 5000 steps and AutoNormal, and the optimization alone.
2. An AutoNormal's 1000 posterior draws (with their importance weights) traced in chunks at once
   (``guide_draws``) against one trace per draw (its fallback, ``_one_draw`` in a loop).

Reported: the median over rounds of each time and of the per-round ratio old / new.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pyro
import torch

import inference
from benchmarks.entry import run_benchmark
from inference.backends import pyro_svi
from inference.backends.pyro_common import backend_context, to_backend, trace_sites
from ppl_models import get_model


def timed_run(model: str, jit) -> tuple[float, float]:
    t0 = time.perf_counter()
    result = inference.run(model, method="svi", backend="pyro", guide="normal", jit_compile=jit)
    return time.perf_counter() - t0, result.timing["optimization"]


def draw_times(model: str) -> tuple[float, float]:
    """(one trace per draw, chunks at once) for 1000 draws of a briefly fitted AutoNormal."""
    spec = get_model(model)
    with backend_context("cpu", spec.dtype or "float64") as dev:
        data = to_backend(spec.data, dev)
        pyro.clear_param_store()
        sites = trace_sites(spec.model_fn("pyro"), data)
        guide = pyro.infer.autoguide.AutoNormal(spec.model_fn("pyro"))
        guide(**data)
        shapes = sites.latent | sites.deterministic
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(1000):
                pyro_svi._one_draw(spec.model_fn("pyro"), guide, data, shapes)
            loop = time.perf_counter() - t0
        t0 = time.perf_counter()
        pyro_svi.guide_draws(spec.model_fn("pyro"), guide, data, 1000, shapes, sites.max_plate_nesting)
        chunked = time.perf_counter() - t0
    return loop, chunked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="eight_schools-eight_schools_noncentered")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    for i in range(args.rounds + 1):  # round 0 warms up and is discarded
        order = (False, None) if i % 2 == 0 else (None, False)
        times = {jit: timed_run(args.model, jit) for jit in order}
        loop, chunked = draw_times(args.model)
        if i:
            rows.append({"wall_old": times[False][0], "wall_new": times[None][0], "opt_old": times[False][1],
                         "opt_new": times[None][1], "draws_loop": loop, "draws_chunked": chunked})
            print({k: round(v, 3) for k, v in rows[-1].items()}, flush=True)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    ratio = {name: statistics.median(r[a] / r[b] for r in rows) for name, a, b in
             (("wall", "wall_old", "wall_new"), ("optimization", "opt_old", "opt_new"),
              ("draws", "draws_loop", "draws_chunked"))}
    print(f"{args.model}, {args.rounds} rounds (medians):")
    print(f"  whole run: uncompiled {med['wall_old']:.1f} s, compiled {med['wall_new']:.1f} s: {ratio['wall']:.2f}x")
    print(f"  optimization: {med['opt_old']:.1f} s vs {med['opt_new']:.1f} s: {ratio['optimization']:.2f}x")
    print(f"  1000 guide draws: one at a time {med['draws_loop']:.2f} s, chunked {med['draws_chunked']:.3f} s: "
          f"{ratio['draws']:.0f}x")


if __name__ == "__main__":
    run_benchmark(main)
