"""The ``ppl`` command line: list models, fit one, compare methods, fetch data.

    ppl models [--json]
    ppl methods [--json]
    ppl fit MODEL --backend numpyro --method nuts [--num-samples 2000 ...] [--out DIR] [--json]
    ppl compare MODEL [--methods numpyro:nuts pyro:svi:guide=mvn,num_steps=3000 ...] [--workers N] [--out DIR]
    ppl loo MODEL MODEL [...] --backend numpyro --method nuts [--num-samples 1000 ...]
    ppl sbc MODEL --method numpyro:svi:guide=normal [--num-simulations 100] [--out DIR]
    ppl sweep CONFIG [--executor local|ray] [--address HOST:PORT] [--workers N]
    ppl leaderboard [CONFIG] [--posteriors NAME ...] [--methods numpyro:nuts ...] [--seeds 0 1] [--store DIR]
    ppl download [--data-dir DIR] [--dataset posterior_database|posteriordb|mnist|text|all]

``ppl --plugin MODULE ...`` (repeatable) imports MODULE, a module name or a .py file, first: the
methods it registers (``inference.register_method``) are then the command's to run.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np

from inference import compilation_cache, interrupt
from inference.display import WIDTH, print_progress, print_warning
from ppl_models.errors import PPLError


def parse_value(text: str):
    """A command-line option value: true/false/none, an int, a float, a JSON object (a dict), else the string."""
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object ({e})") from None
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


def parse_keywords(extra: list[str]) -> dict:
    """The flags the parser does not know, ``--name VALUE`` or ``--name=VALUE``, as options: the
    libraries' own keywords (``--adapt-mass-matrix false``, ``--init-strategy init_to_median``), which
    ``resolve_options`` checks against the library's signature, naming the closest when none fits."""
    options, items = {}, list(extra)
    while items:
        flag = items.pop(0)
        if not flag.startswith("--") or flag == "--":
            raise ValueError(f"unexpected argument {flag!r}")
        name, sep, value = flag[2:].partition("=")
        if not sep:
            if not items or items[0].startswith("--"):
                raise ValueError(f"option {flag} needs a value")
            value = items.pop(0)
        try:
            options[name.replace("-", "_")] = parse_value(value)
        except argparse.ArgumentTypeError as e:
            raise ValueError(f"option {flag}: {e}") from None
    return options


def positive_float(text: str) -> float:
    """An argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, not {text!r}")
    return value


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
        try:
            options[key.strip()] = parse_value(value.strip())
        except argparse.ArgumentTypeError as e:
            raise ValueError(f"option {key.strip()!r} in method {text!r}: {e}") from None
    return parts[0], parts[1], options


def _progress_default() -> bool:
    return sys.stderr.isatty()


MAX_SUMMARY_ROWS = 20  # a screenful of ``ppl fit``'s posterior summary; --all shows every row


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


def cmd_methods(args) -> int:
    from inference.registry import methods

    table = methods()
    if args.json:
        print(json.dumps([{"method": m.name, "family": m.family, "backends": list(m.backends), "module": m.module,
                           "options": {k: {"default": o.default, "doc": o.doc, "expect": o.expect,
                                           "backends": list(o.backends)} for k, o in m.options.items()}}
                          for m in table.values()], indent=2, default=repr))
        return 0
    for m in table.values():
        head = f"{m.name}  [{m.family}; {', '.join(m.backends)}]"
        doc = (m.doc or "").split("\n\n")[0].replace("\n", " ").replace("``", "")  # the first paragraph, plain
        print(textwrap.fill(f"{head}  {doc}" if doc else head, WIDTH, subsequent_indent="    "))
        options = ", ".join(f"{k}={'none' if o.default is None else o.default}" for k, o in m.options.items()
                            if not isinstance(o.default, (dict, list)))
        print(textwrap.fill(options, WIDTH, initial_indent="    ", subsequent_indent="    "))
    print("(what each option means: ppl fit --help; everything, machine-readable: ppl methods --json)")
    return 0


def _final_loss(result):
    """The last step's loss; for likelihood-free methods, each player's, averaged over the last 100 steps."""
    if result.losses is None:
        return None
    if "loss_names" not in result.info:
        return float(result.losses[-1])
    means = np.mean(np.reshape(result.losses[-100:], (-1, len(result.info["loss_names"]))), axis=0)
    return dict(zip(result.info["loss_names"], means.tolist(), strict=True))


def check_writable_folder(folder: Path, flag: str = "--out") -> None:
    """Refuse, before a run starts, a folder that cannot be made or written: a path through a file,
    or a place without write permission. Nothing is created here."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {folder}: {existing} is a file, not a folder; give a folder for the results")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {folder}: {existing} is not writable; give a folder you can write to")


