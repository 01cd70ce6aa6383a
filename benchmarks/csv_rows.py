"""Rows appended to a benchmark's CSV, so that a stopped benchmark keeps what it measured."""
from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def append_rows(path: str | Path, fields: Sequence[str], rows: Iterable[Mapping]) -> None:
    """Append ``rows`` to the CSV at ``path`` with columns ``fields``, writing the header first if the
    file is new or empty."""
    with Path(path).open("a", newline="") as f:
        writer = csv.DictWriter(f, fields)
        if f.tell() == 0:
            writer.writeheader()
        writer.writerows(rows)


def backend_column(backend: str, device: str) -> str:
    """A run's backend column: the backend, and the device when it is not the CPU, so that a GPU run is a
    row of its own and not one that a CPU run already made."""
    return backend if device == "cpu" else f"{backend} ({device})"
