"""Adversarial variational Bayes' toy problem (Mescheder, Nowozin & Geiger 2017, section 5.1).

Generative story: z_n ~ Normal(0, I_2), and four pixels x_n ~ Bernoulli(logits = decoder(z_n)),
independently. The data are the four one-hot images, each repeated ``COPIES`` times. A decoder
that tells the four images apart leaves each image's posterior p(z | x) a region of its own in
the plane, far from Gaussian. Whatever decoder a fit ends with, its posterior is known exactly
on a grid (``grid_posterior``): the ground truth each guide is scored against.

- ``onehot4-vae``: the amortized Gaussian guide of ``latent_gaussian.vae``.
- ``onehot4-vae_implicit``: its implicit guide, z_n = encoder(x_n, e_n) with e_n ~ Normal(0, I_2).
- ``onehot4-quadrants`` and ``onehot4-quadrants_implicit``: the same guides with the decoder fixed
  to ``QuadrantDecoder``, which turns pixel k on in quadrant k of the plane. Only the guide is
  fitted, so its target cannot move: each posterior is the prior cut to a quadrant, a quarter of
  a Gaussian with a corner at the origin, which no Gaussian guide can match.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ppl_models.errors import UnknownChoiceError
from ppl_models.generic import for_backends
from ppl_models.latent_gaussian.vae import implicit_vae_guide, vae, vae_guide
from ppl_models.nets import MLP
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, Minibatch, ModelSpec

IMAGES = np.eye(4, dtype=np.float32)
QUADRANT_SIGNS = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float32)  # pixel k <-> quadrant k
COPIES = 128
LATENT_DIM = 2
HIDDEN = (64, 64)


def quadrant_logits(z, sharpness: float, xp):
    """Pixel k's logit ``sharpness * min(s_k1 z_1, s_k2 z_2)``: positive in quadrant k (signs
    ``QUADRANT_SIGNS[k]``) and negative in the other three. ``xp`` is torch, jax.numpy or numpy."""
    signed = z[..., None, :] * xp.asarray(QUADRANT_SIGNS, dtype=z.dtype)
    return sharpness * xp.minimum(signed[..., 0], signed[..., 1])


@dataclass(frozen=True)
class QuadrantDecoder:
    """A decoder with no parameters (a network factory): z -> ``quadrant_logits(z, sharpness)``."""

    sharpness: float = 5.0
    in_features = LATENT_DIM
    out_features = 4

    def build(self, backend: str, seed: int, dtype: str):
        if backend == "pyro":
            import torch

            class Quadrants(torch.nn.Module):
                def forward(module, z):
                    return quadrant_logits(z, self.sharpness, torch)
            return Quadrants()
        if backend == "numpyro":
            import jax.numpy as jnp
            return functools.partial(quadrant_logits, sharpness=self.sharpness, xp=jnp)
        raise UnknownChoiceError("backend", backend, ("pyro", "numpyro"))

    def numpy(self, z: np.ndarray) -> np.ndarray:
        return quadrant_logits(z, self.sharpness, np)


def toy_spec(guide: str, decoder: str = "learned") -> ModelSpec:
    """The toy with the ``"gaussian"`` or the ``"implicit"`` guide, and a ``"learned"`` decoder
    (an MLP fitted with the guide) or the fixed ``"quadrants"`` one."""
    if guide not in ("gaussian", "implicit"):
        raise UnknownChoiceError("toy guide", guide, ("gaussian", "implicit"))
    if decoder not in ("learned", "quadrants"):
        raise UnknownChoiceError("toy decoder", decoder, ("learned", "quadrants"))
    x = np.repeat(IMAGES, COPIES, axis=0)
    encoder = (MLP((4, *HIDDEN, 2 * LATENT_DIM), "relu", head="normal") if guide == "gaussian"
               else MLP((4 + LATENT_DIM, *HIDDEN, LATENT_DIM), "relu"))
    return ModelSpec(
        name=("onehot4-vae" if decoder == "learned" else "onehot4-quadrants") + ("_implicit" if guide == "implicit"
                                                                                 else ""),
        data={"x": x, "num_data": x.shape[0], "latent_dim": LATENT_DIM},
        model=for_backends(vae), guide=for_backends(vae_guide if guide == "gaussian" else implicit_vae_guide),
        networks={"decoder": MLP((LATENT_DIM, *HIDDEN, 4), "relu") if decoder == "learned" else QuadrantDecoder(),
                  "encoder": encoder},
        minibatch=Minibatch(keys=("x",)), data_dims={"x": ("num_data", 4)}, data_support={"x": "binary"},
        dtype="float32", description=__doc__.split("\n\n")[1],
    )


def grid_posterior(decode, x: np.ndarray, limit: float = 4.0, size: int = 161) -> tuple[np.ndarray, np.ndarray]:
    """The exact posterior p(z | x) of the model with decoder ``decode`` (numpy logits of z), on a
    ``size`` x ``size`` grid over [-limit, limit]²: the grid's points (G, 2) and each one's
    probability (G,), proportional to Normal(z; 0, I) prod_k Bernoulli(x_k; sigmoid(logits_k(z)))."""
    axis = np.linspace(-limit, limit, size)
    points = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    logits = np.asarray(decode(points.astype(np.float32)), dtype=float)
    log_lik = (x * -np.logaddexp(0, -logits) + (1 - x) * -np.logaddexp(0, logits)).sum(-1)
    log_post = log_lik - 0.5 * (points ** 2).sum(-1)
    probs = np.exp(log_post - log_post.max())
    return points, probs / probs.sum()


def posterior_draws(points: np.ndarray, probs: np.ndarray, num: int, seed: int) -> np.ndarray:
    """``num`` exact draws from a grid posterior: a grid cell by its probability, then a uniform
    point within the cell."""
    rng = np.random.default_rng(seed)
    step = points[1, 1] - points[0, 1]
    cells = rng.choice(len(points), size=num, p=probs)
    return points[cells] + (rng.random((num, 2)) - 0.5) * step


def binned_posterior(points: np.ndarray, probs: np.ndarray, bins: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A grid posterior summed into ``bins`` x ``bins`` squares, each a block of whole grid cells
    (the grid's last row and column fall outside): the bin edges (bins + 1,) and the bins'
    probabilities (bins, bins)."""
    axis = np.unique(points[:, 0])
    cells = (len(axis) - 1) // bins
    if cells < 1:
        raise ValueError(f"{bins} bins need a grid of at least {bins + 1} points a side, not {len(axis)}")
    step = axis[1] - axis[0]
    edges = axis[0] - step / 2 + step * cells * np.arange(bins + 1)
    mass, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[edges, edges], weights=probs)
    return edges, mass


