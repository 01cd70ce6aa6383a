"""NumPyro NUTS against posteriordb's reference draws, one posterior at a time.

    PPL_DATA_DIR=../shared/data python benchmarks/posteriordb_nuts.py [NAME ...] [--csv FILE] [--seed 0]
        [--dense-mass] [--target-accept-prob 0.8] [--num-warmup 1000] [--num-samples 1000] [--num-chains 4]

With no NAME, every registered model whose reference is posteriordb's. NUTS runs with the layer's
defaults (4 chains, 1000 warmup and 1000 kept draws each, target acceptance 0.8, diagonal mass
matrix) unless told otherwise. A posterior passes when every mean lies within 4 combined MCSE of the
reference mean (sqrt(mcse^2 + mcse_ref^2)) and every sd within 15% of the reference sd (issue 16's
benchmark); the column "sd 4 MCSE" also gives the stricter check the tests make
(``tests.reference_checks``). Each row is appended to the CSV as it finishes; the Markdown table is
printed at the end. Wall time is the whole run (compilation included) on whatever machine runs it.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback

import numpy as np

import inference
import ppl_models
from benchmarks.csv_rows import append_rows
from benchmarks.entry import run_benchmark
from inference.diagnostics import score, summarize
from ppl_models.registry import model_info

SD_TOLERANCE = 0.15
COLUMNS = ["posterior", "dim", "pass", "means_ok", "sds_15pct", "sds_4mcse", "max_mean_err_mcse",
           "max_sd_err_pct", "divergences", "min_ess_bulk", "max_r_hat", "wall_s", "error"]


def posteriordb_names() -> list[str]:
    return [n for n in ppl_models.list_models() if (model_info(n).reference or "").startswith("posteriordb")]


def check(name: str, args) -> dict:
    spec = ppl_models.get_model(name)
    t0 = time.perf_counter()
    result = inference.run(spec, method="nuts", backend="numpyro", seed=args.seed, num_warmup=args.num_warmup,
                           num_samples=args.num_samples, num_chains=args.num_chains, dense_mass=args.dense_mass,
                           target_accept_prob=args.target_accept_prob,
                           **({"init_strategy": args.init_strategy} if args.init_strategy else {}))
    wall = time.perf_counter() - t0
    s = score(result.samples, spec.reference)
    ours = summarize({k: v for k, v in result.samples.items() if k in spec.reference.names})
    sd_close = (s["sd_ratio"] - 1).abs() <= SD_TOLERANCE
    return {"posterior": name, "dim": len(s), "pass": bool(s["mean_ok"].all() and sd_close.all()),
            "means_ok": f"{int(s['mean_ok'].sum())}/{len(s)}", "sds_15pct": f"{int(sd_close.sum())}/{len(s)}",
            "sds_4mcse": f"{int(s['sd_ok'].sum())}/{len(s)}",
            "max_mean_err_mcse": float((4 * (s["mean"] - s["ref_mean"]).abs() / s["tol_mean"]).max()),
            "max_sd_err_pct": float(100 * (s["sd_ratio"] - 1).abs().max()),
            "divergences": int(np.sum(result.sample_stats["diverging"])),
            "min_ess_bulk": float(ours["ess_bulk"].min()), "max_r_hat": float(ours["r_hat"].max()),
            "wall_s": wall, "error": ""}


def markdown(rows: list[dict]) -> str:
    head = ("| posterior | dim | pass | means within 4 MCSE | sds within 15% | sds within 4 MCSE | max mean error "
            "(MCSE) | max sd error | divergences | min bulk ESS | max R-hat | wall (s) |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['posterior']} | | error | {r['error']} |" + " |" * 8)
            continue
        lines.append(f"| {r['posterior']} | {r['dim']} | {'yes' if r['pass'] else '**no**'} | {r['means_ok']} | "
                     f"{r['sds_15pct']} | {r['sds_4mcse']} | {r['max_mean_err_mcse']:.1f} | "
                     f"{r['max_sd_err_pct']:.1f}% | {r['divergences']} | {r['min_ess_bulk']:.0f} | "
                     f"{r['max_r_hat']:.3f} | {r['wall_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="posteriors (default: every one with posteriordb reference draws)")
    parser.add_argument("--csv", default=None, help="append one row per posterior to this file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-warmup", type=int, default=1000)
    parser.add_argument("--num-samples", type=int, default=1000)
    parser.add_argument("--num-chains", type=int, default=4)
    parser.add_argument("--target-accept-prob", type=float, default=0.8)
    parser.add_argument("--dense-mass", action="store_true")
    parser.add_argument("--init-strategy", help="initialization by name, e.g. init_to_median (arma11 needs it)")
    args = parser.parse_args(argv)
    names = args.names or posteriordb_names()
    print("#", shlex.join(["python", "benchmarks/posteriordb_nuts.py", *(argv if argv is not None else sys.argv[1:])]),
          flush=True)
    rows = []
    for name in names:
        try:
            row = check(name, args)
        except Exception as e:  # a failure is a row of the table, not the end of the benchmark
            traceback.print_exc()
            row = {c: "" for c in COLUMNS} | {"posterior": name, "pass": False,
                                               "error": f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"}
        rows.append(row)
        print({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
        if args.csv:
            append_rows(args.csv, COLUMNS, [row])
    print(markdown(rows))
    print(f"\n{sum(bool(r['pass']) for r in rows)} of {len(rows)} pass")
    return 0


if __name__ == "__main__":
    run_benchmark(main)
