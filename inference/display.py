"""Tables for a terminal: at most ``WIDTH`` columns, numbers to a few significant digits, and a
note of what was left out and where to find it (``--json``, the saved CSV). Presentation only."""
from __future__ import annotations

import math
import sys
import textwrap

import pandas as pd

WIDTH = 100
LABEL_WIDTH = 34  # row labels (method labels with their options) are cut to this many characters


# columns with a fixed format; other numbers get four significant digits
COLUMN_FORMATS = {"r_hat": "{:.3f}", "max_r_hat": "{:.3f}", "ess_bulk": "{:.0f}", "ess_tail": "{:.0f}",
                  "wall_s": "{:.1f}", "ess_per_s": "{:.0f}", "divergences": "{:.0f}", "ess/s": "{:.0f}",
                  "diverg": "{:.0f}"}  # the last two: compare's short names (TERMINAL_HEADERS)


def _cell(value, fmt: str | None = None) -> str:
    if fmt is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return fmt.format(value)
    if isinstance(value, bool) or value is None:
        return "-" if value is None else ("yes" if value else "no")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.2e}"
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _cut(label: str, width: int = LABEL_WIDTH) -> str:
    """``label`` in at most ``width`` characters, its end replaced by ``~`` when too long."""
    return label if len(label) <= width else label[:width - 1] + "~"


def render(table: pd.DataFrame) -> str:
    """``table`` as text, each cell formatted by ``_cell``, labels cut to ``LABEL_WIDTH``."""
    shown = table.copy().astype(object)
    for column in shown.columns:
        shown[column] = [_cell(v, COLUMN_FORMATS.get(column)) for v in table[column]]
    shown.index = [_cut(str(i)) for i in shown.index]
    return shown.to_string()


def fit_width(table: pd.DataFrame, width: int = WIDTH) -> tuple[pd.DataFrame, list[str]]:
    """The leading columns of ``table`` that fit in ``width`` characters, and the names left out."""
    kept = []
    for column in table.columns:
        candidate = table[[*kept, column]]
        if kept and max(map(len, render(candidate).splitlines())) > width:
            break
        kept.append(column)
    return table[kept], [c for c in table.columns if c not in kept]


def print_table(table: pd.DataFrame, width: int = WIDTH, more: str = "--json") -> None:
    """Print as many of ``table``'s columns as fit in ``width``; name the others and where they are."""
    shown, dropped = fit_width(table, width)
    print(render(shown))
    if dropped:
        names = ", ".join(dropped[:6]) + (f" and {len(dropped) - 6} more" if len(dropped) > 6 else "")
        print(textwrap.fill(f"(not shown, to fit {width} columns: {names}; see {more})", width))


def print_capped(table: pd.DataFrame, total_rows: int, more: str) -> None:
    """Print ``table``, the first rows of a table of ``total_rows``, and say what the rest hold."""
    print_table(table)
    if total_rows > len(table):
        print(f"({total_rows - len(table)} more rows: {more})")


def print_progress(message: str, width: int = WIDTH) -> None:
    """A progress line on stderr (a run's name and how it ended, which may carry a long error),
    wrapped to ``width`` columns, its later lines indented."""
    print(textwrap.fill(message, width, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False),
          file=sys.stderr, flush=True)


def print_warning(message: str, source: str | None = None, width: int = WIDTH) -> None:
    """``WARNING (source): message`` on stderr, wrapped to ``width`` columns, its later lines indented."""
    head = f"WARNING ({source}): " if source else "WARNING: "
    print(textwrap.fill(head + message, width, subsequent_indent="    ", break_long_words=False,
                        break_on_hyphens=False), file=sys.stderr)
