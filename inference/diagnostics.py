"""Diagnostics of draws, and scores of draws against a reference posterior.

Rank-normalized R-hat, bulk/tail ESS and Monte Carlo standard errors (Vehtari et al. 2021) are
ArviZ's definitions, computed for many scalars at once by ``inference.chain_stats``; the rest
comes from ArviZ (through ``inference.arviz_compat``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from inference import chain_stats
from inference.discrepancies import mmd2
from ppl_models.reference import Reference

RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100  # Stan's and ArviZ's rule of thumb: bulk and tail ESS >= 100 per chain


def scalar_draws(samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each scalar component of each site as a ``(chain, draw)`` array, named ``theta[0]``, ``L[1,0]``, ..."""
    out = {}
    for name, arr in samples.items():
        arr = np.asarray(arr, dtype=float)
        if arr.ndim == 2:
            out[name] = arr
            continue
        for index in np.ndindex(*arr.shape[2:]):
            out[f"{name}[{','.join(map(str, index))}]"] = arr[(slice(None), slice(None), *index)]
    return out


def _scalar_values(values: Mapping[str, np.ndarray]) -> dict[str, float]:
    out = {}
    for name, arr in values.items():
        arr = np.asarray(arr, dtype=float)
        if arr.ndim == 0:
            out[name] = float(arr)
        else:
            for index in np.ndindex(*arr.shape):
                out[f"{name}[{','.join(map(str, index))}]"] = float(arr[index])
    return out


def scalar_blocks(samples: Mapping[str, np.ndarray]):
    """Each site as ``(names, draws)``: its scalars' names as ``scalar_draws`` gives them, and its
    draws as one ``(scalars, chain, draw)`` array."""
    for name, arr in samples.items():
        arr = np.asarray(arr, dtype=float)
        if arr.ndim == 2:
            yield [name], arr[None]
            continue
        names = [f"{name}[{','.join(map(str, index))}]" for index in np.ndindex(*arr.shape[2:])]
        yield names, np.moveaxis(arr.reshape(*arr.shape[:2], -1), -1, 0)


def chain_diagnostics(draws: np.ndarray, which=("mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat")) -> dict:
    """``which`` statistics of each scalar of a ``(scalars, chain, draw)`` array; NaN where one is
    undefined: constant draws, fewer than 4 draws, or (R-hat) a single chain."""
    functions = {"mcse_mean": chain_stats.mcse_mean, "mcse_sd": chain_stats.mcse_sd,
                 "ess_bulk": chain_stats.ess_bulk, "ess_tail": chain_stats.ess_tail, "r_hat": chain_stats.rhat}
    k, chains, num_draws = draws.shape
    undefined = (np.ptp(draws.reshape(k, -1), axis=1) == 0) | (num_draws < 4)
    out = {}
    for stat in which:
        if stat == "r_hat" and chains < 2:
            out[stat] = np.full(k, math.nan)
            continue
        values = np.full(k, math.nan)
        if (~undefined).any():
            values[~undefined] = functions[stat](draws[~undefined])
        out[stat] = values
    return out


