"""``inference.leaderboard``: inference methods ranked over many posteriors with reference draws.

A leaderboard is a sweep (``inference.sweep``: methods x posteriors x seeds, run in worker
processes or as Ray tasks into a results store, resumable) read back and scored:

- **per run**, the scores of ``inference.compare.score_row`` against the posterior's reference
  draws: the standardized errors of the means and sds, the marginal W1 and the joint energy
  distance, k-hat, ESS per second and per gradient, wall time and peak memory; a run that raised
  or whose worker died is a scored failure. A run **passes** when every posterior mean is within 4
  combined Monte Carlo standard errors of the reference's, every sd within ``PASS_SD`` of it, and,
  for MCMC, no transition diverged and every R-hat is at most ``PASS_R_HAT``. Its **error** is the
  larger of the worst |z| of a mean (in reference sds) and the worst relative error of an sd;
- **per posterior and method** (a cell of the heat map), how many seeds passed and the medians of
  the error, ESS/s and wall time; methods are **ranked** per posterior: those that passed on every
  seed first, the faster first (time to an accurate answer), then the others, the smaller median
  error first, then those that only failed;
- **per method**, its pass rate over its runs, its failures, its median error, ESS/s and wall
  time, and its mean rank.

``write`` puts ``leaderboard.csv`` (the cells), ``methods.csv`` (the methods) and
``leaderboard.html`` (the method table and a heat map of posteriors x methods, each posterior
linked to its comparison report, ``reports/<posterior>/report.html``) in the store.
"""
from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from inference.compare import method_label
from inference.diagnostics import RHAT_MAX
from inference.sweep import Sweep, run_sweep, write_index
from ppl_models.atomic import atomic_write

PASS_SD = 0.15  # every posterior sd within 15% of the reference's
PASS_R_HAT = RHAT_MAX  # 1.01, Vehtari et al. (2021)
REPORTS = "reports"


@dataclass
class Leaderboard:
    runs: pd.DataFrame  # one row per run: label, posterior, seed, status, passed, error and the scores
    cells: pd.DataFrame  # one row per (posterior, method label): passes, medians, rank
    methods: pd.DataFrame  # one row per method label: pass rate, failures, medians, mean rank
    skipped: list  # (posterior, method label, why): pairs the config left out
    store: Path


def score_runs(index: pd.DataFrame) -> pd.DataFrame:
    """The sweep's index with each run's method ``label``, whether it ``passed`` and its ``error``."""
    runs = index.rename(columns={"model": "posterior"}).copy()
    runs["label"] = [method_label(b, m, json.loads(o) if isinstance(o, str) else (o or {}))
                     for b, m, o in zip(runs["backend"], runs["method"], runs["options"], strict=True)]
    for column in ("max_abs_z_mean", "max_abs_z_sd", "divergences", "max_r_hat", "wall_s", "ess_per_s"):
        runs[column] = pd.to_numeric(runs[column], errors="coerce") if column in runs else math.nan
    ok = runs["status"] == "ok"
    means = runs["means_within_mcse"].map(lambda v: v is True or str(v) == "True") if "means_within_mcse" in runs \
        else pd.Series(False, index=runs.index)
    runs["passed"] = (ok & means & (runs["max_abs_z_sd"] <= PASS_SD) & ~(runs["divergences"] > 0)
                      & ~(runs["max_r_hat"] > PASS_R_HAT))
    runs["error"] = np.where(ok, np.fmax(runs["max_abs_z_mean"], runs["max_abs_z_sd"]), math.nan)
    return runs