def _run_summary_line(result, args) -> str:
    """``model: backend method, seed S: C chains x D draws in T s``, on two lines if one is too wide."""
    run = f"{result.backend} {result.method}, seed {args.seed}"
    if result.samples:
        chains = "1 chain" if result.num_chains == 1 else f"{result.num_chains} chains"
        kind = "draws from the fitted guide" if result.losses is not None else "draws"
        run += f": {chains} x {result.num_draws} {kind} in {result.timing['wall']:.1f} s"
    else:
        run += f": {result.timing['wall']:.1f} s"
    line = f"{result.model}: {run}"
    return line if len(line) <= WIDTH else f"{result.model}:\n  {run}"


def _print_training(result, args, options) -> None:
    """The final loss of an optimization, in the words of its method."""
    if "loss_names" in result.info:
        last = _final_loss(result)
        print("final losses (mean of the last 100 steps): " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
    elif result.losses is not None:
        bound = result.info.get("objective", "ELBO")
        print(f"final loss (negative {bound}, scaled to the whole data set): {np.mean(result.losses[-100:]):.4g} "
              f"(mean of the last 100 of {len(result.losses)} steps)")


def _print_held_out(scores: dict) -> None:
    shown = {k: v for k, v in scores.items() if isinstance(v, (int, float)) and np.isfinite(v)}
    if shown:
        print("held-out scores: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))


def cmd_fit(args, options: dict) -> int:
    import inference
    from inference.compare import file_stem, method_label
    from inference.diagnostics import posterior_summary
    from inference.display import print_capped, print_table

    out = Path(args.out) if args.out else Path("runs") / args.model
    check_writable_folder(out)
    from inference.checkpoint import NOT_FINGERPRINTED

    # the file is named by what the run computes, not by how it is saved
    label = method_label(args.backend, args.method, {k: v for k, v in options.items() if k not in NOT_FINGERPRINTED})
    options.setdefault("progress_bar", _progress_default())
    with interrupt.activity(f"fit {args.model} ({args.backend} {args.method})", options.get("checkpoint")):
        result = inference.run(args.model, method=args.method, backend=args.backend, seed=args.seed, **options)
        held_out = {}
        spec = inference.api.resolve_model(args.model)
        if spec.held_out is not None and result.info["family"] != "mcmc":
            from inference.held_out import held_out_scores

            held_out = held_out_scores(spec, result, args.seed)
    saved = result.save(out / f"{file_stem(label)}_seed{args.seed}.npz")
    if args.json:
        summary = result.summary()
        print(json.dumps({"model": result.model, "backend": result.backend, "method": result.method,
                          "summary": json.loads(summary.to_json(orient="index")), "timing": result.timing,
                          "info": result.info, "warnings": result.warnings,
                          "final_loss": _final_loss(result), "held_out": held_out,
                          "saved": str(saved)}, indent=2, default=str))
        return 0
    print(_run_summary_line(result, args))
    if result.samples:
        mcmc = result.info["family"] == "mcmc"
        if args.all:
            print_table(posterior_summary(result.samples, mcmc))
        else:
            total = sum(int(np.prod(v.shape[2:], dtype=int)) for v in result.samples.values())
            print_capped(posterior_summary(result.samples, mcmc, limit=MAX_SUMMARY_ROWS), total,
                         "--all shows every site; --json and the saved result have all")
    elif not result.posterior_predictive:
        print(textwrap.fill("no posterior draws kept (pass --num-samples N to keep some; models trained on "
                            "minibatches keep none by default, their latents numbering one per data point)", WIDTH))
    for site, points in (result.posterior_predictive.items() if not result.samples else ()):
        print(f"generated {site!r}: {points.shape[1]} points of shape {points.shape[2:]} (kept in the saved result)")
    _print_training(result, args, options)
    _print_held_out(held_out)
    for message in result.warnings:
        print_warning(message)
    print(f"saved {saved}")
    return 0


def cmd_loo(args, options: dict) -> int:
    """Fit each model with one method and rank them by PSIS-LOO elpd (``inference.loo_compare``);
    data points with PSIS k-hat > 0.7 are warned of on stderr."""
    import inference
    from inference.criticism import khat_warnings
    from inference.display import print_table

    if len(set(args.models)) < 2:
        raise ValueError(f"ppl loo ranks two or more different models, not {args.models}")
    options.setdefault("progress_bar", _progress_default())
    results = {}
    for model in args.models:
        print(f"fitting {model} ({args.backend} {args.method})", file=sys.stderr, flush=True)
        with interrupt.activity(f"loo: fit {model} ({args.backend} {args.method})"):
            results[model] = inference.run(model, method=args.method, backend=args.backend, seed=args.seed,
                                           **options)
    table = inference.loo_compare(results)
    print(f"PSIS-LOO ({args.backend} {args.method}), best first. elpd: expected log predictive density of "
          "a left-out")
    print("point, summed; se: its standard error; elpd_diff, dse: behind the best, and its se; p: effective")
    print("number of parameters; weight: stacking weight; khat>0.7: points whose estimate is unreliable")
    columns = ["rank", "elpd", "se", "elpd_diff", "dse", "p", "weight", "khat_over_0.7"]
    shown = table[columns].rename(columns={"khat_over_0.7": "khat>0.7"})
    data = {model.partition("-")[0] for model in shown.index}
    if len(data) == 1:  # posteriordb names: <data>-<model>; the models differ after the data's name
        print(f"data: {data.pop()}")
        shown.index = [model.partition("-")[2] or model for model in shown.index]
    print_table(shown)
    for message in khat_warnings(table):
        print_warning(message)
    return 0


def cmd_compare(args) -> int:
    import inference
    from inference.compare import TERMINAL_COLUMNS, TERMINAL_HEADERS, headline_parameters, posterior_means
    from inference.display import print_table

    methods = [parse_method(m) for m in args.methods] if args.methods else None
    out = Path(args.out) if args.out else Path("runs") / args.model
    check_writable_folder(out)
    if args.report:
        check_writable_folder(Path(args.report), "--report")
    with interrupt.activity(f"compare on {args.model}"):
        table = inference.compare(args.model, methods, seed=args.seed, out=out, report=args.report,
                                  progress=print_progress,
                                  progress_bar=_progress_default(), workers=args.workers)
    if args.json:
        print(table.reset_index().to_json(orient="records", indent=2))
        return 0
    spec = inference.api.resolve_model(args.model)
    if "max_abs_z_mean" in table:
        print(f"\n{args.model}: posterior mean ± sd beside the reference\n(reference: {spec.reference.source})")
        print_table(posterior_means(table, spec.reference, headline_parameters(spec.reference)))
        print("\neach method against the reference: verdict ok = every mean and sd within 4 Monte Carlo "
              "errors\n(and R-hat <= 1.01), close = means within 0.25 sd and sds within 20%, else off;\n"
              "z = error in reference sds")
    else:
        print(f"\n{args.model}: no reference posterior; each method scored on held-out data")
    if args.all_columns:
        shown = table.drop(columns="warnings")
    else:  # a column no method fills is left out
        shown = table[[c for c in TERMINAL_COLUMNS if c in table and table[c].notna().any()]]
        shown = shown.rename(columns=TERMINAL_HEADERS)
    print_table(shown, more=f"--all-columns, --json or {out / 'comparison.csv'}")
    for label, text in table["warnings"].items():
        for message in filter(None, text.split(" | ")):
            print_warning(message, label)
    print(f"\nruns and comparison.csv written to {out}/")
    return 0


def cmd_sbc(args) -> int:
    from inference.display import print_table
    from inference.sbc import default_bins, sbc

    backend, method, options = parse_method(args.method)
    out = Path(args.out) if args.out else Path("runs") / args.model / "sbc"
    check_writable_folder(out)
    with interrupt.activity(f"sbc of {backend} {method} on {args.model}"):
        result = sbc(args.model, method, args.num_simulations, backend=backend, seed=args.seed,
                     num_ranks=args.num_ranks, progress=print_progress,
                     **options)
    if result.ranks.empty:
        error = f"every simulation failed; the first: {next(iter(result.failures.values()))}"
        print(json.dumps({"error": error}) if args.json else f"ppl: error: {error}", file=sys.stderr)
        return 1
    from ppl_models.atomic import atomic_write

    with atomic_write(out / "ranks.csv", "w") as f:
        result.ranks.to_csv(f)
    figure = result.plot(out / "ranks.png")
    tests = result.tests()
    if args.json:
        print(json.dumps({"model": args.model, "backend": backend, "method": method, "options": options,
                          "num_simulations": len(result.ranks), "num_ranks": args.num_ranks,
                          "p_value": result.p_value(), "tests": json.loads(tests.to_json(orient="index")),
                          "failures": {str(k): str(v) for k, v in result.failures.items()},
                          "ranks_csv": str(out / "ranks.csv"), "figure": str(figure)}, indent=2, default=str))
        return 0
    print(f"\n{args.model}, {backend} {method}: ranks of the true values among {args.num_ranks} posterior draws, "
          f"{len(result.ranks)} simulations\n(uniform ranks: p_value large, tail_share "
          f"{2 / default_bins(args.num_ranks):.2f}, mean_rank 0.5; tail_share above: under-dispersed)")
    print_table(tests, more="--json")
    print(f"\nuniformity of all parameters (Bonferroni): p = {result.p_value():.3g}")
    for i, error in result.failures.items():
        print_warning(f"simulation {i} failed: {error}")
    print(f"ranks.csv and {figure.name} written to {out}/")
    return 0


def cmd_sweep(args) -> int:
    from inference.display import print_table
    from inference.sweep import load_config, run_sweep

    sweep = load_config(args.config)
    for key in ("executor", "address", "workers", "timeout"):
        if getattr(args, key) is not None:
            setattr(sweep, key, getattr(args, key))
    if sweep.executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {sweep.executor!r}; valid choices: local, ray")
    if sweep.address is not None and sweep.executor != "ray":
        raise ValueError("--address is for --executor ray")
    with interrupt.activity(f"sweep {args.config}", checkpoint=str(sweep.store)):
        index = run_sweep(sweep, progress=print_progress)
    failed = index[index["status"] != "ok"]
    if args.json:
        print(index.to_json(orient="records", indent=2))
        return 1 if len(failed) else 0
    shown = ("model", "backend", "method", "seed", "status", "verdict", "warnings", "max_abs_z_mean", "wall_s")
    table = index[[c for c in shown if c in index]].copy()
    if "warnings" in table:  # how many warnings each run raised; they are printed in full below
        table["warnings"] = table["warnings"].fillna("").map(lambda w: len([m for m in str(w).split(" | ") if m]))
    print_table(table, more=f"--json or {sweep.store}/index.csv")
    if "warnings" in index:
        for _, row in index.iterrows():
            for message in filter(None, str(row.get("warnings") or "").split(" | ")):
                print_warning(message, f"{row['model']} {row['backend']} {row['method']} seed {row['seed']}")
    print(f"\n{len(index)} runs ({len(failed)} failed) in {sweep.store}/index.csv")
    return 1 if len(failed) else 0


def cmd_leaderboard(args) -> int:
    from inference.display import print_table
    from inference.leaderboard import default_methods, run_leaderboard
    from inference.sweep import check_config, load_config

    if args.config:
        given = [f"--{k}" for k in ("posteriors", "methods", "seeds") if getattr(args, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: give the posteriors, methods and seeds in {args.config} or as "
                             "flags, not both")
        sweep = load_config(args.config, skip_missing_backends=True)
        if args.store:
            sweep.store = Path(args.store)
    else:
        config = {"models": args.posteriors or "posteriordb", "methods": args.methods or default_methods(),
                  "seeds": args.seeds or [0, 1],
                  "store": args.store or "runs/leaderboard"}
        flags = {"models": "--posteriors", "methods": "--methods", "seeds": "--seeds"}
        sweep = check_config(config, "ppl leaderboard",
                             lambda where: flags.get(where[0] if isinstance(where, tuple) else where, ""),
                             skip_missing_backends=True)
    for key in ("executor", "address", "workers", "timeout"):
        if getattr(args, key) is not None:
            setattr(sweep, key, getattr(args, key))
    if sweep.address is not None and sweep.executor != "ray":
        raise ValueError("--address is for --executor ray")
    with interrupt.activity(f"leaderboard into {sweep.store}", checkpoint=str(sweep.store)):
        board = run_leaderboard(sweep, progress=print_progress,
                                reports=not args.no_reports, run=not args.score_only)
    if args.json:
        print(board.methods.reset_index().to_json(orient="records", indent=2))
        return 0
    table = board.methods.assign(pass_rate=board.methods["pass_rate"].map("{:.0%}".format))
    table = table.rename(columns={"posteriors": "posts", "pass_rate": "pass", "failures": "fail",
                                          "median_error": "error", "median_ess_per_s": "ess/s",
                                          "median_wall_s": "wall_s", "mean_rank": "rank"})
    print_table(table, more=f"{sweep.store}/methods.csv")
    failed = int((board.runs["status"] != "ok").sum())
    print(f"\n{len(board.runs)} runs ({failed} failed) on {board.runs['posterior'].nunique()} posteriors; "
          f"{len(sweep.skipped)} method-posterior pairs left out")
    print(f"per posterior: {sweep.store}/leaderboard.csv; heat map: {sweep.store}/leaderboard.html")
    return 0


def cmd_download(args) -> int:
    from ppl_models.data.download import (
        download_mnist,
        download_posterior_database,
        download_posteriordb,
        download_text,
    )

    target = Path(args.data_dir) if args.data_dir else None
    if args.dataset in ("posterior_database", "all"):
        for path in download_posterior_database(target=target):
            print(path)
    if args.dataset in ("posteriordb", "all"):
        for path in download_posteriordb(target=target):
            print(path)
    if args.dataset in ("mnist", "all"):
        print(download_mnist(target=target))
    if args.dataset in ("text", "all"):
        for path in download_text(target=target):
            print(path)
    return 0


def _with_default(doc: str, value) -> str:
    """``doc`` and its default, unless ``doc`` already says what the default is."""
    return doc if "default" in doc else f"{doc} (default {'none' if value is None else value})"


def option_help(name: str) -> str:
    """``--name``'s help: what it means, and its default, for each method that takes it."""
    from inference.options import COMMON, METHODS

    if name == "progress_bar":
        return "every method: show a progress bar on stderr (default: on when stderr is a terminal)"
    if name in COMMON:
        return f"every method: {_with_default(COMMON[name].doc, COMMON[name].default)}".replace("%", "%%")
    said: dict[str, list[str]] = {}
    for method, table in METHODS.items():
        if name in table:
            opt = table[name]
            backends = "" if len(opt.backends) == 2 else f" [{', '.join(opt.backends)} only]"
            said.setdefault(_with_default(opt.doc, opt.default) + backends, []).append(method)
    return "; ".join(f"{'/'.join(methods)}: {text}" for text, methods in said.items()).replace("%", "%%")


def build_parser() -> argparse.ArgumentParser:
    from inference.options import COMMON, METHODS
    from inference.registry import methods
    from ppl_models import BACKENDS

    parser = argparse.ArgumentParser(prog="ppl", description="Models and pluggable inference on Pyro and NumPyro.")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                        help="import MODULE (a module name or a .py file) first, for the methods it registers")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("methods", help="list the inference methods, with their family, backends and options")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("fit", help="fit one model with one method",
                       description="Fit MODEL with one method and print the posterior of its first parameters "
                                   "(or the final loss and held-out scores of a training method). Method options "
                                   "are given as --option-name VALUE; each says which methods take it. The "
                                   "libraries' own keywords pass through the same way (--adapt-mass-matrix "
                                   "false, --init-strategy init_to_median, --init-scale 0.01): see ppl methods.")
    p.add_argument("model")
    p.add_argument("--backend", required=True, choices=BACKENDS)
    p.add_argument("--method", required=True, choices=list(METHODS), metavar="METHOD",
                   help="one of " + ", ".join(METHODS) + " (ppl methods)")
    p.add_argument("--seed", type=int, default=0, help="every random number derives from it (default 0)")
    p.add_argument("--out", help="folder to save the result in, as .npz (default runs/MODEL)")
    p.add_argument("--all", action="store_true", help="summarize every site, not only the first screenful")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    options = p.add_argument_group("method options")
    for name in sorted({n for table in (*METHODS.values(), COMMON) for n in table}):
        options.add_argument("--" + name.replace("_", "-"), dest="opt_" + name, type=parse_value,
                             default=argparse.SUPPRESS, metavar="VALUE", help=option_help(name))

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
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="run N methods at once, each in a worker process, without progress bars (default 1)")

    p = sub.add_parser("loo", help="rank models fitted to the same data by PSIS-LOO (ArviZ's compare)",
                       description="Fit each MODEL with one method (options as for fit) and rank them by "
                                   "their PSIS-LOO expected log predictive density.")
    p.add_argument("models", nargs="+", metavar="MODEL")
    p.add_argument("--backend", required=True, choices=BACKENDS)
    posterior_methods = [m.name for m in methods().values() if m.posterior]
    p.add_argument("--method", required=True, choices=posterior_methods, metavar="METHOD",
                   help="one of " + ", ".join(posterior_methods) + " (ppl methods)")
    p.add_argument("--seed", type=int, default=0, help="every random number derives from it (default 0)")
    options = p.add_argument_group("method options")
    for name in sorted({n for table in (*METHODS.values(), COMMON) for n in table}):
        options.add_argument("--" + name.replace("_", "-"), dest="opt_" + name, type=parse_value,
                             default=argparse.SUPPRESS, metavar="VALUE", help=option_help(name))

    p = sub.add_parser("sbc", help="simulation-based calibration of one method on a model")
    p.add_argument("model")
    p.add_argument("--method", required=True, metavar="BACKEND:METHOD[:K=V,...]", help="e.g. numpyro:nuts")
    p.add_argument("--num-simulations", type=int, default=100)
    p.add_argument("--num-ranks", type=int, default=99, help="posterior draws each true value is ranked among")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="folder for ranks.csv and ranks.png (default runs/MODEL/sbc)")
    p.add_argument("--json", action="store_true", help="machine-readable output (errors too)")

    p = sub.add_parser("sweep", help="run a grid of models x methods x seeds from a YAML config")
    p.add_argument("config")
    p.add_argument("--executor", help="local (worker processes, the default) or ray")
    p.add_argument("--address", help="the Ray cluster to run on (HOST:PORT); default: a local Ray")
    p.add_argument("--workers", type=int, help="local executor: processes at once")
    p.add_argument("--timeout", type=positive_float, help="seconds a run may take; a longer one is a failure")
    p.add_argument("--json", action="store_true", help="machine-readable output (errors too)")

    p = sub.add_parser("leaderboard", help="rank inference methods over posteriors with reference draws, "
                       "as a resumable sweep")
    p.add_argument("config", nargs="?", help="a sweep config (YAML); or give the grid with the flags below")
    p.add_argument("--posteriors", nargs="+", metavar="NAME",
                   help="posteriors to run on (default: posteriordb, every registered posteriordb posterior)")
    p.add_argument("--methods", nargs="+", metavar="METHOD",
                   help="backend:method[:key=value,...] (default: compare's six methods)")
    p.add_argument("--seeds", nargs="+", type=int, help="default: 0 1")
    p.add_argument("--store", help="the results store (default: runs/leaderboard, or the config's store)")
    p.add_argument("--executor", choices=("local", "ray"), help="local worker processes (the default) or Ray")
    p.add_argument("--address", help="the Ray cluster to run on (HOST:PORT); default: a local Ray")
    p.add_argument("--workers", type=int, help="local executor: processes at once")
    p.add_argument("--timeout", type=positive_float, help="seconds a run may take; a longer one is a failure")
    p.add_argument("--score-only", action="store_true", help="run nothing: score the runs the store holds")
    p.add_argument("--no-reports", action="store_true", help="skip the per-posterior comparison reports")
    p.add_argument("--json", action="store_true", help="machine-readable output (errors too)")

    p = sub.add_parser("download", help="fetch the posteriordb database, MNIST and the text corpora (needs a network)")
    p.add_argument("--data-dir", help="target folder (default: the data directory)")
    p.add_argument("--dataset", choices=("posterior_database", "posteriordb", "mnist", "text", "all"), default="all",
                   help="posterior_database: the whole database in its own layout (every posteriordb model); "
                        "posteriordb: the older subset")
    return parser