def summarize(samples: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """mean, sd, mcse_mean, mcse_sd, ess_bulk, ess_tail and r_hat of every scalar parameter."""
    frames = []
    for names, draws in scalar_blocks(samples):
        flat = draws.reshape(draws.shape[0], -1)
        sd = flat.std(1, ddof=1) if flat.shape[1] > 1 else np.full(len(names), math.nan)
        frames.append(pd.DataFrame({"mean": flat.mean(1), "sd": sd, **chain_diagnostics(draws)}, index=names))
    columns = ["mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"]
    return pd.concat(frames) if frames else pd.DataFrame(columns=columns)


def smallest_first(samples: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``samples`` with the smallest sites first: global parameters before those repeated over a plate."""
    return dict(sorted(samples.items(), key=lambda item: int(np.prod(np.shape(item[1])[2:], dtype=int))))


def posterior_summary(samples: Mapping[str, np.ndarray], mcmc: bool, limit: int | None = None) -> pd.DataFrame:
    """What a reader checks first, per scalar parameter: mean, sd, the 5% and 95% quantiles and,
    for MCMC draws, R-hat and bulk ESS; sites smallest first, and only the first ``limit`` scalars
    when it is given."""
    frames, left = [], math.inf if limit is None else limit
    for names, draws in scalar_blocks(smallest_first(samples)):
        if left <= 0:
            break
        names, draws = names[:int(min(left, len(names)))], draws[:int(min(left, len(names)))]
        left -= len(names)
        flat = draws.reshape(draws.shape[0], -1)
        q05, q95 = np.quantile(flat, [0.05, 0.95], axis=1)
        sd = flat.std(1, ddof=1) if flat.shape[1] > 1 else np.full(len(names), math.nan)
        columns = {"mean": flat.mean(1), "sd": sd, "5%": q05, "95%": q95}
        if mcmc:
            columns |= chain_diagnostics(draws, ("r_hat", "ess_bulk"))
        frames.append(pd.DataFrame(columns, index=names))
    return pd.concat(frames) if frames else pd.DataFrame()


def reference_summary(reference: Reference) -> pd.DataFrame:
    """mean, sd and their Monte Carlo errors (zero for exact moments) per scalar parameter."""
    if reference.is_exact:
        mean, sd = _scalar_values(reference.mean), _scalar_values(reference.sd)
        return pd.DataFrame({"mean": mean, "sd": sd, "mcse_mean": 0.0, "mcse_sd": 0.0})
    return summarize(reference.draws)[["mean", "sd", "mcse_mean", "mcse_sd"]]


def score(samples: Mapping[str, np.ndarray], reference: Reference, num_mcse: float = 4.0) -> pd.DataFrame:
    """Per-parameter errors of the draws ``samples`` against ``reference``.

    ``z_mean = (mean - ref_mean) / ref_sd`` and ``z_sd = (sd - ref_sd) / ref_sd`` are the
    standardized errors; ``mean_ok``/``sd_ok`` say whether each error is within
    ``num_mcse`` combined Monte Carlo standard errors, sqrt(mcse^2 + mcse_ref^2).
    ``sd_ratio = sd / ref_sd`` (below 1: under-dispersed, as mean-field VI tends to be) and,
    against reference draws, ``w1``: the 1-Wasserstein distance between the two marginals, over
    ref_sd (0 for equal distributions; exact moments give NaN, having no distribution to compare).
    Only parameters present in both are scored.
    """
    ours = summarize({k: v for k, v in samples.items() if k in reference.names})
    ref = reference_summary(reference)
    common = [n for n in ref.index if n in ours.index]
    ours, ref = ours.loc[common], ref.loc[common]
    tol_mean = num_mcse * np.sqrt(ours["mcse_mean"].fillna(0) ** 2 + ref["mcse_mean"] ** 2)
    tol_sd = num_mcse * np.sqrt(ours["mcse_sd"].fillna(0) ** 2 + ref["mcse_sd"] ** 2)
    if reference.is_exact:
        w1 = pd.Series(math.nan, index=common)
    else:
        mine, theirs = scalar_draws(samples), scalar_draws(reference.draws)
        w1 = pd.Series({n: stats.wasserstein_distance(mine[n].ravel(), theirs[n].ravel()) for n in common},
                       dtype=float) / ref["sd"]
    return pd.DataFrame({
        "mean": ours["mean"], "ref_mean": ref["mean"], "sd": ours["sd"], "ref_sd": ref["sd"],
        "z_mean": (ours["mean"] - ref["mean"]) / ref["sd"], "z_sd": (ours["sd"] - ref["sd"]) / ref["sd"],
        "sd_ratio": ours["sd"] / ref["sd"], "w1": w1,
        "tol_mean": tol_mean, "tol_sd": tol_sd,
        "mean_ok": (ours["mean"] - ref["mean"]).abs() <= tol_mean,
        "sd_ok": (ours["sd"] - ref["sd"]).abs() <= tol_sd,
    })


def joint_energy_distance(samples: Mapping[str, np.ndarray], reference: Reference, max_draws: int = 1000,
                          seed: int = 0) -> float:
    """The energy distance (Székely & Rizzo; unbiased, ``discrepancies.mmd2``) between the joint
    draws and the reference draws over every scalar parameter both have, each standardized by
    the reference sd; at most ``max_draws`` of each, evenly thinned. 0 for equal distributions; it
    sees errors in the dependence between parameters that marginal scores miss. NaN for exact
    references (moments only) and for draws with fewer than 2 points."""
    if reference.is_exact:
        return math.nan
    mine, theirs = scalar_draws(samples), scalar_draws(reference.draws)
    names = [n for n in theirs if n in mine]
    if not names:
        return math.nan
    sd = np.array([theirs[n].std() for n in names])

    def table(draws):
        x = np.stack([draws[n].ravel() for n in names], axis=-1) / np.where(sd > 0, sd, 1.0)
        keep = np.linspace(0, len(x) - 1, min(len(x), max_draws)).round().astype(int)
        return x[np.unique(keep)]

    a, b = table(mine), table(theirs)
    if len(a) < 2:
        return math.nan
    return float(mmd2(a, b, np, "energy"))


def mcmc_warnings(summary: pd.DataFrame, sample_stats: Mapping[str, np.ndarray]) -> list[str]:
    """Warnings a careful user wants after MCMC: divergences, R-hat > 1.01, low ESS."""
    out = []
    if "diverging" in sample_stats:
        n = int(np.sum(sample_stats["diverging"]))
        if n:
            total = np.size(sample_stats["diverging"])
            out.append(f"{n} of {total} post-warmup transitions diverged; the posterior may be biased "
                       "(try a non-centered parameterization or a higher target_accept_prob)")
    high = summary.index[summary["r_hat"] > RHAT_MAX].tolist()
    if high:
        out.append(f"R-hat > {RHAT_MAX} for {_names(high)} (max {summary['r_hat'].max():.3f}): chains have not mixed")
    num_chains = next(iter(sample_stats.values())).shape[0] if sample_stats else 1
    min_ess = ESS_PER_CHAIN_MIN * num_chains
    low = summary.index[(summary[["ess_bulk", "ess_tail"]].min(axis=1) < min_ess)].tolist()
    if low:
        out.append(f"bulk or tail ESS < {min_ess} for {_names(low)} "
                   f"(min {summary[['ess_bulk', 'ess_tail']].min().min():.0f}): run longer chains")
    return out


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
