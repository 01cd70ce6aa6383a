"""Probabilistic PCA (Tipping & Bishop 1999) at its maximum-likelihood parameters.

Generative story: for each image n, a k-dimensional code z_n ~ Normal(0, I_k), and
pixels x_n | z_n ~ Normal(W z_n + b, sigma^2 I_D). Marginally x_n ~ Normal(b, C) with
C = W W^T + sigma^2 I, so log p(x) is exact, and so is the posterior
z_n | x_n ~ Normal(M^-1 W^T (x_n - b), sigma^2 M^-1) with M = W^T W + sigma^2 I.
That makes PPCA the ground truth for every estimator of the posterior or the evidence.

W, b and sigma^2 are the closed-form maximum-likelihood fit to the first 10000 MNIST
training images (pixels scaled to [0, 1]): b the mean image, W from the top k
eigenvectors of the sample covariance, sigma^2 the mean of the remaining eigenvalues.
They enter the model as fixed data; the latents z are inferred for N test images.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.mnist import load_mnist
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "mnist-ppca"
NUM_LATENT, NUM_FIT, NUM_TEST = 5, 10000, 20


def ppca(W, b, sigma, N, x=None):
    with pyro.plate("data", N):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([W.shape[1]]).to_event(1))
        pyro.sample("x", dist.Normal(z @ W.T + b, sigma).to_event(1), obs=x)


def ppca_guide(W, b, sigma, N, x=None):
    """q(z_n) = Normal(loc_n, diag(scale_n^2)) for each image. At the ML fit W^T W is
    diagonal, so the exact posterior is in this family and SVI can reach it."""
    loc = pyro.param("z_loc", np.zeros((N, W.shape[1])))
    scale = pyro.param("z_scale", np.full((N, W.shape[1]), 0.1), constraint=dist.constraints.positive)
    with pyro.plate("data", N):
        pyro.sample("z", dist.Normal(loc, scale).to_event(1))


def fit_ppca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Maximum-likelihood W (D, k), b (D,), sigma^2 for PPCA (Tipping & Bishop, eq. 7-8)."""
    b = x.mean(0)
    eigval, eigvec = np.linalg.eigh(np.cov(x - b, rowvar=False, bias=True))
    eigval, eigvec = eigval[::-1], eigvec[:, ::-1]
    sigma2 = float(eigval[k:].mean())
    return eigvec[:, :k] * np.sqrt(eigval[:k] - sigma2), b, sigma2


def exact_log_evidence(x, W, b, sigma2) -> np.ndarray:
    """log p(x_n) for each row of x, under x_n ~ Normal(b, W W^T + sigma^2 I)."""
    cov = W @ W.T + sigma2 * np.eye(W.shape[0])
    chol = np.linalg.cholesky(cov)
    white = np.linalg.solve(chol, (x - b).T)
    return -0.5 * (white**2).sum(0) - np.log(np.diag(chol)).sum() - 0.5 * W.shape[0] * np.log(2 * np.pi)


def exact_posterior(x, W, b, sigma2) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean (N, k) and covariance (k, k, shared by all n) of z_n | x_n."""
    M = W.T @ W + sigma2 * np.eye(W.shape[1])
    mean = np.linalg.solve(M, W.T @ (x - b).T).T
    return mean, sigma2 * np.linalg.inv(M)


@register_model(NAME, backends=BACKENDS, reference="exact PPCA posterior",
                description="probabilistic PCA on MNIST")
def _spec() -> ModelSpec:
    train, _ = load_mnist("train")
    test, _ = load_mnist("test")
    W, b, sigma2 = fit_ppca(train[:NUM_FIT] / 255.0, NUM_LATENT)
    x = test[:NUM_TEST] / 255.0
    mean, cov = exact_posterior(x, W, b, sigma2)
    log_evidence = exact_log_evidence(x, W, b, sigma2)
    sd = np.broadcast_to(np.sqrt(np.diag(cov)), mean.shape)
    return ModelSpec(
        name=NAME,
        data={"W": W, "b": b, "sigma": float(np.sqrt(sigma2)), "N": NUM_TEST, "x": x},
        model=for_backends(ppca),
        guide=for_backends(ppca_guide),
        reference=Reference(mean={"z": mean}, sd={"z": sd}, source="exact PPCA posterior",
                            extra={"z_cov": cov, "log_evidence": np.asarray(log_evidence.sum()),
                                   "log_evidence_per_point": log_evidence}),
        data_dims={"W": ("D", "K"), "b": ("D",), "x": ("N", "D")},
        description=__doc__.split("\n\n")[1],
    )
