"""Has a stochastic optimization (SVI, RWS) converged? Two checks on the last stretch of the run.

* **The loss is still falling.** The last ``TAIL`` of the per-step losses is cut into
  ``NUM_BLOCKS`` blocks; a least-squares line through the block means (each a smoothed loss)
  has a slope, with a standard error from the scatter of the block means about the line (so
  whatever noise the losses have, Monte Carlo or minibatch, sets the bar). A decrease over the
  stretch more than ``T_FALLING`` standard errors (Student t with NUM_BLOCKS - 2 = 8 degrees of
  freedom: 5e-4 one-sided, how often a converged run with independent losses is flagged) and more
  than ``MIN_DECREASE`` nats (a loss without noise, a delta guide's, always has a "significant"
  slope) says that more steps would still pay.

* **The guide's locations still move.** For a Gaussian autoguide (locations and sds), the
  backend records the locations ``NUM_SNAPSHOTS + 1`` times, evenly, across the last ``TAIL``
  of the steps (``snapshot_steps``). Their standard deviation across the snapshots, in units of
  the guide's own sd, is how far the last iterate can be from where the optimizer would
  settle: noise left by a step size still too large, or a drift. More than ``MAX_WANDER``
  (a tenth of a posterior sd, the accuracy asked of a fit) is flagged.

* **The gradient is not zero.** At the optimum, the expected gradient of the objective with
  respect to each location is zero. The backend estimates it at the last parameters from
  ``NUM_GRADIENT_PARTICLES`` independent one-particle gradients; a coordinate whose mean gradient
  is more than ``T_GRADIENT`` standard errors from zero, and whose Newton step towards the optimum
  (the gradient over the curvature 1/sd^2, in units of the guide's sd: ``|g| * sd``) exceeds
  ``MAX_WANDER``, is flagged. This catches the run the other two checks cannot see: one whose step
  size decayed before it arrived (the default schedule squeezed into 300 steps on
  kidiq-conjugate_regression ends 11 sd off, its loss falling by less than its noise and its
  locations drifting by 0.06 of the guide's sd).

Each appends a warning that starts with "not converged" and says what to change.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

TAIL = 0.2  # the last fifth of the steps
NUM_BLOCKS = 10
T_FALLING = 5.0
MIN_DECREASE = 0.01
NUM_SNAPSHOTS = 5
MAX_WANDER = 0.1
MIN_STEPS = 50  # shorter runs are not judged: too few steps to tell a trend from noise
NUM_GRADIENT_PARTICLES = 64
T_GRADIENT = 5.0  # |t| > 5 with 63 degrees of freedom: about 5e-6 per coordinate at a true optimum
GAUSSIAN_GUIDES = ("normal", "mvn", "lowrank")  # the guide options whose locations and sds are followed


def snapshot_steps(num_steps: int) -> list[int]:
    """The step counts (updates done) after which the guide's locations are recorded:
    NUM_SNAPSHOTS + 1 of them, evenly spaced across the last TAIL of the run, the last at its end."""
    if num_steps < MIN_STEPS:
        return []
    spacing = max(1, int(num_steps * TAIL / NUM_SNAPSHOTS))
    return [num_steps - k * spacing for k in range(NUM_SNAPSHOTS, -1, -1)]


class Snapshots(list):
    """The guide's locations, recorded by ``after(step, ...)`` = ``read(...)`` at each of
    ``snapshot_steps(num_steps)`` (``steps``); none for a guide without locations (``read`` None)."""

    def __init__(self, num_steps: int, read=None):
        super().__init__()
        self.steps, self.read = (snapshot_steps(num_steps) if read is not None else []), read

    def after(self, step: int, *args) -> None:
        if step in self.steps:
            self.append(self.read(*args))


def split_at(pieces: Sequence[tuple[int, int]], points: Sequence[int]) -> list[tuple[int, int]]:
    """The pieces [first, last) of a run cut further at ``points``, so that each point ends a piece."""
    out = []
    for first, last in pieces:
        cuts = [first, *sorted(p for p in set(points) if first < p < last), last]
        out += list(zip(cuts[:-1], cuts[1:], strict=True))
    return out


def loss_trend(losses: np.ndarray) -> tuple[float, float]:
    """The change of the smoothed loss across the last TAIL of ``losses`` (the slope of a line
    through NUM_BLOCKS block means, times the stretch's length) and its standard error."""
    tail = np.asarray(losses, float)[-max(NUM_BLOCKS, int(len(losses) * TAIL)):]
    blocks = np.array_split(tail, NUM_BLOCKS)
    sizes = np.array([len(b) for b in blocks])
    centers = np.cumsum(sizes) - sizes / 2
    means = np.array([b.mean() for b in blocks])
    x = centers - centers.mean()
    slope = float(x @ (means - means.mean()) / (x @ x))
    residuals = means - means.mean() - slope * x
    se = float(np.sqrt(residuals @ residuals / (NUM_BLOCKS - 2) / (x @ x)))
    return slope * len(tail), se * len(tail)


def wander(snapshots: Sequence[Mapping[str, np.ndarray]], sds: Mapping[str, np.ndarray]) -> tuple[float, str]:
    """The largest standard deviation of a location across ``snapshots``, in units of the guide's
    sd there (``sds``, at the last snapshot), and the name (with index) of that location."""
    worst, where = 0.0, ""
    for name, sd in sds.items():
        locs = np.stack([np.asarray(s[name], float) for s in snapshots])
        ratio = locs.std(0, ddof=1) / np.asarray(sd, float)
        if ratio.size and float(np.max(ratio)) > worst:
            i = int(np.argmax(ratio))
            worst, where = float(ratio.flat[i]), name + (f"[{i}]" if ratio.size > 1 else "")
    return worst, where


def gradient_distance(gradients: Mapping[str, np.ndarray], sds: Mapping[str, np.ndarray]) -> tuple[float, str]:
    """The largest Newton step to the optimum, in guide sds, over the coordinates whose mean gradient
    is significant, from per-particle ``gradients`` ``{location: (particles, ...)}``; and its name."""
    worst, where = 0.0, ""
    for name, g in gradients.items():
        g = np.asarray(g, float).reshape(len(g), -1)
        mean, se = g.mean(0), g.std(0, ddof=1) / np.sqrt(len(g))
        step = np.abs(mean) * np.asarray(sds[name], float).ravel()
        significant = np.abs(mean) > T_GRADIENT * np.where(se > 0, se, np.inf)
        step = np.where(significant | ((se == 0) & (mean != 0)), step, 0.0)
        if step.size and float(step.max()) > worst:
            i = int(np.argmax(step))
            worst, where = float(step[i]), name + (f"[{i}]" if step.size > 1 else "")
    return worst, where


def convergence_warnings(losses: np.ndarray, snapshots: Sequence[Mapping[str, np.ndarray]] = (),
                         sds: Mapping[str, np.ndarray] | None = None,
                         gradients: Mapping[str, np.ndarray] | None = None) -> list[str]:
    """Warnings (each starting "not converged") for a run with the per-step ``losses``, and, for a
    guide with locations, ``snapshots`` of them taken at ``snapshot_steps`` with the guide's ``sds``
    and per-particle ``gradients`` of the objective at the last locations (see the module's docstring)."""
    losses = np.asarray(losses, float)
    if len(losses) < MIN_STEPS or not np.isfinite(losses).all():
        return []
    out = []
    change, se = loss_trend(losses)
    if -change > max(T_FALLING * se, MIN_DECREASE):
        out.append(f"not converged: the loss still fell by {-change:.3g} (standard error {se:.2g}) over the last "
                   f"{TAIL:.0%} of the {len(losses)} steps; more num_steps (or a larger learning_rate) would lower it")
    if sds and len(snapshots) == NUM_SNAPSHOTS + 1:
        moved, where = wander(snapshots, sds)
        if moved > MAX_WANDER:
            out.append(f"not converged: the guide's locations still move over the last {TAIL:.0%} of the steps, by "
                       f"{moved:.2f} of the guide's sd ({where}); lower the final step size (a smaller lr_decay or "
                       "learning_rate), or use more num_steps or num_particles")
    if sds and gradients:
        distance, where = gradient_distance(gradients, sds)
        if distance > MAX_WANDER:
            out.append(f"not converged: the objective's gradient at the end is not zero: the optimum is about "
                       f"{distance:.2g} of the guide's sd away ({where}); use more num_steps, or a step size that "
                       "decays less (a larger lr_decay)")
    return out
