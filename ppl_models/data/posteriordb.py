"""Loaders for posteriordb data and reference draws (``<data dir>/posteriordb``).

This reads the older subset, in its own flat layout; the whole database, in posteriordb's layout,
is read by ``ppl_models.data.posterior_database``, which falls back on this subset (and its copy
shipped with the package) for the files both hold.

File formats: ``data/<data>.json.zip`` holds one JSON object (variable -> value);
``draws/<posterior>.json.zip`` holds a list of chains, each mapping a Stan
parameter name (``mu``, ``theta[1]``, ...) to its draws.
"""
from __future__ import annotations

import functools
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from ppl_models.data.checksums import read_sums, verify
from ppl_models.data.paths import resolve
from ppl_models.errors import UnknownChoiceError

SUMS = read_sums(Path(__file__).with_name("posteriordb.sha256"))
_INDEXED = re.compile(r"^(?P<name>[^\[]+)\[(?P<index>[0-9, ]+)\]$")


def _read_json_zip(relpath: str):
    if relpath not in SUMS:
        kind = relpath.split("/")[0]
        known = [k.split("/")[1].removesuffix(".json.zip") for k in SUMS if k.startswith(kind + "/")]
        raise UnknownChoiceError(f"posteriordb {kind} name", relpath.split("/")[1].removesuffix(".json.zip"), known)
    path = verify(resolve("posteriordb/" + relpath), SUMS[relpath])
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(z.namelist()[0]))


@functools.cache
def _load_data(name: str) -> dict:
    return _read_json_zip(f"data/{name}.json.zip")


def load_data(name: str) -> dict:
    """The posteriordb data set ``name`` as numpy arrays (vectors) and Python scalars."""
    return {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in _load_data(name).items()}


def stack_indexed(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Gather Stan-style columns (``theta[1]``, ``theta[2]``, ...) into arrays.

    Each column is shaped ``(chain, draw)``; the result maps ``theta`` to an array
    shaped ``(chain, draw, 8)``. Indices are 1-based, as in Stan.
    """
    out, indexed = {}, {}
    for key, col in columns.items():
        m = _INDEXED.match(key)
        if m is None:
            out[key] = col
        else:
            index = tuple(int(i) - 1 for i in m["index"].split(","))
            indexed.setdefault(m["name"], {})[index] = col
    for name, cells in indexed.items():
        shape = tuple(max(ix[d] for ix in cells) + 1 for d in range(len(next(iter(cells)))))
        arr = np.full(next(iter(cells.values())).shape + shape, np.nan)
        for ix, col in cells.items():
            arr[(..., *ix)] = col
        if np.isnan(arr).any():
            raise ValueError(f"reference draws for {name!r} miss some indices")
        out[name] = arr
    return out


@functools.cache
def _load_reference_draws(posterior: str) -> dict[str, np.ndarray]:
    chains = _read_json_zip(f"draws/{posterior}.json.zip")
    columns = {k: np.array([c[k] for c in chains], dtype=float) for k in chains[0]}
    return stack_indexed(columns)


def load_reference_draws(posterior: str) -> dict[str, np.ndarray]:
    """posteriordb's reference draws for ``posterior``: name -> array ``(chain, draw, *shape)``."""
    return dict(_load_reference_draws(posterior))
