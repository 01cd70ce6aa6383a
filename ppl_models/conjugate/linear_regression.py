"""Bayesian linear regression with known noise: a Gaussian posterior in closed form.

Generative story: beta ~ Normal(0, prior_scale^2 I); y_n ~ Normal(X_n . beta, sigma^2)
with sigma known. The posterior is Normal(m, S) with

    S = (X^T X / sigma^2 + I / prior_scale^2)^-1,   m = S X^T y / sigma^2.

The mean-field Gaussian closest to it in KL(q || p) keeps the mean m and has
variances 1 / (S^-1)_ii, smaller than S_ii whenever the posterior is correlated.

Data: posteriordb's kidiq, the child's test score (in tens of points) on an
intercept and whether the mother finished high school (79% did), so intercept
and slope are correlated (about -0.89): a full-rank Gaussian guide can match the
posterior exactly; a mean-field guide cannot, and its sds come out about 0.46
times the true ones. sigma = 2.0 is close to the residual sd of the
least-squares fit (19.9 points).
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posteriordb import load_data
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "kidiq-conjugate_regression"
SIGMA, PRIOR_SCALE, SCORE_UNIT = 2.0, 10.0, 10.0


def conjugate_linear_regression(X, sigma, prior_scale, y=None):
    beta = pyro.sample("beta", dist.Normal(0.0, prior_scale).expand([X.shape[-1]]).to_event(1))
    with pyro.plate("obs", X.shape[0]):
        pyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)


def exact_posterior(X, y, sigma, prior_scale):
    """Mean and covariance of beta | y."""
    precision = X.T @ X / sigma**2 + np.eye(X.shape[1]) / prior_scale**2
    cov = np.linalg.inv(precision)
    return cov @ X.T @ y / sigma**2, cov


def mean_field_sd(cov):
    """sds of the KL(q || p)-optimal fully factorized Gaussian: 1 / sqrt(diag(precision))."""
    return 1.0 / np.sqrt(np.diag(np.linalg.inv(cov)))


@register_model(NAME, backends=BACKENDS, reference="exact conjugate posterior",
                description="conjugate Gaussian linear regression (kidiq data)")
def _spec() -> ModelSpec:
    d = load_data("kidiq")
    X = np.column_stack([np.ones(int(d["N"])), d["mom_hs"].astype(float)])
    y = d["kid_score"].astype(float) / SCORE_UNIT
    mean, cov = exact_posterior(X, y, SIGMA, PRIOR_SCALE)
    return ModelSpec(
        name=NAME,
        data={"X": X, "y": y, "sigma": SIGMA, "prior_scale": PRIOR_SCALE},
        model=for_backends(conjugate_linear_regression),
        reference=Reference(mean={"beta": mean}, sd={"beta": np.sqrt(np.diag(cov))},
                            source="exact conjugate posterior",
                            extra={"beta_cov": cov, "beta_mean_field_sd": mean_field_sd(cov)}),
        data_dims={"X": ("N", "K"), "y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )
