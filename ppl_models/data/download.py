"""Fetch posteriordb files into the data directory, for machines with a network.

Nothing here runs implicitly: loaders never download. ``ppl download`` (or
:func:`download_posteriordb`) fetches the files, checks each against its
sha256 and moves it into place atomically, so a broken transfer never leaves a
file that loads.
"""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from ppl_models.atomic import atomic_write
from ppl_models.data.checksums import sha256
from ppl_models.data.paths import data_dir
from ppl_models.data.posteriordb import SUMS
from ppl_models.errors import DataError

POSTERIORDB_URL = "https://raw.githubusercontent.com/stan-dev/posteriordb/master/posterior_database"
# Where each local folder lives in the posteriordb repository.
_REMOTE_FOLDER = {"data": "data/data", "draws": "reference_posteriors/draws/draws"}


def download_posteriordb(relpaths=None, *, base_url: str = POSTERIORDB_URL, target: Path | None = None) -> list[Path]:
    """Download posteriordb files (all known ones by default) into ``<target>/posteriordb``.

    Files already present with the right checksum are skipped. Returns the paths.
    """
    target = Path(target) if target is not None else data_dir()
    paths = []
    for rel in relpaths or sorted(SUMS):
        dest = target / "posteriordb" / rel
        if dest.is_file() and sha256(dest) == SUMS[rel]:
            paths.append(dest)
            continue
        folder, name = rel.split("/", 1)
        url = f"{base_url.rstrip('/')}/{_REMOTE_FOLDER[folder]}/{name}"
        with urllib.request.urlopen(url, timeout=60) as response:
            content = response.read()
        if hashlib.sha256(content).hexdigest() != SUMS[rel]:
            raise DataError(f"checksum mismatch for {url}; the file was not saved")
        with atomic_write(dest) as out:
            out.write(content)
        paths.append(dest)
    return paths
