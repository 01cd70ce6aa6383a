"""Toy data sets whose generating distribution is known exactly, to score likelihood-free inference.

- ``RingOfGaussians``: eight Gaussians at equal spacing on a circle (Metz et al. 2017's unrolled-GAN
  benchmark). A generator that drops modes is seen at once: count the modes its samples cover.
- ``LinearGaussian``: x = A z + b + noise, z ~ N(0, I). Its covariance A Aᵀ + σ² I is the target a
  generator's covariance should approach.

These are synthetic on purpose: the ground truth is the point. Real data sets are in ``ppl_models.data``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModeCoverage:
    """How generated points fall on a mixture's modes.

    ``fractions[k]``: the share of points within ``radius_sd`` standard deviations of mode k;
    ``covered``: the modes holding at least ``min_share`` of the points; ``high_quality``: the
    share of points within that radius of some mode.
    """

    fractions: np.ndarray
    covered: int
    high_quality: float


@dataclass(frozen=True)
class RingOfGaussians:
    """``num_modes`` isotropic Gaussians of standard deviation ``sd``, equally weighted, their means
    equally spaced on the circle of ``radius`` around the origin."""

    num_modes: int = 8
    radius: float = 2.0
    sd: float = 0.02

    @property
    def means(self) -> np.ndarray:
        angles = 2 * np.pi * np.arange(self.num_modes) / self.num_modes
        return self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        k = rng.integers(self.num_modes, size=n)
        return (self.means[k] + self.sd * rng.standard_normal((n, 2))).astype(np.float32)

    def coverage(self, points: np.ndarray, radius_sd: float = 3.0, min_share: float = 0.01) -> ModeCoverage:
        """Which modes ``points`` (n, 2) cover. With the defaults a mode counts when at least 1% of
        the points lie within 3 sd of it; the modes are far apart, so each point is near one at most."""
        points = np.asarray(points, dtype=float)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must be shaped (n, 2), not {points.shape}")
        dist = np.linalg.norm(points[:, None, :] - self.means[None], axis=-1)
        near = dist < radius_sd * self.sd
        fractions = near.mean(axis=0)
        return ModeCoverage(fractions, int((fractions >= min_share).sum()), float(near.any(axis=1).mean()))

    def log_density(self, points: np.ndarray) -> np.ndarray:
        """log p(x) of the true mixture at each of ``points`` (n, 2)."""
        points = np.asarray(points, dtype=float)
        sq = ((points[:, None, :] - self.means[None]) ** 2).sum(-1) / self.sd ** 2
        log_components = -0.5 * sq - np.log(2 * np.pi * self.sd ** 2)
        top = log_components.max(axis=1)
        return top + np.log(np.exp(log_components - top[:, None]).sum(axis=1)) - np.log(self.num_modes)

    def entropy(self) -> float:
        """H(p) = E_p[-log p(x)], the least cross-entropy E_p[-log q(x)] any density q can reach (a fitted
        density's expected held-out NLL per point is H(p) + KL(p || q)). The modes are 2 r sin(pi / K) / sd
        sds apart (77 with the defaults): they overlap by less than exp(-700), so the mixture's entropy is
        log K plus one component's, log(2 pi e sd^2), to every digit a float holds."""
        gap = 2 * self.radius * np.sin(np.pi / self.num_modes) / self.sd
        if gap < 20:
            raise ValueError(f"the modes are {gap:.1f} sds apart: they overlap and the entropy has no closed form")
        return float(np.log(self.num_modes) + np.log(2 * np.pi * np.e * self.sd ** 2))


@dataclass(frozen=True)
class LinearGaussian:
    """x = A z + b + sigma * e, z ~ N(0, I_latent), e ~ N(0, I_dim); A and b drawn once from ``seed``."""

    dim: int = 5
    latent_dim: int = 2
    sigma: float = 0.3
    seed: int = 0

    @property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        return rng.standard_normal((self.dim, self.latent_dim)), rng.standard_normal(self.dim)

    @property
    def covariance(self) -> np.ndarray:
        a, _ = self.weights
        return a @ a.T + self.sigma ** 2 * np.eye(self.dim)

    @property
    def mean(self) -> np.ndarray:
        return self.weights[1]

    def sample(self, n: int, seed: int) -> np.ndarray:
        a, b = self.weights
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((n, self.latent_dim)) @ a.T + b + self.sigma * rng.standard_normal((n, self.dim))
        return x.astype(np.float32)

    def covariance_error_sd(self, n: int) -> float:
        """The root mean square Frobenius error of the sample covariance of ``n`` draws (Wishart):
        E ||S - Sigma||_F² = (1/n) sum_ij (Sigma_ij² + Sigma_ii Sigma_jj). A generator fitted to
        batches of ``n`` points cannot be expected to do better than a few times this."""
        c = self.covariance
        return float(np.sqrt(((c ** 2) + np.outer(np.diag(c), np.diag(c))).sum() / n))
