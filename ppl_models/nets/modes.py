"""Train mode and eval mode of networks with batch normalization or dropout.

Networks run in eval mode (running statistics, no dropout) unless called inside ``training()``:
an SVI backend enters it around its training steps only, so everything else (tracing the model,
guide draws, held-out scores, importance sampling with a fitted guide) sees eval mode without
asking for it. The mode is read when a model or guide registers a network (``pyro.module``), so
under JAX it is fixed when the function is traced, and a compiled training step keeps it.
"""
from __future__ import annotations

import contextlib
import contextvars

_TRAINING: contextvars.ContextVar[bool] = contextvars.ContextVar("ppl_networks_training", default=False)


def is_training() -> bool:
    """Whether networks registered now run in train mode."""
    return _TRAINING.get()


@contextlib.contextmanager
def training(mode: bool = True):
    """Networks registered inside the block run in train mode (``mode=False``: eval mode)."""
    token = _TRAINING.set(bool(mode))
    try:
        yield
    finally:
        _TRAINING.reset(token)
