"""The ``ppl`` command line: list models, fit one, compare methods, fetch data.

    ppl models [--json]
    ppl fit MODEL --backend numpyro --method nuts [--num-samples 2000 ...] [--out DIR] [--json]
    ppl compare MODEL [--methods numpyro:nuts pyro:svi:guide=mvn,num_steps=3000 ...] [--out DIR] [--report DIR]
    ppl sbc MODEL --method numpyro:svi:guide=normal [--num-simulations 100] [--out DIR]
    ppl sweep CONFIG [--executor local|ray] [--address HOST:PORT] [--workers N]
    ppl download [--data-dir DIR] [--dataset posteriordb|mnist|text|all]
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ppl_models.errors import PPLError


def parse_value(text: str):
    """A command-line option value: true/false/none, an int, a float, else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_method(text: str) -> tuple[str, str, dict]:
    """``backend:method[:key=value,key=value]`` -> ``(backend, method, options)``."""
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"method {text!r} must look like backend:method[:key=value,...], e.g. numpyro:svi:guide=mvn")
    options = {}
    for item in filter(None, (parts[2] if len(parts) == 3 else "").split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"option {item!r} in method {text!r} must look like key=value")
        options[key.strip()] = parse_value(value.strip())
    return parts[0], parts[1], options


def _progress_default() -> bool:
    return sys.stderr.isatty()


def _print_table(table: pd.DataFrame) -> None:
    with pd.option_context("display.max_columns", None, "display.width", 200, "display.precision", 3):
        print(table.to_string())


def _short_reference(source: str | None) -> str:
    """A reference's source cut to fit a table column: ``posteriordb draws``, ``exact ...``, ``NUTS (...)``."""
    if source is None:
        return "?"
    if source.startswith("posteriordb "):
        return "posteriordb draws"
    return source.split(";")[0].split(" by ")[0][:30]


def cmd_models(args) -> int:
    from ppl_models.registry import list_model_info

    # from what the models were registered with: no spec is built, no data read
    infos = list_model_info()
    if args.json:
        print(json.dumps([{"model": i.name, "backends": ",".join(i.backends) if i.backends is not None else None,
                           "reference": i.reference, "description": i.description} for i in infos], indent=2))
        return 0
    rows = [("model", "backends", "reference")] + [
        (i.name, ",".join(i.backends) if i.backends is not None else "?", _short_reference(i.reference) or "-")
        for i in infos]
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:  # left-aligned, within 100 columns
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print("(reference sources in full, and a description of each model: ppl models --json)")
    return 0


def _final_loss(result):
    """The last step's loss; for likelihood-free methods, each player's, averaged over the last 100 steps."""
    if result.losses is None:
        return None
    if "loss_names" not in result.info:
        return float(result.losses[-1])
    means = np.mean(np.reshape(result.losses[-100:], (-1, len(result.info["loss_names"]))), axis=0)
    return dict(zip(result.info["loss_names"], means.tolist(), strict=True))


