"""Importance sampling estimates from log weights: log evidence, its standard error, ESS, k-hat.

Backend-neutral numpy. ``log_weights`` are shaped ``(K,)`` for a joint estimate, or
``(K, N)`` when every latent site is local to a data plate of size N: then each data
point gets its own estimate, log p(x) = sum_n log p(x_n), as in the IWAE paper.

Pyro's ``pyro.infer.Importance`` is not used: it weighs all latents jointly (no
per-data-point estimate, which the IWAE bound and held-out likelihoods need), gives
no standard error, and has no NumPyro counterpart.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from inference.arviz_compat import psis_khat

KHAT_MAX = 0.7  # above it, PSIS diagnoses an unreliable estimate (Vehtari et al. 2024)


def estimate(log_weights: np.ndarray) -> dict:
    """log p-hat per data point, the total, its delta-method standard error, ESS and k-hat.

    se of log p-hat_n: sd(w_n) / (sqrt(K) mean(w_n)), from Var(log X) ~ Var(X) / E[X]^2.
    """
    lw = np.asarray(log_weights, dtype=float)
    K = lw.shape[0]
    per_point = logsumexp(lw, axis=0) - np.log(K)
    w = np.exp(lw - lw.max(axis=0))
    se = w.std(axis=0, ddof=1) / (np.sqrt(K) * w.mean(axis=0)) if K > 1 else np.full(per_point.shape, np.inf)
    return {
        "log_evidence": float(per_point.sum()),
        "log_evidence_se": float(np.sqrt((se**2).sum())),
        "log_evidence_per_point": per_point,
        "ess": w.sum(axis=0) ** 2 / (w**2).sum(axis=0),
        "khat": psis_khat(np.moveaxis(lw, 0, -1)),
    }


def iwae_bounds(log_weights: np.ndarray, ks) -> dict[int, tuple[float, float]]:
    """Estimates of the IWAE bound E[sum_n log (1/k sum_{i<=k} w_in)] for each k, with standard errors.

    The K draws are split into K // k independent groups of k; the bound's estimate is the
    mean over groups, its standard error their sd over sqrt(groups). k = 1 gives the ELBO;
    the bound rises with k towards log p(x) (Burda et al. 2016, Theorem 1).
    """
    lw = np.asarray(log_weights, dtype=float)
    lw = lw.reshape(lw.shape[0], -1)
    out = {}
    for k in ks:
        groups = lw.shape[0] // k
        if groups < 2:
            raise ValueError(f"k={k} needs at least {2 * k} draws for a standard error, not {lw.shape[0]}")
        per_group = (logsumexp(lw[: groups * k].reshape(groups, k, -1), axis=1) - np.log(k)).sum(-1)
        out[k] = (float(per_group.mean()), float(per_group.std(ddof=1) / np.sqrt(groups)))
    return out


def resample(latents: dict, log_weights: np.ndarray, plate_axes: dict, rng: np.random.Generator) -> dict:
    """K posterior draws by multinomial resampling, per data point when the weights are ``(K, N)``.

    ``latents`` maps a site to its K proposal draws ``(K, *shape)``; ``plate_axes`` gives the
    axis of the data plate in each site's shape. Returns arrays ``(1, K, *shape)``.
    """
    lw = np.asarray(log_weights, dtype=float)
    p = np.exp(lw - logsumexp(lw, axis=0))
    K = lw.shape[0]
    if not latents:
        return {}
    if lw.ndim == 1:
        idx = rng.choice(K, size=K, p=p / p.sum())
        return {k: v[idx][None] for k, v in latents.items()}
    idx = np.stack([rng.choice(K, size=K, p=p[:, n] / p[:, n].sum()) for n in range(lw.shape[1])], axis=1)
    out = {}
    for name, draws in latents.items():
        moved = np.moveaxis(draws, 1 + plate_axes[name], 1)  # (K, N, ...)
        picked = np.take_along_axis(moved, idx.reshape(idx.shape + (1,) * (moved.ndim - 2)), axis=0)
        out[name] = np.moveaxis(picked, 1, 1 + plate_axes[name])[None]
    return out


def auto_chunk_size(floats_per_draw: int, itemsize: int, budget: int = 2**28) -> int:
    """Proposal draws per chunk so that a chunk's site values and distribution parameters,
    with room for intermediates (x4), stay within ``budget`` bytes."""
    return max(1, budget // (4 * itemsize * max(floats_per_draw, 1)))


def keeps_draws(spec, resample) -> bool:
    """Whether to keep resampled posterior draws: as asked, else unless the model is minibatched."""
    return resample if resample is not None else spec.minibatch is None


def data_chunks(spec, num: int, chunk_size: int) -> list[slice]:
    """Slices of the data, ``chunk_size`` points of the minibatch keys each (all of it without them):
    how both backends walk a data set one compiled piece at a time."""
    if spec.minibatch is None:
        return [slice(None)]
    return [slice(i, i + chunk_size) for i in range(0, num, chunk_size)]


def data_plate(latent_frames: dict, observed_frames: dict):
    """The plate (name, dim) that holds every latent and observed site, if there is one."""
    sets = [set(frames) for frames in (*latent_frames.values(), *observed_frames.values())]
    common = set.intersection(*sets) if sets else set()
    # if several, the first one entered: plates take dims from the right, so it has the largest
    return max(common, key=lambda f: f[1]) if common else None


def warnings_for(diagnostics: dict) -> list[str]:
    khat = np.atleast_1d(diagnostics["khat"])
    bad = int((khat > KHAT_MAX).sum())
    if not bad:
        return []
    return [f"PSIS k-hat > {KHAT_MAX} for {bad} of {khat.size} estimate(s) (max {khat.max():.2f}): the proposal "
            "is too far from the posterior and the evidence estimate and its standard error are unreliable"]


def guide_check(log_weights: np.ndarray) -> tuple[dict, list[str]]:
    """The ELBO of a fitted guide, and its PSIS k-hat as an importance proposal for the posterior,
    from the log weights log p(x, z) - log q(z) of its draws. The ELBO is their mean (``elbo``,
    with its Monte Carlo standard error ``elbo_se``). k-hat (Yao, Vehtari, Simpson & Gelman 2018,
    "Yes, but did it work?"): below 0.5 the guide is close; above 0.7 it misses posterior mass,
    and its draws and the ELBO misrepresent the posterior. Returns the diagnostics and the
    warnings to raise."""
    lw = np.asarray(log_weights, dtype=float)
    if lw.size < 2 or np.ptp(lw) == 0:  # a point-mass guide (MAP): no density to weigh
        return {}, []
    diagnostics = {"elbo": np.asarray(lw.mean()), "elbo_se": np.asarray(lw.std(ddof=1) / np.sqrt(lw.size)),
                   "khat": psis_khat(lw)}
    khat = float(diagnostics["khat"])
    if not np.isfinite(khat) or khat <= KHAT_MAX:
        return diagnostics, []
    return diagnostics, [f"PSIS k-hat of the fitted guide is {khat:.2f} > {KHAT_MAX}: the guide misses posterior "
                         "mass, and its draws under-represent the posterior's tails (Yao et al. 2018)"]


def to_result(spec, backend: str, log_weights, latents: dict, plate_axes: dict, observed: dict, seed: int,
              seconds: float):
    """The ``InferenceResult`` of an importance-sampling run."""
    from inference.result import InferenceResult

    est = estimate(log_weights)
    samples = resample(latents, log_weights, plate_axes, np.random.default_rng(seed))
    return InferenceResult(
        model=spec.name, backend=backend, method="is", samples=samples, observed_data=observed,
        log_weights=np.asarray(log_weights), log_evidence=est["log_evidence"],
        log_evidence_se=est["log_evidence_se"],
        diagnostics={k: np.asarray(est[k]) for k in ("log_evidence_per_point", "ess", "khat")},
        timing={"sampling": seconds}, warnings=warnings_for(est),
    )
