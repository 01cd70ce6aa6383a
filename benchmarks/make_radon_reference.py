"""Reference posterior draws for the radon_mn models, made posteriordb style.

    python benchmarks/make_radon_reference.py [--num-warmup 5000] [--num-samples 10000] [--thin 10]

NUTS on NumPyro (float64), 10 chains, target_accept_prob 0.95, a long warmup;
the draws are thinned, checked (R-hat < 1.01, no divergences, bulk and tail
ESS >= 1000 for every stored parameter) and stored, with the command,
settings, versions and diagnostics, as ``ppl_models/hierarchical/reference/<posterior>.npz``
and ``.json``. A run that fails a check writes nothing. To keep the repository
small, ``--store-per-chain`` draws per chain (evenly spaced among the kept ones)
are saved; the diagnostics are computed on all kept draws.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import inference
from benchmarks.entry import run_benchmark
from inference.diagnostics import summarize
from ppl_models.hierarchical.radon import reference_path
from ppl_models.reference import save_reference_draws

# posteriordb's parameter names for each posterior (posteriors/<name>.json "dimensions")
POSTERIORS = {
    "radon_mn-radon_hierarchical_intercept_noncentered": ["alpha", "beta", "mu_alpha", "sigma_alpha", "sigma_y"],
    "radon_mn-radon_variable_intercept_slope_noncentered":
        ["alpha", "beta", "mu_alpha", "sigma_alpha", "mu_beta", "sigma_beta", "sigma_y"],
}


def make_reference(name, names, args) -> dict:
    t0 = time.perf_counter()
    result = inference.run(name, method="nuts", backend="numpyro", seed=args.seed, num_chains=args.num_chains,
                           num_warmup=args.num_warmup, num_samples=args.num_samples, target_accept_prob=0.95,
                           dtype="float64", progress_bar=args.progress_bar)
    kept = {k: result.samples[k][:, ::args.thin] for k in names}
    summary = summarize(kept)
    divergences = int(result.sample_stats["diverging"].sum())
    diagnostics = {"max_r_hat": float(summary["r_hat"].max()), "min_ess_bulk": float(summary["ess_bulk"].min()),
                   "min_ess_tail": float(summary["ess_tail"].min()), "divergences": divergences,
                   "draws_per_chain": int(next(iter(kept.values())).shape[1]), "seconds": time.perf_counter() - t0}
    print(name, json.dumps(diagnostics), flush=True)
    failed = [f"R-hat {diagnostics['max_r_hat']:.4f} >= 1.01"] * (diagnostics["max_r_hat"] >= 1.01)
    failed += [f"{divergences} divergences"] * (divergences > 0)
    failed += ["ESS < 1000"] * (min(diagnostics["min_ess_bulk"], diagnostics["min_ess_tail"]) < 1000)
    if failed:
        raise SystemExit(f"{name}: reference rejected ({'; '.join(failed)}); nothing written")
    step = max(1, diagnostics["draws_per_chain"] // args.store_per_chain)
    stored = {k: v[:, ::step][:, :args.store_per_chain] for k, v in kept.items()}
    source = f"NUTS (numpyro, 10 chains) by benchmarks/make_radon_reference.py; see {name}.json"
    save_reference_draws(reference_path(name), stored, source)
    provenance = {"command": "python " + shlex.join(sys.argv), "settings": vars(args), "target_accept_prob": 0.95,
                  "versions": result.info["versions"], "diagnostics": diagnostics,
                  "stored_draws_per_chain": int(next(iter(stored.values())).shape[1])}
    reference_path(name).with_suffix(".json").write_text(json.dumps(provenance, indent=2) + "\n")
    return diagnostics


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-chains", type=int, default=10)
    p.add_argument("--num-warmup", type=int, default=5000)
    p.add_argument("--num-samples", type=int, default=10000)
    p.add_argument("--thin", type=int, default=10)
    p.add_argument("--store-per-chain", type=int, default=200)
    p.add_argument("--seed", type=int, default=4711)
    p.add_argument("--progress-bar", action="store_true")
    p.add_argument("posteriors", nargs="*", default=list(POSTERIORS))
    args = p.parse_args()
    for name in args.posteriors:
        make_reference(name, POSTERIORS[name], args)


if __name__ == "__main__":
    run_benchmark(main)