def cmd_fit(args, options: dict) -> int:
    import inference

    options.setdefault("progress_bar", _progress_default())
    result = inference.run(args.model, method=args.method, backend=args.backend, seed=args.seed, **options)
    saved = result.save(Path(args.out) / f"{result.model}__{args.backend}_{args.method}_seed{args.seed}.npz") \
        if args.out else None
    summary = result.summary()
    if args.json:
        print(json.dumps({"model": result.model, "backend": result.backend, "method": result.method,
                          "summary": json.loads(summary.to_json(orient="index")), "timing": result.timing,
                          "info": result.info, "warnings": result.warnings,
                          "final_loss": _final_loss(result),
                          "saved": str(saved) if saved else None}, indent=2, default=str))
        return 0
    print(f"{result.model}: {result.backend} {result.method}, seed {args.seed}, "
          f"{result.num_chains} chain(s) x {result.num_draws} draws, {result.timing['wall']:.1f} s")
    if result.samples:
        _print_table(summary)
    elif not result.posterior_predictive:
        print("no posterior draws kept (pass num_samples, or resample for is, to keep some)")
    for site, points in result.posterior_predictive.items():
        print(f"generated {site!r}: {points.shape[1]} points of shape {points.shape[2:]} (kept in the saved result)")
    if "loss_names" in result.info:
        last = _final_loss(result)
        print("final losses (mean of the last 100 steps): " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
    elif result.losses is not None:
        bound = "IWAE bound" if args.method == "rws" or options.get("elbo") == "iwae" else "ELBO"
        print(f"final loss (negative {bound}, scaled to the whole data set): {np.mean(result.losses[-100:]):.3f} "
              "(mean of the last 100 steps)")
    for message in result.warnings:
        print(f"WARNING: {message}", file=sys.stderr)
    if saved:
        print(f"saved {saved}")
    return 0


def cmd_compare(args) -> int:
    import inference
    methods = [parse_method(m) for m in args.methods] if args.methods else None
    out = Path(args.out) if args.out else Path("runs") / args.model
    table = inference.compare(args.model, methods, seed=args.seed, out=out, report=args.report,
                              progress=None if args.json else lambda msg: print(msg, file=sys.stderr, flush=True))
    if args.json:
        print(table.reset_index().to_json(orient="records", indent=2))
        return 0
    if "max_abs_z_mean" in table:
        print(f"\n{args.model}: each method against the reference posterior "
              "(z = standardized error, in reference sds; w1 = 1-Wasserstein distance of a marginal, in reference "
              "sds; energy_distance = of the joint draws, standardized; 'within mcse' = within 4 Monte Carlo "
              "standard errors)")
    else:
        print(f"\n{args.model}: no reference posterior; each method scored on held-out data")
    from inference.compare import SUMMARY_COLUMNS

    # a column no method fills is left out
    columns = [c for c in SUMMARY_COLUMNS if c in table and table[c].notna().any()]
    _print_table(table[columns] if not args.all_columns else table.drop(columns="warnings"))
    for label, text in table["warnings"].items():
        for message in filter(None, text.split(" | ")):
            print(f"WARNING ({label}): {message}", file=sys.stderr)
    print(f"\nruns and comparison.csv written to {out}/")
    return 0


def cmd_sbc(args) -> int:
    from inference.sbc import default_bins, sbc

    backend, method, options = parse_method(args.method)
    out = Path(args.out) if args.out else Path("runs") / args.model / "sbc"
    result = sbc(args.model, method, args.num_simulations, backend=backend, seed=args.seed, num_ranks=args.num_ranks,
                 progress=lambda msg: print(msg, file=sys.stderr, flush=True), **options)
    if result.ranks.empty:
        print(f"ppl: error: every simulation failed; the first: {next(iter(result.failures.values()))}",
              file=sys.stderr)
        return 1
    from ppl_models.atomic import atomic_write

    with atomic_write(out / "ranks.csv", "w") as f:
        result.ranks.to_csv(f)
    figure = result.plot(out / "ranks.png")
    print(f"\n{args.model}, {backend} {method}: ranks of the true values among {args.num_ranks} posterior draws, "
          f"{len(result.ranks)} simulations (uniform ranks: p_value large, tail_share "
          f"{2 / default_bins(args.num_ranks):.2f}, mean_rank 0.5; tail_share above: under-dispersed)")
    _print_table(result.tests())
    print(f"\nuniformity of all parameters (Bonferroni): p = {result.p_value():.3g}")
    for i, error in result.failures.items():
        print(f"WARNING: simulation {i} failed: {error}", file=sys.stderr)
    print(f"ranks.csv and {figure.name} written to {out}/")
    return 0


def cmd_sweep(args) -> int:
    from inference.sweep import load_config, run_sweep

    sweep = load_config(args.config)
    for key in ("executor", "address", "workers"):
        if getattr(args, key) is not None:
            setattr(sweep, key, getattr(args, key))
    if sweep.executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {sweep.executor!r}; valid choices: local, ray")
    if sweep.address is not None and sweep.executor != "ray":
        raise ValueError("--address is for --executor ray")
    index = run_sweep(sweep, progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    failed = index[index["status"] != "ok"]
    shown = ("model", "backend", "method", "seed", "status", "wall_s", "max_abs_z_mean", "energy_distance")
    columns = [c for c in shown if c in index]
    _print_table(index[columns])
    print(f"\n{len(index)} runs ({len(failed)} failed) in {sweep.store}/index.csv")
    return 1 if len(failed) else 0


def cmd_download(args) -> int:
    from ppl_models.data.download import download_mnist, download_posteriordb, download_text

    target = Path(args.data_dir) if args.data_dir else None
    if args.dataset in ("posteriordb", "all"):
        for path in download_posteriordb(target=target):
            print(path)
    if args.dataset in ("mnist", "all"):
        print(download_mnist(target=target))
    if args.dataset in ("text", "all"):
        for path in download_text(target=target):
            print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from inference.options import COMMON, METHODS

    parser = argparse.ArgumentParser(prog="ppl", description="Models and pluggable inference on Pyro and NumPyro.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("fit", help="fit one model with one method",
                       description="Fit MODEL. Method options are given as --option-name VALUE.")
    p.add_argument("model")
    p.add_argument("--backend", required=True, help="pyro or numpyro")
    p.add_argument("--method", required=True, help=", ".join(METHODS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder to save the result in (.npz)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    options = p.add_argument_group("method options (see `inference.options`)")
    names = {n: o for table in (*METHODS.values(), COMMON) for n, o in table.items()}
    for name, opt in sorted(names.items()):
        options.add_argument("--" + name.replace("_", "-"), dest="opt_" + name, type=parse_value,
                             default=argparse.SUPPRESS, metavar="VALUE", help=opt.doc)

    p = sub.add_parser("compare", help="compare methods on a model against its reference posterior (or, "
                                        "without one, on its held-out data)")
    p.add_argument("model")
    p.add_argument("--methods", nargs="+", metavar="BACKEND:METHOD[:K=V,...]",
                   help="default: NUTS and SVI (mean-field and full-rank) on both backends")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for the runs and comparison.csv (default runs/MODEL)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--all-columns", action="store_true", help="show every parameter's errors")
    p.add_argument("--report", metavar="DIR", help="also write DIR/report.html: the table and figures, one page")

    p = sub.add_parser("sbc", help="simulation-based calibration of one method on a model")
    p.add_argument("model")
    p.add_argument("--method", required=True, metavar="BACKEND:METHOD[:K=V,...]", help="e.g. numpyro:nuts")
    p.add_argument("--num-simulations", type=int, default=100)
    p.add_argument("--num-ranks", type=int, default=99, help="posterior draws each true value is ranked among")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for ranks.csv and ranks.png (default runs/MODEL/sbc)")

    p = sub.add_parser("sweep", help="run a grid of models x methods x seeds from a YAML config")
    p.add_argument("config")
    p.add_argument("--executor", help="local (worker processes, the default) or ray")
    p.add_argument("--address", help="the Ray cluster to run on (HOST:PORT); default: a local Ray")
    p.add_argument("--workers", type=int, help="local executor: processes at once")

    p = sub.add_parser("download", help="fetch posteriordb files, MNIST and the text corpora (needs a network)")
    p.add_argument("--data-dir", help="target folder (default: the data directory)")
    p.add_argument("--dataset", choices=("posteriordb", "mnist", "text", "all"), default="all")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    options = {k.removeprefix("opt_"): v for k, v in vars(args).items() if k.startswith("opt_")}
    try:
        with warnings.catch_warnings():
            # diagnostics are printed by the commands themselves
            from inference.api import InferenceWarning

            warnings.simplefilter("ignore", InferenceWarning)
            if args.command == "models":
                return cmd_models(args)
            if args.command == "fit":
                return cmd_fit(args, options)
            if args.command == "compare":
                return cmd_compare(args)
            if args.command == "sbc":
                return cmd_sbc(args)
            if args.command == "sweep":
                return cmd_sweep(args)
            return cmd_download(args)
    except (PPLError, ValueError, TypeError) as e:
        print(f"ppl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
