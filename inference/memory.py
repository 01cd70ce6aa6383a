"""Peak resident memory of this process during a block of code.

``resource.getrusage`` reports only the high-water mark of the whole process's life, which a
second run cannot see past; so a thread samples the resident set size (``/proc/self/statm``)
every ``interval`` seconds while the block runs. Off Linux, where there is no ``/proc``, the
process's high-water mark is what is reported.
"""
from __future__ import annotations

import os
import resource
import sys
import threading
from pathlib import Path

_STATM = Path("/proc/self/statm")


def resident_mb() -> float:
    """The resident set size now, in MiB (off Linux: the process's peak so far)."""
    if _STATM.exists():
        return int(_STATM.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.peak_mb``: the largest resident set size seen, and
    ``m.added_mb``: how far it rose above the resident set size at the block's start.

    ``added_mb`` is a run's own cost in a process that served runs before it (a sweep's or compare's
    worker): what earlier runs left in memory (the allocator rarely returns it) is in ``peak_mb``
    but not in ``added_mb``."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak_mb, self.start_mb = interval, 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, resident_mb())

    @property
    def added_mb(self) -> float:
        return self.peak_mb - self.start_mb

    def __enter__(self) -> PeakMemory:
        self.peak_mb = self.start_mb = resident_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, resident_mb())


def run_memory(backend: str) -> PeakMemory:
    """A ``PeakMemory`` for one run on ``backend`` ("pyro" or "numpyro", also the library's module),
    imported first: its ``added_mb`` is then the same whether or not the process ran anything before.
    (A name that is not a backend is left for the run to refuse, in its own words.)"""
    import importlib

    from ppl_models.spec import BACKENDS

    if backend in BACKENDS:
        importlib.import_module(backend)
    return PeakMemory()