def total_variation(draws: np.ndarray, edges: np.ndarray, mass: np.ndarray) -> float:
    """The total variation distance between the empirical distribution of ``draws`` (N, 2) and a
    binned distribution (``binned_posterior``), both read at the bins' resolution; what falls
    outside the bins counts in full."""
    counts, _, _ = np.histogram2d(draws[:, 0], draws[:, 1], bins=[edges, edges])
    empirical = counts / len(draws)
    return float(0.5 * (np.abs(empirical - mass).sum() + (1 - empirical.sum()) + (1 - mass.sum())))


def total_variation_floor(mass: np.ndarray, num: int, seed: int, repeats: int = 20) -> float:
    """The mean total variation between a binned distribution and ``num`` exact draws of it: what
    sampling alone adds to ``total_variation`` of ``num`` draws."""
    rng, p = np.random.default_rng(seed), mass.ravel() / mass.sum()
    return float(np.mean([0.5 * np.abs(rng.multinomial(num, p) / num - p).sum() for _ in range(repeats)]))


_TOY = dict(backends=BACKENDS, reference="")
register_model("onehot4-vae", **_TOY, description="AVB toy VAE, Gaussian guide")(lambda: toy_spec("gaussian"))
register_model("onehot4-vae_implicit", **_TOY, description="AVB toy VAE, implicit guide")(
    lambda: toy_spec("implicit"))
register_model("onehot4-quadrants", **_TOY, description="AVB toy, fixed quadrant decoder, Gaussian guide")(
    lambda: toy_spec("gaussian", "quadrants"))
register_model("onehot4-quadrants_implicit", **_TOY, description="AVB toy, fixed quadrant decoder, implicit guide")(
    lambda: toy_spec("implicit", "quadrants"))
