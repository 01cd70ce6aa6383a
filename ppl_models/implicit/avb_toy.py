"""Adversarial variational Bayes' toy problem (Mescheder, Nowozin & Geiger 2017, section 5.1).

Generative story: z_n ~ Normal(0, I_2), and four pixels x_n ~ Bernoulli(logits = decoder(z_n)),
independently. The data are the four one-hot images, each repeated ``COPIES`` times. A decoder
that tells the four images apart leaves each image's posterior p(z | x) a region of its own in
the plane, far from Gaussian. Whatever decoder a fit ends with, its posterior is known exactly
on a grid (``grid_posterior``): the ground truth each guide is scored against.

- ``onehot4-vae``: the amortized Gaussian guide of ``latent_gaussian.vae``.
- ``onehot4-vae_implicit``: its implicit guide, z_n = encoder(x_n, e_n) with e_n ~ Normal(0, I_2).
"""
from __future__ import annotations

import numpy as np

from ppl_models.generic import for_backends
from ppl_models.latent_gaussian.vae import implicit_vae_guide, vae, vae_guide
from ppl_models.nets import MLP
from ppl_models.registry import register_model
from ppl_models.spec import Minibatch, ModelSpec

IMAGES = np.eye(4, dtype=np.float32)
COPIES = 128
LATENT_DIM = 2
HIDDEN = (64, 64)


def toy_spec(guide: str) -> ModelSpec:
    """The toy with the ``"gaussian"`` or the ``"implicit"`` guide."""
    x = np.repeat(IMAGES, COPIES, axis=0)
    encoder = (MLP((4, *HIDDEN, 2 * LATENT_DIM), "relu", head="normal") if guide == "gaussian"
               else MLP((4 + LATENT_DIM, *HIDDEN, LATENT_DIM), "relu"))
    return ModelSpec(
        name="onehot4-vae" + ("_implicit" if guide == "implicit" else ""),
        data={"x": x, "num_data": x.shape[0], "latent_dim": LATENT_DIM},
        model=for_backends(vae), guide=for_backends(vae_guide if guide == "gaussian" else implicit_vae_guide),
        networks={"decoder": MLP((LATENT_DIM, *HIDDEN, 4), "relu"), "encoder": encoder},
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


register_model("onehot4-vae")(lambda: toy_spec("gaussian"))
register_model("onehot4-vae_implicit")(lambda: toy_spec("implicit"))
