"""A core of its own for each worker of a sweep.

A sweep's workers compute on one thread each (``inference.compare.single_threaded_environment``), but
XLA compiles on a thread pool of its own, sized to the cores the process may use. With two workers on
two cores, each worker's compiler threads spread onto the other's core, and two compilations at once
slow each other down: on the leaderboard's speed-up grid (``benchmarks.sweep_speedup``), the runs of
2 workers took 11% longer than the same runs of 1 worker, and the speed-up was 1.65-1.73x. With each
worker held to a core of its own, they take 7-9% longer, and 2 workers are 1.69-1.88x faster than 1
(``benchmarks/RESULTS.md``, "Scale-out: each worker on a core of its own").

A worker claims a core by an exclusive ``flock`` on a file per core in one folder per machine, so
workers of any executor (local processes, Ray's worker processes) and of concurrent sweeps share out
the cores without talking to each other. The kernel releases the lock when the process ends, however
it ends, so a dead worker's core is free for the worker that replaces it. A worker that finds every
core it may use taken runs unpinned, as before.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

LOCKS = Path(tempfile.gettempdir()) / "ppl-worker-cores"
_claimed: tuple[int, object] | None = None  # (core, its open lock file): held for the process's life


def claim_core(locks: Path = LOCKS) -> int | None:
    """Hold this process to a core that no other worker holds, and return it; None where every core
    it may use is taken (or the platform cannot pin). Call it before JAX starts its thread pools: the
    threads started later inherit the core. Claiming again returns the same core."""
    global _claimed
    if _claimed is not None:
        return _claimed[0]
    if not hasattr(os, "sched_setaffinity"):  # macOS, Windows
        return None
    import fcntl

    locks.mkdir(parents=True, exist_ok=True)
    for core in sorted(os.sched_getaffinity(0)):
        handle = open(locks / f"{core}.lock", "a")  # noqa: SIM115 - kept open: the lock lives with it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        os.sched_setaffinity(0, {core})
        _claimed = (core, handle)
        return core
    return None


def claimed_core() -> int | None:
    """The core this process claimed, if any."""
    return None if _claimed is None else _claimed[0]
