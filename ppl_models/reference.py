"""Ground truth a model carries: reference posterior draws or exact moments."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ppl_models.atomic import atomic_write


@dataclass(frozen=True)
class Reference:
    """The reference posterior of a model, against which inference is scored.

    Give either ``draws`` (name -> array shaped ``(chain, draw, *event_shape)``,
    for example posteriordb's 10 x 1000 Stan draws) or exact moments ``mean`` and
    ``sd`` (name -> array shaped ``event_shape``, for conjugate models). Exact
    moments carry no Monte Carlo error; draws carry the error their effective
    sample size implies. ``source`` says where the ground truth came from.
    """

    draws: Mapping[str, np.ndarray] | None = None
    mean: Mapping[str, np.ndarray] | None = None
    sd: Mapping[str, np.ndarray] | None = None
    source: str = ""
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        exact = self.mean is not None or self.sd is not None
        if (self.draws is None) == (not exact):
            raise ValueError("a Reference takes either draws or exact moments (mean and sd), not both or neither")
        if exact:
            if self.mean is None or self.sd is None or set(self.mean) != set(self.sd):
                raise ValueError("exact reference moments need mean and sd for the same names")
            object.__setattr__(self, "mean", {k: np.asarray(v, float) for k, v in self.mean.items()})
            object.__setattr__(self, "sd", {k: np.asarray(v, float) for k, v in self.sd.items()})
        else:
            draws = {k: np.asarray(v, float) for k, v in self.draws.items()}
            bad = [k for k, v in draws.items() if v.ndim < 2]
            if bad:
                raise ValueError(f"reference draws must be shaped (chain, draw, ...); not so for {bad}")
            object.__setattr__(self, "draws", draws)

    @property
    def is_exact(self) -> bool:
        return self.draws is None

    @property
    def names(self) -> list[str]:
        return list(self.mean if self.is_exact else self.draws)


def save_reference_draws(path, draws: Mapping[str, np.ndarray], source: str, dtype=np.float32) -> None:
    """Write reference draws (and where they came from) to an ``.npz`` file, atomically."""
    with atomic_write(path) as f:
        np.savez_compressed(f, __source__=np.array(source), **{k: np.asarray(v, dtype) for k, v in draws.items()})


def load_reference_draws_file(path) -> Reference:
    """A ``Reference`` from a file written by :func:`save_reference_draws`."""
    with np.load(path) as f:
        return Reference(draws={k: f[k] for k in f.files if k != "__source__"}, source=str(f["__source__"]))
