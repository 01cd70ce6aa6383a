"""sha256 checks for data files, so that a corrupt or substituted file is refused."""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from ppl_models.errors import DataError


def read_sums(table: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` table (``<hex>  <relative path>`` per line)."""
    sums = {}
    for line in table.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().removeprefix("./")] = digest
    return sums


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@functools.cache
def _verified(path: Path, mtime_ns: int, expected: str) -> None:
    # mtime_ns is only part of the cache key: a file rewritten in place is checked again
    actual = sha256(path)
    if actual != expected:
        raise DataError(f"checksum mismatch for {path}: sha256 {actual}, expected {expected}")


def verify(path: Path, expected: str) -> Path:
    """Check ``path`` against its expected sha256 (once per process and file version)."""
    _verified(path, path.stat().st_mtime_ns, expected)
    return path
