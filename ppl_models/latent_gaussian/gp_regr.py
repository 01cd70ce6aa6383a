"""Gaussian process regression (posteriordb ``gp_pois_regr-gp_regr``).

Generative story: the 11 responses y_n at inputs x_n (gp_pois_regr's data set)
are jointly normal, with a squared-exponential kernel of magnitude alpha and
length scale rho, and noise whose variance is sigma (the Stan program adds sigma,
not sigma^2, to the diagonal); the function is integrated out:

    rho ~ Gamma(25, 4);  alpha ~ Normal(0, 2) on (0, inf);  sigma ~ Normal(0, 1) on (0, inf)
    K_nm = alpha^2 exp(-(x_n - x_m)^2 / (2 rho^2)) + sigma [n = m]
    y ~ MultivariateNormal(0, K)   (Stan's multi_normal_cholesky with L L^T = K)

It shares gp_pois_regr's inputs and its priors on rho and alpha, and is written once for both
backends (``ppl_models.generic``); the reference (posteriordb's Stan NUTS draws) covers rho, alpha, sigma.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro, xp
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "gp_pois_regr-gp_regr"


def gp_regr(x, y=None):
    n = x.shape[0]
    rho = pyro.sample("rho", dist.Gamma(25.0, 4.0))
    alpha = pyro.sample("alpha", dist.HalfNormal(2.0))
    sigma = pyro.sample("sigma", dist.HalfNormal(1.0))
    cov = alpha**2 * xp.exp(-0.5 * ((x[:, None] - x[None, :]) / rho) ** 2) + sigma * xp.eye(n)
    pyro.sample("y", dist.MultivariateNormal(xp.zeros(n), scale_tril=xp.linalg.cholesky(cov)), obs=y)


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="Gaussian process regression, normal noise (11 points)")
def _spec() -> ModelSpec:
    d = load_data(NAME)
    return ModelSpec(
        name=NAME,
        data={"x": np.asarray(d["x"], float), "y": np.asarray(d["y"], float)},
        model=for_backends(gp_regr),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"x": ("N",), "y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )
