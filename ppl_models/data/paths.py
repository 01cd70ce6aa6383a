"""Where data lives: resolved once, from ``PPL_DATA_DIR``, else a user cache folder; small files
also ship inside the package (``bundled/``, same layout), read when the data directory lacks them."""
from __future__ import annotations

import os
from pathlib import Path

from ppl_models.errors import DataNotFoundError

DATA_DIR_ENV = "PPL_DATA_DIR"
# Small data files shipped as package data, in the data directory's layout: posteriordb's small data
# sets and their reference draws (a few MB), so that the small models run right after `pip install`.
BUNDLED_DIR = Path(__file__).with_name("bundled")
_override: Path | None = None


def set_data_dir(path: str | os.PathLike | None) -> None:
    """Point every loader at ``path`` for the rest of the process (``None`` undoes it)."""
    global _override
    _override = None if path is None else Path(path).expanduser().resolve()


def data_dir() -> Path:
    """The data directory: ``set_data_dir``, then ``$PPL_DATA_DIR``, then ``~/.cache/ppl_models/data``."""
    if _override is not None:
        return _override
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser().resolve()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "ppl_models" / "data"


def bundled(relpath: str) -> Path | None:
    """The copy of ``relpath`` shipped with the package, if there is one."""
    path = BUNDLED_DIR / relpath
    return path if path.is_file() else None


def resolve(relpath: str) -> Path:
    """The path of ``relpath`` in the data directory, else the package's own copy; a clear error if
    neither has it. (Callers check the file's sha256 either way.)"""
    path = data_dir() / relpath
    if not path.is_file():
        path = bundled(relpath)
    if path is None:
        raise DataNotFoundError(
            f"data file {relpath!r} not found in the data directory {data_dir()} (nor shipped with the package). "
            f"Set {DATA_DIR_ENV} to the folder holding it (for example ../shared/data), "
            "or, on a machine with a network, fetch it with `ppl download`."
        )
    return path
