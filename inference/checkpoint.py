"""Checkpoints of long optimizations: the full training state every ``every`` steps, written
atomically, and a run started again with the same checkpoint path resumes from the last one.

A checkpoint holds the step, the losses so far and the state as the backend keeps it (NumPyro's
``SVIState``: parameters, optimizer moments and the RNG key), moved to numpy. Resuming replays
nothing: the steps after the checkpoint see the same keys and minibatches as an uninterrupted
run, so on the same device the run ends with the same numbers. A checkpoint records what run
wrote it (model, backend, method, seed and options); resuming a different run from it is an
error that says what differs.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np

from ppl_models.atomic import atomic_write

NOT_FINGERPRINTED = ("checkpoint", "checkpoint_every", "progress_bar")  # how a run is saved, not what it computes


def fingerprint(model: str, backend: str, method: str, seed: int, options: dict) -> dict:
    return {"model": model, "backend": backend, "method": method, "seed": seed,
            "options": {k: repr(v) for k, v in sorted(options.items()) if k not in NOT_FINGERPRINTED}}


class Checkpoint:
    def __init__(self, path: str | os.PathLike, run: dict, every: int):
        self.path, self.run, self.every = Path(path), run, every

    def load(self):
        """``(step, state, losses)`` of the last checkpoint, or None when there is none."""
        if not self.path.exists():
            return None
        try:
            with self.path.open("rb") as f:
                saved = pickle.load(f)
        except Exception as e:  # noqa: BLE001 - any unreadable file is named, with why
            raise ValueError(f"checkpoint {self.path} cannot be read ({type(e).__name__}: {e}); delete it to start "
                             "afresh") from None
        if saved.get("run") != self.run:
            theirs = saved.get("run", {})
            diff = {k: (theirs.get(k), v) for k, v in self.run.items() if theirs.get(k) != v}
            raise ValueError(f"checkpoint {self.path} was written by another run; differing (saved, now): {diff}. "
                             "Give this run a checkpoint path of its own")
        return saved["step"], saved["state"], np.asarray(saved["losses"])

    def save(self, step: int, state, losses: np.ndarray) -> None:
        with atomic_write(self.path) as f:
            pickle.dump({"run": self.run, "step": step, "state": state, "losses": np.asarray(losses)}, f)

    def segments(self, start: int, stop: int):
        """``[a, b)`` pieces of the steps ``[start, stop)`` that end on multiples of ``every``."""
        while start < stop:
            end = min(stop, (start // self.every + 1) * self.every)
            yield start, end
            start = end