COMMANDS = {"models": cmd_models, "methods": cmd_methods, "fit": cmd_fit, "compare": cmd_compare, "sbc": cmd_sbc,
            "sweep": cmd_sweep, "leaderboard": cmd_leaderboard, "download": cmd_download, "loo": cmd_loo}


def load_plugins(argv) -> None:
    """Import each ``--plugin MODULE`` of ``argv`` (before the parser is built: the methods they register
    are among its choices)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    from inference.registry import import_plugin

    for module in pre.parse_known_args(argv)[0].plugin:
        import_plugin(module)


def main(argv=None) -> int:
    """Run one ``ppl`` command; returns its exit status: 0, 1 (a sweep or SBC with failed runs), 2 (bad
    input, named in one line), 130 (interrupted by Ctrl-C, one line saying where)."""
    if argv is None:  # the ppl command itself: programs compiled by one command serve the next
        compilation_cache.enable()
    try:
        load_plugins(argv if argv is not None else sys.argv[1:])
    except (ImportError, OSError, ValueError, TypeError) as e:
        print(f"ppl: error: {e}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command not in ("fit", "loo"):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    options = {k.removeprefix("opt_"): v for k, v in vars(args).items() if k.startswith("opt_")}
    try:
        options.update(parse_keywords(extra))
        what = " ".join(["ppl", args.command, *([args.model] if hasattr(args, "model") else [])])
        with warnings.catch_warnings(), interrupt.watch_sigint(), interrupt.activity(what):
            # diagnostics are printed by the commands themselves
            from inference.api import InferenceWarning

            warnings.simplefilter("ignore", InferenceWarning)
            command = COMMANDS[args.command]
            return command(args, options) if args.command in ("fit", "loo") else command(args)
    except KeyboardInterrupt:
        status = interrupt.report()
        if argv is None:  # the ppl command itself, not a call from Python: end at once (see end_process)
            interrupt.end_process(status)
        return status
    except BrokenPipeError:  # the reader left (``ppl methods | head``): stop writing, as head expects
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (PPLError, ValueError, TypeError, OSError) as e:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(e), "type": type(e).__name__}))
        else:
            print(f"ppl: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
