"""Checkpoints of long runs: the full state every ``every`` steps (optimization steps, or draws
per chain after warmup), written atomically; a run started again with the same checkpoint path
resumes from the last one.

A checkpoint holds the step, the record so far (the losses of an optimization; the draws and
sampler statistics of MCMC) and the state as the backend keeps it, moved to the host: NumPyro's
``SVIState`` (parameters, optimizer moments, RNG key) or its sampler state after warmup (position,
adapted step size and mass matrix, RNG key); Pyro's parameter store, optimizer state, RNG states
and data order, or a chain's position, step size, mass matrix and RNG states. Resuming replays
nothing: the steps after the checkpoint see the same random numbers and minibatches as an
uninterrupted run, so on the same device the run ends with the same numbers. A checkpoint records
what run wrote it (model, backend, method, seed and options); resuming a different run from it is
an error that says what differs. While a run uses a checkpoint, it holds a lock on it (an advisory
``flock`` on ``<path>.lock``, released when the run finishes or its process ends, however it ends;
the file itself stays): a second process
started on the same path is refused with one line, instead of training from, and overwriting, the
file the first one is still writing.
"""
from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

try:
    import fcntl
except ImportError:  # fcntl is Unix's: on Windows runs take no lock
    fcntl = None

from ppl_models.atomic import atomic_write
from ppl_models.errors import CheckpointError

_HELD: dict = {}  # checkpoint path -> its open, locked file, while this process runs it
NOT_FINGERPRINTED = ("checkpoint", "checkpoint_every", "progress_bar")  # how a run is saved, not what it computes


def fingerprint(model: str, backend: str, method: str, seed: int, options: dict) -> dict:
    return {"model": model, "backend": backend, "method": method, "seed": seed,
            "options": {k: repr(v) for k, v in sorted(options.items()) if k not in NOT_FINGERPRINTED}}


class Checkpoint:
    """The checkpoint file of one run. ``total`` is the step at which the run is finished (optimization
    steps; draws per chain, or over all chains where they run one after the other); ``unit`` names a
    step in the messages that say a run resumes, or that it returns a finished run's saved result."""

    def __init__(self, path: str | os.PathLike, run: dict, every: int, total: int | None = None, unit: str = "step"):
        self.path, self.run, self.every, self.total, self.unit = Path(path), run, every, total, unit

    @classmethod
    def of_run(cls, model: str, backend: str, method: str, seed: int, options: dict, total: int | None = None,
               unit: str = "step") -> Checkpoint | None:
        """The checkpoint a run's options ask for (``checkpoint``, ``checkpoint_every``), or None."""
        if not options.get("checkpoint"):
            return None
        return cls(options["checkpoint"], fingerprint(model, backend, method, seed, options),
                   options["checkpoint_every"], total, unit)

    def _announce(self, step: int) -> None:
        """Say on stderr that the run resumes, or that it was finished and its saved result comes back."""
        if self.total is not None and step >= self.total:
            print(f"checkpoint {self.path} holds a finished run ({step} {self.unit}s): returning its saved result "
                  "(delete the file to run afresh)", file=sys.stderr, flush=True)
        else:
            of = f" of {self.total}" if self.total is not None else ""
            print(f"resumed from {self.unit} {step}{of} (checkpoint {self.path})", file=sys.stderr, flush=True)

    def lock(self) -> None:
        """Hold ``<path>.lock`` until the run is finished (or the process ends); refuse if another
        process holds it. The same process may take it again (a run resumed after Ctrl-C in a notebook)."""
        key = str(self.path.resolve())
        if fcntl is None or key in _HELD:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.with_name(self.path.name + ".lock").open("a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise CheckpointError(f"checkpoint {self.path} is in use by another run (process {holder}); wait for it "
                                  "to end, or give this run a checkpoint path of its own") from None
        f.truncate(0)
        f.write(str(os.getpid()))
        f.flush()
        _HELD[key] = f

    def unlock(self) -> None:
        if (f := _HELD.pop(str(self.path.resolve()), None)) is not None:
            f.close()  # closing the file releases the flock

    def load(self):
        """``(step, state, record)`` of the last checkpoint, or None when there is none; from here on
        the checkpoint is this process's (``lock``)."""
        self.lock()
        if not self.path.exists():
            return None
        try:
            with self.path.open("rb") as f:
                saved = pickle.load(f)
        except Exception as e:  # noqa: BLE001 - any unreadable file is named, with why
            raise CheckpointError(f"checkpoint {self.path} cannot be read ({type(e).__name__}: {e}); delete it to "
                                  "start afresh") from None
        if saved.get("run") != self.run:
            theirs = saved.get("run", {})
            diff = {k: (theirs.get(k), v) for k, v in self.run.items() if theirs.get(k) != v}
            raise CheckpointError(f"checkpoint {self.path} was written by another run; differing (saved, now): "
                                  f"{diff}. Give this run a checkpoint path of its own")
        self._announce(saved["step"])
        if self.total is not None and saved["step"] >= self.total:
            self.unlock()  # a finished run: nothing more is written
        return saved["step"], saved["state"], saved["record"]

    def save(self, step: int, state, record) -> None:
        """Write the state after ``step``, marked ``finished`` once the run's last step is done."""
        finished = self.total is not None and step >= self.total
        with atomic_write(self.path) as f:
            pickle.dump({"run": self.run, "step": step, "finished": finished, "state": state, "record": record}, f)
        if finished:
            self.unlock()

    def segments(self, start: int, stop: int):
        """``[a, b)`` pieces of the steps ``[start, stop)`` that end on multiples of ``every``."""
        while start < stop:
            end = min(stop, (start // self.every + 1) * self.every)
            yield start, end
            start = end
