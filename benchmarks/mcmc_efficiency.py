"""ESS per second and per gradient of every registered MCMC method, on posteriors with reference draws.

    python benchmarks/mcmc_efficiency.py [--models M ...] [--seeds 0 1] [--out benchmarks/mcmc_efficiency.csv]
        [--timeout S]

Every method of family ``mcmc`` in the registry (``inference.methods()``) runs on NumPyro with its
default options (NUTS once per engine), plus Pyro's NUTS; each is scored against posteriordb's
reference draws (``inference.compare.score_row``): the minimum bulk ESS over the reference's
parameters, per second of the whole call (compilation included: what a user waits for) and per
gradient evaluation (where the method reports its leapfrog steps), and whether every mean and sd is
within 4 combined Monte Carlo errors of the reference. Runs of one model alternate between methods
seed by seed, so the machine's drifts spread over all of them. The best method per model is the
one with the highest ESS per second among those that pass.
"""
from __future__ import annotations

import argparse
import signal
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import inference
from benchmarks.entry import run_benchmark
from inference.compare import score_row
from ppl_models import get_model

MODELS = ["eight_schools-eight_schools_noncentered", "radon_mn-radon_hierarchical_intercept_noncentered",
          "diamonds-diamonds", "gp_pois_regr-gp_pois_regr"]


def candidates() -> list[tuple[str, str, dict]]:
    out = []
    for method in inference.methods().values():
        if method.family != "mcmc" or "numpyro" not in method.backends:
            continue
        engines = method.options["engine"].choices if "engine" in method.options else (None,)
        out += [("numpyro", method.name, {"engine": e} if e else {}) for e in engines]
    return out + [("pyro", "nuts", {})]


def _timed_out(signum, frame):
    raise TimeoutError("stopped by --timeout")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", default="benchmarks/mcmc_efficiency.csv")
    parser.add_argument("--timeout", type=float, default=0, help="stop a run after S seconds, a failed row (SIGALRM: "
                        "a compiled JAX loop is stopped only when it returns); 0, the default: no limit")
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _timed_out)
    warnings.simplefilter("ignore", inference.InferenceWarning)
    rows = []
    for model in args.models:
        spec = get_model(model)
        for seed in args.seeds:
            for backend, method, options in candidates():
                label = f"{backend} {method}" + "".join(f" {k}={v}" for k, v in options.items())
                t0 = time.perf_counter()
                signal.setitimer(signal.ITIMER_REAL, args.timeout)
                try:
                    result = inference.run(spec, method=method, backend=backend, seed=seed, **options)
                except Exception as error:  # noqa: BLE001 - a failure is a row of the table
                    rows.append({"model": model, "method": label, "seed": seed, "passes": False,
                                 "error": f"{type(error).__name__}: {error}"[:200], "wall_s": time.perf_counter() - t0})
                    print(f"{model} {label} seed {seed}: FAILED {rows[-1]['error']}", flush=True)
                    continue
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                row = score_row(result, spec.reference)
                rows.append({"model": model, "method": label, "seed": seed, "wall_s": row["wall_s"],
                             "ess_bulk_min": row["ess_bulk_min"], "ess_per_s": row["ess_per_s"],
                             "ess_per_grad": row["ess_per_grad"], "max_r_hat": row["max_r_hat"],
                             "divergences": row["divergences"], "max_abs_z_mean": row["max_abs_z_mean"],
                             "passes": bool(row["means_within_mcse"] and row["sds_within_mcse"])})
                print(f"{model} {label} seed {seed}: {row['wall_s']:.1f} s, ESS/s {row['ess_per_s']:.1f}, ESS/grad "
                      f"{row['ess_per_grad']:.3f}, passes {rows[-1]['passes']}", flush=True)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    summary = table.groupby(["model", "method"]).agg(
        wall_s=("wall_s", "median"), ess_per_s=("ess_per_s", "median"), ess_per_grad=("ess_per_grad", "median"),
        max_r_hat=("max_r_hat", "max"), passes=("passes", "all")).reset_index()
    pd.set_option("display.width", 100)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    for model, group in summary.groupby("model"):
        ok = group[group["passes"]]
        best = ok.loc[ok["ess_per_s"].idxmax(), "method"] if len(ok) and np.isfinite(ok["ess_per_s"]).any() else "-"
        print(f"best by ESS/s on {model}: {best}")


if __name__ == "__main__":
    run_benchmark(main)
