"""Atomic file writes: a crash mid-write never leaves a partial file at the target path."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

# temporary files being written now; a process that must end at once (inference.interrupt) removes them
IN_FLIGHT: set[str] = set()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb"):
    """Yield a file beside ``path``; move it over ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    IN_FLIGHT.add(tmp)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        IN_FLIGHT.discard(tmp)
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120, bbox_inches: str | None = "tight") -> Path:
    """``fig`` saved to ``path`` (its format from the suffix) in one piece, then closed: an interrupted
    save leaves the file that was there, not half a PNG."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches=bbox_inches)
    plt.close(fig)
    return path


def remove_in_flight() -> None:
    """Delete the temporary files of writes still under way (for a process about to end at once)."""
    for tmp in list(IN_FLIGHT):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
