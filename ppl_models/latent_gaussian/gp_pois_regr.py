"""A latent Gaussian process with Poisson counts (posteriordb ``gp_pois_regr-gp_pois_regr``).

Generative story: a function f over 11 inputs x_n is a Gaussian process with a
squared-exponential kernel of magnitude alpha and length scale rho, written
non-centred through the Cholesky factor L of its covariance; the count k_n is
Poisson with log rate f_n:

    rho ~ Gamma(25, 4);  alpha ~ Normal(0, 2) on (0, inf);  f_tilde_n ~ Normal(0, 1)
    K_nm = alpha^2 exp(-(x_n - x_m)^2 / (2 rho^2)) + 1e-10 [n = m];  f = L f_tilde  (L L^T = K)
    k_n ~ Poisson(exp(f_n))

f is a deterministic site, as in the Stan program's transformed parameters; the
reference (posteriordb's Stan NUTS draws, 10 chains x 1000) covers rho, alpha and f.

The model is written once for both backends (``ppl_models.generic``, whose ``xp`` is torch or
jax.numpy while the model runs, so that ``import ppl_models`` imports neither).
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posteriordb import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro, xp
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "gp_pois_regr-gp_pois_regr"
JITTER = 1e-10  # the Stan program's diagonal jitter


def gp_pois_regr(x, k=None):
    n = x.shape[0]
    rho = pyro.sample("rho", dist.Gamma(25.0, 4.0))
    alpha = pyro.sample("alpha", dist.HalfNormal(2.0))
    f_tilde = pyro.sample("f_tilde", dist.Normal(0.0, 1.0).expand([n]).to_event(1))
    cov = alpha**2 * xp.exp(-0.5 * ((x[:, None] - x[None, :]) / rho) ** 2) + JITTER * xp.eye(n)
    f = pyro.deterministic("f", xp.linalg.cholesky(cov) @ f_tilde)
    with pyro.plate("obs", n):
        pyro.sample("k", dist.Poisson(xp.exp(f)), obs=k)


def gp_pois_regr_data() -> dict:
    """posteriordb's gp_pois_regr: inputs x and counts k (the data set's y is another model's)."""
    d = load_data("gp_pois_regr")
    return {"x": np.asarray(d["x"], float), "k": np.asarray(d["k"], float)}


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="Gaussian process, Poisson counts (non-centred, 11 points)")
def _spec() -> ModelSpec:
    return ModelSpec(
        name=NAME,
        data=gp_pois_regr_data(),
        model=for_backends(gp_pois_regr),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"x": ("N",), "k": ("N",)},
        data_support={"k": "count"},
        description=__doc__.split("\n\n")[1],
    )