def _median(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def score_cells(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (posterior, method label): seeds run, passed and failed, the medians, the rank."""
    rows = []
    for (posterior, label), group in runs.groupby(["posterior", "label"], sort=False):
        rows.append({"posterior": posterior, "method": label, "runs": len(group), "passed": int(group["passed"].sum()),
                     "failures": int((group["status"] != "ok").sum()), "error": _median(group["error"]),
                     "ess_per_s": _median(group["ess_per_s"]), "wall_s": _median(group["wall_s"]),
                     "peak_mb": _median(group.get("peak_mb", pd.Series(dtype=float))),
                     "failure": next((str(e) for e in group["error_message"] if e), "")})
    cells = pd.DataFrame(rows)
    if cells.empty:
        return cells
    tier = np.where(cells["passed"] == cells["runs"], 0, np.where(cells["failures"] < cells["runs"], 1, 2))
    key = np.where(tier == 0, cells["wall_s"], cells["error"])
    cells["_tier"], cells["_key"] = tier, np.nan_to_num(key, nan=np.inf)
    cells["rank"] = (cells.sort_values(["_tier", "_key"]).groupby("posterior").cumcount() + 1).astype(int)
    return cells.drop(columns=["_tier", "_key"])


def score_methods(runs: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per method label, the best first: pass rate, failures, medians over its runs, mean rank."""
    rows = []
    for label, group in runs.groupby("label", sort=False):
        mine = cells[cells["method"] == label]
        rows.append({"method": label, "posteriors": mine["posterior"].nunique(), "runs": len(group),
                     "pass_rate": float(group["passed"].mean()), "failures": int((group["status"] != "ok").sum()),
                     "median_error": _median(group["error"]), "median_ess_per_s": _median(group["ess_per_s"]),
                     "median_wall_s": _median(group["wall_s"]), "mean_rank": float(mine["rank"].mean())})
    methods = pd.DataFrame(rows)
    return methods.sort_values(["pass_rate", "mean_rank"], ascending=[False, True]).set_index("method")


def score(index: pd.DataFrame, store: str | os.PathLike, skipped: list = ()) -> Leaderboard:
    """A ``Leaderboard`` from a sweep's index (``sweep.write_index``)."""
    index = index.rename(columns={"error": "error_message"})
    index["error_message"] = index["error_message"].fillna("").astype(str)
    runs = score_runs(index)
    cells = score_cells(runs)
    return Leaderboard(runs, cells, score_methods(runs, cells), list(skipped), Path(store))


def run_leaderboard(sweep: Sweep, progress: Callable[[str], None] | None = None, reports: bool = True,
                    target=None, run: bool = True) -> Leaderboard:
    """Run what ``sweep`` has not yet run (``inference.sweep.run_sweep``), score every run of it in its
    store, and write the tables, the heat map and (with ``reports``) each posterior's comparison
    report. With ``run=False``, score only the runs the store already holds."""
    # a leaderboard keeps each run's draws and sample statistics, not its pointwise log-likelihood and
    # replicated data: over hundreds of runs these would take tens of GB
    sweep.runs = [dataclasses.replace(r, pointwise=False) for r in sweep.runs]
    if run:
        index = run_sweep(sweep, progress, **({"target": target} if target is not None else {}))
    else:  # score what the store holds of this grid
        wanted = {r.run_id for r in sweep.runs}
        if not any((sweep.store / "runs" / f"{run_id}.json").exists() for run_id in wanted):
            raise ValueError(f"{sweep.store} holds no run of this leaderboard yet")
        index = write_index(sweep.store)
        index = index[index["run_id"].isin(wanted)]
    board = score(index, sweep.store, sweep.skipped)
    write(board, reports=reports, progress=progress)
    return board


def leaderboard(posteriors: list[str] | str = "posteriordb", methods: list[str] | None = None,
                seeds: list[int] = (0, 1), *, store: str | os.PathLike = "runs/leaderboard",
                executor: str = "local", workers: int = 1, address: str | None = None,
                progress: Callable[[str], None] | None = None, reports: bool = True) -> Leaderboard:
    """Rank ``methods`` (``backend:method[:options]`` strings, or mappings with ``method``, ``models``
    and ``max_dim``, as in a sweep config) over ``posteriors`` (names, or ``"posteriordb"``: every
    registered posteriordb posterior) and ``seeds``. Runs go to ``store``; a second call with the
    same store runs only what is missing. A method whose backend a posterior lacks is left out of that
    posterior (``Leaderboard.skipped``). Every name and option is checked before anything runs."""
    from inference.sweep import check_config

    config = {"models": posteriors, "methods": list(methods or default_methods()), "seeds": list(seeds),
              "store": str(store),
              "executor": executor, "workers": workers, "address": address}
    sweep = check_config(config, "leaderboard", _locate_argument, skip_missing_backends=True)
    return run_leaderboard(sweep, progress, reports)


def default_methods() -> list[str]:
    """``inference.compare``'s default methods, as ``backend:method[:options]``."""
    from inference.compare import DEFAULT_METHODS

    return [":".join([b, m, *([",".join(f"{k}={v}" for k, v in o.items())] if o else [])])
            for b, m, o in DEFAULT_METHODS]


def _locate_argument(where) -> str:
    key = where[0] if isinstance(where, tuple) else where
    name = {"models": "posteriors"}.get(key, key)
    return f"{name}[{where[1]}]" if isinstance(where, tuple) else (name or "")


# ----------------------------------------------------------------------------------------- output

def write(board: Leaderboard, reports: bool = True, progress: Callable[[str], None] | None = None) -> Path:
    """``leaderboard.csv``, ``methods.csv`` and ``leaderboard.html`` in the store (and, with ``reports``,
    each posterior's comparison report); returns the HTML page's path."""
    store = board.store
    with atomic_write(store / "leaderboard.csv", "w") as f:
        board.cells.to_csv(f, index=False)
    with atomic_write(store / "methods.csv", "w") as f:
        board.methods.to_csv(f)
    linked = set()
    if reports:
        for posterior in board.cells["posterior"].unique():
            if write_posterior_report(board, posterior) is not None:
                linked.add(posterior)
                if progress:
                    progress(f"report: {store / REPORTS / posterior / 'report.html'}")
    else:
        linked = {p for p in board.cells["posterior"].unique() if (store / REPORTS / p / "report.html").exists()}
    path = store / "leaderboard.html"
    with atomic_write(path, "w") as f:
        f.write(heat_map_page(board, linked))
    return path


def write_posterior_report(board: Leaderboard, posterior: str) -> Path | None:
    """``reports/<posterior>/report.html``: ``inference.report``'s comparison of every method's run with
    the first seed on this posterior; rewritten only when a run is newer than it. None when no run
    of it has a result to show."""
    from inference.compare import SUMMARY_COLUMNS
    from inference.report import write_report
    from inference.result import load_result
    from ppl_models import get_model

    store = board.store
    mine = board.runs[(board.runs["posterior"] == posterior) & (board.runs["status"] == "ok")]
    mine = mine[mine["seed"] == mine["seed"].min()] if len(mine) else mine
    paths = {row.label: store / "results" / f"{row.run_id}.npz" for row in mine.itertuples()}
    paths = {label: path for label, path in paths.items() if path.exists()}
    if not paths:
        return None
    page = store / REPORTS / posterior / "report.html"
    records = [store / "runs" / f"{run_id}.json" for run_id in mine["run_id"]]
    if page.exists() and page.stat().st_mtime >= max(p.stat().st_mtime for p in [*paths.values(), *records]):
        return page
    scores = [json.loads((store / "runs" / f"{row.run_id}.json").read_text())["scores"] | {"label": row.label}
              for row in mine.itertuples() if row.label in paths]
    table = pd.DataFrame(scores).set_index("label")
    results = {label: load_result(path) for label, path in paths.items()}
    return write_report(posterior, table, results, get_model(posterior).reference, page.parent,
                        columns=SUMMARY_COLUMNS)


def cell_rgb(cell) -> tuple[int, int, int]:
    """A heat-map cell's colour: green for a cell that passed on every seed; from yellow to red as the
    error grows (log scale, 0.15 to 10) for one that did not; grey for one that only failed."""
    if cell.passed == cell.runs:
        return 143, 209, 143
    if cell.failures == cell.runs or not np.isfinite(cell.error):
        return 184, 184, 184
    t = float(np.clip(np.log(max(cell.error, PASS_SD) / PASS_SD) / np.log(10 / PASS_SD), 0, 1))
    return 255, int(230 - 180 * t), int(120 - 90 * t)


def _color(cell) -> str:
    return "rgb({},{},{})".format(*cell_rgb(cell))


def _cell_html(cell) -> str:
    if cell is None:
        return ('<td class="na" title="not run: the method has no backend for it, the config left it out, '
                'or it has not run yet">n/a</td>')
    text = "fail" if cell.failures == cell.runs else f"{cell.error:.2g}"
    title = (f"{cell.method}: passed {cell.passed} of {cell.runs}; rank {cell.rank}; median error {cell.error:.3g}; "
             f"wall {cell.wall_s:.1f} s; ESS/s {cell.ess_per_s:.3g}" + (f"; {cell.failure}" if cell.failure else ""))
    return (f'<td style="background:{_color(cell)}" title="{html.escape(title)}">{html.escape(text)}'
            f'<br><small>{cell.passed}/{cell.runs} &middot; #{cell.rank}</small></td>')


def heat_map_page(board: Leaderboard, linked: set[str]) -> str:
    """The HTML page: the method table, then the heat map, one row per posterior, one column per method."""
    methods = list(board.methods.index)
    posteriors = sorted(board.cells["posterior"].unique())
    cells = {(c.posterior, c.method): c for c in board.cells.itertuples()}
    head = "".join(f'<th class="m">{html.escape(m)}</th>' for m in methods)
    rows = []
    for posterior in posteriors:
        name = html.escape(posterior)
        link = f'<a href="{REPORTS}/{name}/report.html">{name}</a>' if posterior in linked else name
        rows.append(f'<tr><th class="p">{link}</th>' + "".join(_cell_html(cells.get((posterior, m))) for m in methods)
                    + "</tr>")
    table = board.methods.assign(pass_rate=board.methods["pass_rate"].map("{:.0%}".format)).rename_axis(None)
    table = table.rename(columns={"pass_rate": "pass rate", "median_error": "median error",
                                          "median_ess_per_s": "median ESS/s", "median_wall_s": "median wall (s)",
                                          "mean_rank": "mean rank"})
    summary = table.to_html(float_format=lambda v: f"{v:.3g}", border=0, na_rep="")
    skipped = ("<p>Left out (the method cannot run there): " + html.escape("; ".join(
        f"{m} on {p} ({why})" for p, m, why in board.skipped)) + ".</p>") if board.skipped else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Leaderboard of inference methods</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.8em; }} td, th {{ padding: 3px 6px; text-align: right; }}
