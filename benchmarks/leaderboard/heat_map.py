"""A leaderboard's heat map as a figure, and its method table as Markdown, from its run records.

``ppl leaderboard`` writes its heat map as an HTML page into the store, which does not outlive a
session; this draws the same cells (``inference.leaderboard``'s scores and colours) from an archive
of run records (``benchmarks.leaderboard.archive``) or a store, as a PNG for the docs, and prints the
method table, with the timeouts counted apart, for RESULTS:

    python -m benchmarks.leaderboard.heat_map benchmarks/leaderboard/first-runs.jsonl.gz \\
        docs/figures/leaderboard_first.png      # from the repository's root, as every benchmark

Each cell: the median error over the seeds (the worst |z| of a mean, in reference sds, or relative
error of an sd), "fail" where every run failed ("time" where every one of them ran out of time),
and the seeds passed out of those run.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.entry import run_benchmark
from inference.leaderboard import Leaderboard, cell_rgb, score
from inference.sweep import write_index
from ppl_models.atomic import save_figure


def board_of(source: str | Path) -> Leaderboard:
    """The scored leaderboard of an archive (``.jsonl.gz``, unpacked into a temporary store) or a store."""
    source = Path(source)
    if source.is_dir():
        return score(write_index(source), source)
    from benchmarks.leaderboard.archive import unpack

    with tempfile.TemporaryDirectory(prefix="leaderboard-") as store:
        unpack(source, store)
        return score(write_index(Path(store)), source)


def timeouts(board: Leaderboard, by: str | list[str]) -> pd.Series:
    """How many runs ran out of time, per ``by`` (columns of ``board.runs``)."""
    timed_out = board.runs["error_message"].str.startswith("Timeout")
    return timed_out.groupby([board.runs[c] for c in ([by] if isinstance(by, str) else by)]).sum().astype(int)


def _g(value: float) -> str:
    return f"{value:.3g}" if np.isfinite(value) else "-"


def method_table(board: Leaderboard) -> str:
    """The method table in Markdown, the best first (medians over each method's runs)."""
    late = timeouts(board, "label")
    lines = ["| method | posteriors | runs | pass rate | failures (timeouts) | error | ESS/s | wall (s) | rank |",
             "|---|---|---|---|---|---|---|---|---|"]
    for label, row in board.methods.iterrows():
        lines.append(f"| {label} | {int(row.posteriors)} | {int(row.runs)} | {row.pass_rate:.2f} | {int(row.failures)} "
                     f"({late.get(label, 0)}) | {_g(row.median_error)} | {_g(row.median_ess_per_s)} "
                     f"| {_g(row.median_wall_s)} | {row.mean_rank:.1f} |")
    return "\n".join(lines)


def _text(cell, timed_out: int) -> str:
    head = ("time" if timed_out == cell.runs else "fail") if cell.failures == cell.runs else f"{cell.error:.2g}"
    return f"{head}\n{cell.passed}/{cell.runs}"


def draw(board: Leaderboard, path: str | Path) -> Path:
    """The heat map (posteriors down, methods across, the best method first) as an image at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(board.methods.index)
    posteriors = sorted(board.cells["posterior"].unique())
    late = timeouts(board, ["posterior", "label"])
    image = np.full((len(posteriors), len(methods), 3), 255, dtype=np.uint8)
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * len(methods), 1.8 + 0.34 * len(posteriors)))
    for cell in board.cells.itertuples():
        i, j = posteriors.index(cell.posterior), methods.index(cell.method)
        image[i, j] = cell_rgb(cell)
        ax.text(j, i, _text(cell, late.get((cell.posterior, cell.method), 0)),
                ha="center", va="center", fontsize=5.5, linespacing=1.1)
    ax.imshow(image, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(methods)), [m.replace("numpyro ", "") for m in methods], rotation=60, ha="right",
                  fontsize=7)
    ax.set_yticks(range(len(posteriors)), posteriors, fontsize=6.5)
    ax.set_xticks(np.arange(len(methods)) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(posteriors)) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"{len(board.runs)} runs, seeds {', '.join(map(str, sorted(board.runs['seed'].unique())))}: "
                 "median error (green: passed on every seed; grey: failed), seeds passed / run", fontsize=8)
    return save_figure(fig, path, dpi=130)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.leaderboard.heat_map",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="an archive of run records (.jsonl.gz) or a leaderboard store")
    parser.add_argument("figure", help="the image to write (.png, .svg, .pdf)")
    args = parser.parse_args(argv)
    try:
        board = board_of(args.source)
        if board.cells.empty:
            raise ValueError(f"{args.source} holds no run record")
        print(method_table(board))
        print(f"heat map: {draw(board, args.figure)}")
    except (OSError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the image is written atomically: whole, or not at all
        print(f"\ninterrupted: nothing written to {args.figure}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    run_benchmark(main)
