"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018).

For each simulation: draw parameters from the prior and data from the model given them (one
draw of the joint prior predictive), fit the simulated data with the method under test, and
record, for every scalar parameter, the rank of its true value among ``num_ranks`` posterior
draws. If the method returns the exact posterior, each rank is uniform on {0, ..., num_ranks},
whatever the model: the prior averaged over the data's posterior is the prior. Departures have
shapes: a U (too many extreme ranks) is an under-dispersed posterior, as mean-field VI gives;
a hump is an over-dispersed one; a slope is bias.

Draws are thinned evenly to ``num_ranks``: MCMC draws should be near-independent for the ranks
to be (Talts et al., section 5.1), so give MCMC enough draws per rank.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from inference.api import resolve_model, run
from inference.contract import BackendModel
from inference.diagnostics import scalar_draws
from inference.options import resolve_options
from ppl_models.errors import UnknownChoiceError

MAX_BINS = 10


def default_bins(num_ranks: int) -> int:
    """The most bins, up to ``MAX_BINS``, that split the num_ranks + 1 rank values evenly."""
    return max(b for b in range(1, MAX_BINS + 1) if (num_ranks + 1) % b == 0)


@dataclass
class SBCResult:
    """Ranks (one row per simulation that ran, one column per scalar parameter, each in
    {0, ..., num_ranks}), the simulations that failed and why, and what was run."""

    model: str
    method: str
    backend: str
    num_ranks: int
    ranks: pd.DataFrame
    failures: dict[int, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    def tests(self, num_bins: int | None = None) -> pd.DataFrame:
        """Per parameter: the chi-square test of uniform ranks over ``num_bins`` equal bins (its
        ``p_value``; default ``default_bins``), the share of ranks in the outer two bins
        (``tail_share``; uniform: 2 / num_bins; above it, under-dispersion) with the one-sided
        binomial test that it is above (``tail_p_value``), and the mean normalized rank
        (``mean_rank``, uniform 0.5; above it, the posterior sits below the truth)."""
        num_bins = num_bins or default_bins(self.num_ranks)
        if (self.num_ranks + 1) % num_bins:
            raise ValueError(f"{num_bins} bins need num_ranks + 1 to be a multiple of it; num_ranks is "
                             f"{self.num_ranks}")
        bins = (self.ranks.to_numpy() * num_bins) // (self.num_ranks + 1)
        rows = {}
        for j, name in enumerate(self.ranks.columns):
            counts = np.bincount(bins[:, j].astype(int), minlength=num_bins)
            tails = int(counts[0] + counts[-1])
            rows[name] = {"p_value": float(stats.chisquare(counts).pvalue),
                          "tail_share": tails / counts.sum(),
                          "tail_p_value": float(stats.binomtest(tails, int(counts.sum()), 2 / num_bins,
                                                                alternative="greater").pvalue),
                          "mean_rank": float(self.ranks[name].mean() / self.num_ranks)}
        return pd.DataFrame.from_dict(rows, orient="index")

    def p_value(self, num_bins: int | None = None) -> float:
        """Uniformity of every parameter's ranks at once: the smallest p-value, Bonferroni-corrected."""
        tests = self.tests(num_bins)
        return float(min(1.0, tests["p_value"].min() * len(tests)))

    def plot(self, path: str | os.PathLike, num_bins: int | None = None, max_params: int = 12) -> Path:
        """Rank histograms of the first ``max_params`` parameters, with the band that holds 99% of
        a bin's count under uniformity, saved as PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ppl_models.atomic import save_figure

        num_bins = num_bins or default_bins(self.num_ranks)
        names = list(self.ranks.columns)[:max_params]
        cols = min(4, len(names))
        rows = -(-len(names) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
        n = len(self.ranks)
        low, high = stats.binom.ppf([0.005, 0.995], n, 1 / num_bins)
        p_values = self.tests(num_bins)["p_value"]
        for ax, name in zip(axes.flat, names, strict=False):
            ax.axhspan(low, high, color="0.85")
            ax.hist(self.ranks[name], bins=np.linspace(0, self.num_ranks + 1, num_bins + 1), color="C0",
                    edgecolor="white")
            ax.set_title(f"{name}  (p = {p_values[name]:.2g})", fontsize=9)
            ax.set_yticks([])
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.suptitle(f"SBC ranks: {self.model}, {self.backend} {self.method}, {n} simulations", fontsize=10)
        fig.tight_layout()
        return save_figure(fig, path, dpi=90, bbox_inches=None)


def ranks_of(truth: dict[str, np.ndarray], samples: dict[str, np.ndarray], num_ranks: int) -> dict[str, int]:
    """The rank of each scalar true value among ``num_ranks`` evenly thinned draws (chains pooled)."""
    true_values = scalar_draws({k: np.asarray(v, float)[None, None] for k, v in truth.items() if k in samples})
    draws = scalar_draws({k: v for k, v in samples.items() if k in truth})
    out = {}
    for name, value in true_values.items():
        pooled = draws[name].ravel()
        if len(pooled) < num_ranks:
            raise ValueError(f"SBC needs at least num_ranks={num_ranks} posterior draws, the run gave {len(pooled)}")
        thinned = pooled[np.linspace(0, len(pooled) - 1, num_ranks).round().astype(int)]
        out[name] = int((thinned < value.item()).sum())
    return out


def sbc(model, method: str, num_simulations: int = 100, *, backend: str = "numpyro", seed: int = 0,
        num_ranks: int = 99, progress: Callable[[str], None] | None = None, **options) -> SBCResult:
    """Simulation-based calibration of ``method`` on ``model``: ``num_simulations`` prior draws,
    each fitted from its simulated data (``inference.run(..., seed=seed + i)``) and ranked.

    ``options`` are the method's. The data sites the model observes are replaced by simulated
    data; the model must name them as its data (``y`` observed at site ``y``). A simulation whose
    run fails is recorded in ``failures`` with its error, and the rest go on; its ranks are left out.
    """
    spec = resolve_model(model)
    if backend not in spec.backends:
        raise UnknownChoiceError(f"backend for model {spec.name!r}", backend, spec.backends)
    if spec.minibatch is not None or spec.networks:
        raise ValueError(f"SBC refits {spec.name!r} once per simulation; models with networks or minibatches "
                         "are not supported")
    for name, value in (("num_simulations", num_simulations), ("num_ranks", num_ranks)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, not {value!r}")
    resolve_options(method, backend, options)
    simulator = BackendModel(spec, "numpyro" if "numpyro" in spec.backends else backend, {})
    rows, failures = [], {}
    for i in range(num_simulations):
        truth, simulated = simulator.prior_predictive(seed + i)
        missing = sorted(set(simulated) - set(spec.data))
        if missing:
            raise ValueError(f"SBC replaces observed sites by simulated data of the same name, but {spec.name!r} "
                             f"has no data named {missing}")
        data = {**spec.data, **{k: np.asarray(v, dtype=np.asarray(spec.data[k]).dtype) for k, v in simulated.items()}}
        try:
            result = run(dataclasses.replace(spec, data=data, reference=None), method=method, backend=backend,
                         seed=seed + i, progress_bar=False, **options)
            rows.append({"simulation": i, **ranks_of(truth, result.samples, num_ranks)})
        except Exception as error:  # noqa: BLE001 - a failed fit is a finding, reported with its error
            failures[i] = f"{type(error).__name__}: {error}"
        if progress:
            progress(f"[{i + 1}/{num_simulations}] {spec.name}: {backend} {method}"
                     + (f" failed: {failures[i]}" if i in failures else ""))
    ranks = pd.DataFrame(rows).set_index("simulation") if rows else pd.DataFrame()
    return SBCResult(spec.name, method, backend, num_ranks, ranks, failures, dict(options))