.heat td {{ text-align: center; border: 1px solid white; min-width: 4.5em; }} .heat td.na {{ color: #999; }}
.heat th.m {{ writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; vertical-align: bottom; }}
.heat th.p {{ text-align: left; white-space: nowrap; }} small {{ color: #444; }}
</style></head>
<body><h1>Leaderboard of inference methods</h1>
<p>{len(board.runs)} runs: {board.runs["label"].nunique()} methods on {len(posteriors)} posteriors,
seeds {", ".join(str(s) for s in sorted(board.runs["seed"].unique()))}. A run passes when every posterior mean
is within 4 combined Monte Carlo standard errors of the reference's, every sd within {PASS_SD:.0%} of it, and,
for MCMC, nothing diverged and every R-hat is at most {PASS_R_HAT}. Its error is the larger of the worst
standardized error of a mean (in reference sds) and the worst relative error of an sd. Ranks per posterior:
the methods that passed on every seed first, the faster first; then the others, the smaller error first.</p>
<h2>Methods</h2>
{summary}
<h2>Heat map: median error per posterior and method</h2>
<p>Green: passed on every seed. Yellow to red: the median error, from {PASS_SD} to 10 and beyond. Grey: every
run failed. Under each value: seeds passed / run, and the rank on that posterior. A posterior's name links to
its comparison report (the first seed's runs).</p>
{skipped}
<table class="heat"><tr><th></th>{head}</tr>
{"".join(rows)}
</table>
</body></html>
"""
