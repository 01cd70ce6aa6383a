"""R-hat, effective sample sizes and Monte Carlo standard errors of many scalars at once.

The definitions are those of Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC", Bayesian Analysis
16(2), as ArviZ 0.x computes them (``arviz.rhat``, ``arviz.ess`` with methods bulk, tail and mean,
``arviz.mcse`` with mean and sd), number for number:

- chains are split in halves (the middle draw of an odd count left out);
- bulk ESS and R-hat are computed on the rank-normalized draws (ranks over all chains, Blom's
  offset 3/8, through the normal quantile function), R-hat as the larger of the bulk value and the
  value of the folded draws |x - median|;
- the autocorrelations come from the FFT, summed with Geyer's initial monotone sequence;
- tail ESS is the smaller of the ESS of the indicators x <= q5% and x <= q95%.

ArviZ computes one scalar per call, in Python: about 15 ms for the five statistics of one scalar
here, so minutes for a topic model's thousands of weights after sampling had finished. These
functions take ``(K, chains, draws)`` arrays and do the same arithmetic along the first axis at
once (the sequential loops of Geyer's sequences become a cumulative minimum and a first-crossing
index). ``tests/test_chain_stats.py`` checks them against ArviZ.

Each returns NaN for a scalar with non-finite draws, as ArviZ does.
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats


def split_chains(x: np.ndarray) -> np.ndarray:
    """``(K, C, N)`` -> ``(K, 2C, N // 2)``: each chain's first and last halves as chains of their own."""
    half = x.shape[2] // 2
    return np.concatenate([x[:, :, :half], x[:, :, x.shape[2] - half:]], axis=1)


def z_scale(x: np.ndarray) -> np.ndarray:
    """Rank normalization: each scalar's draws, ranked over all its chains, through the normal quantiles."""
    k = x.shape[0]
    ranks = stats.rankdata(x.reshape(k, -1), method="average", axis=1)
    size = ranks.shape[1]
    return special.ndtri((ranks - 3 / 8) / (size - 3 / 4 + 1)).reshape(x.shape)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariances of each chain at every lag (biased: divided by N), along the last axis."""
    n = x.shape[-1]
    m = 1 << (2 * n - 1).bit_length()
    centred = x - x.mean(-1, keepdims=True)
    spectrum = np.fft.rfft(centred, n=m, axis=-1)
    return np.fft.irfft(spectrum * np.conjugate(spectrum), n=m, axis=-1)[..., :n] / n


def ess(x: np.ndarray) -> np.ndarray:
    """The effective sample size of each of ``(K, C, N)``'s scalars, chains as given (no split)."""
    x = np.asarray(x, dtype=float)
    k, c, n = x.shape
    acov = _autocov(x)
    mean_var = acov[:, :, 0].mean(1) * n / (n - 1.0)
    var_plus = mean_var * (n - 1.0) / n
    if c > 1:
        var_plus = var_plus + x.mean(2).var(1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var[:, None] - acov.mean(1)) / var_plus[:, None]  # (K, N) autocorrelations
    rho[:, 0] = 1.0
    # Geyer's initial positive sequence: sums of consecutive pairs (rho[2j], rho[2j+1]), pair j = 1, 2, ...
    # taken while the previous pair's sum was positive and 2j - 1 < N - 3; `last` is the last pair taken
    # (pair 0, rho[0] + rho[1], always is)
    j_max = max((n - 3) // 2, 0)  # the largest j with 2j - 1 < N - 3
    even = rho[:, 0:2 * j_max + 1:2]
    odd = rho[:, 1:2 * j_max + 2:2]
    pairs = even + odd  # (K, j_max + 1)
    # pair j - 1 not positive: pair j is not taken (a stop after pair j_max, where the sequence is cut)
    stops = np.concatenate([pairs[:, :j_max] <= 0, np.ones((k, 1), dtype=bool)], axis=1)
    last = stops.argmax(1)
    # Geyer's initial monotone sequence over pairs 0 .. last - 1: each pair's sum at most the one before
    monotone = np.minimum.accumulate(pairs, axis=1)
    taken = np.arange(pairs.shape[1])[None, :] < last[:, None]
    body = np.where(taken, monotone, 0.0).sum(1)
    last_even, last_pair = even[np.arange(k), last], pairs[np.arange(k), last]
    # the last pair taken counts with its even term alone, where that term is positive or the pair's sum
    # is not negative (ArviZ keeps such a pair, then adds its even term only)
    tail = np.where((last_pair >= 0) | (last_even > 0), last_even, 0.0)
    tail = np.where(last == 0, 1.0, tail)
    tau = -1.0 + 2.0 * body + tail
    total = c * n
    tau = np.maximum(tau, 1 / np.log10(total))
    out = total / tau
    constant = (x.max((1, 2)) - x.min((1, 2))) < np.finfo(float).resolution
    out = np.where(np.isnan(rho).any(1), np.nan, out)
    return np.where(constant, float(total), out)


def _finite(x: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(x).all((1, 2)), values, np.nan)


def ess_bulk(x: np.ndarray) -> np.ndarray:
    return _finite(x, ess(z_scale(split_chains(x))))


def ess_mean(x: np.ndarray) -> np.ndarray:
    return _finite(x, ess(split_chains(x)))


def ess_tail(x: np.ndarray) -> np.ndarray:
    k = x.shape[0]
    flat = x.reshape(k, -1)
    low, high = np.quantile(flat, [0.05, 0.95], axis=1)
    return _finite(x, np.minimum(ess(split_chains((x <= low[:, None, None]).astype(float))),
                                 ess(split_chains((x <= high[:, None, None]).astype(float)))))


def _rhat(x: np.ndarray) -> np.ndarray:
    n = x.shape[2]
    between = n * x.mean(2).var(1, ddof=1)
    within = x.var(2, ddof=1).mean(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1) / n)


def rhat(x: np.ndarray) -> np.ndarray:
    """Rank-normalized split R-hat: the larger of the bulk's and the folded draws'."""
    split = split_chains(x)
    folded = np.abs(split - np.median(split.reshape(x.shape[0], -1), axis=1)[:, None, None])
    return _finite(x, np.maximum(_rhat(z_scale(split)), _rhat(z_scale(folded))))


def mcse_mean(x: np.ndarray) -> np.ndarray:
    sd = x.reshape(x.shape[0], -1).std(1, ddof=1)
    return sd / np.sqrt(ess_mean(x))


def mcse_sd(x: np.ndarray) -> np.ndarray:
    squared = (x - x.mean((1, 2), keepdims=True)) ** 2
    e_var = squared.mean((1, 2))
    var_var = ((squared**2).mean((1, 2)) - e_var**2) / ess_mean(squared)
    return _finite(x, np.sqrt(var_var / e_var / 4))
