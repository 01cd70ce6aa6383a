"""Minibatch bookkeeping shared by the training backends: which steps fall in which epoch."""
from __future__ import annotations

import numpy as np

DEFAULT_DRAWS = 1000


def check_batch_size(spec, batch_size: int, method: str = "svi") -> int:
    """Steps per epoch for ``batch_size``; a clear error if the model cannot be minibatched."""
    if spec.minibatch is None:
        raise ValueError(f"option batch_size of method {method!r} needs a model that declares minibatch keys; "
                         f"{spec.name!r} declares none (ModelSpec(minibatch=Minibatch(keys=...)))")
    num_data = int(np.shape(spec.data[spec.minibatch.keys[0]])[0])
    if batch_size > num_data:
        raise ValueError(f"batch_size={batch_size} exceeds the {num_data} data points of {spec.name!r}")
    return num_data // batch_size


def batch_plan(start: int, stop: int, steps_per_epoch: int):
    """(epoch, first step, last step + 1) for each epoch that steps [start, stop) touch."""
    step = start
    while step < stop:
        epoch = step // steps_per_epoch
        last = min(stop, (epoch + 1) * steps_per_epoch)
        yield epoch, step, last
        step = last


def num_draws(spec, opts: dict) -> int:
    """Posterior draws to take after training: as asked, else 1000, or 0 for minibatched models
    (one local latent per data point: draws over the whole training set rarely fit in memory)."""
    if opts["num_samples"] is not None:
        return opts["num_samples"]
    return 0 if spec.minibatch is not None else DEFAULT_DRAWS
