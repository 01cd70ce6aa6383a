"""Diamond prices (posteriordb ``diamonds-diamonds``; ggplot2's diamonds, a brms program).

Generative story: the price Y_n of diamond n is Normal around a line in its 24
centred predictors Xc_n (posteriordb's design matrix X without its intercept
column, each column minus its mean), with a temporary intercept for the centred
predictors:

    b_k ~ Normal(0, 1);  Intercept ~ StudentT(3, 8, 10);  sigma ~ StudentT(3, 0, 10) on (0, inf)
    Y_n ~ Normal(Intercept + Xc_n . b, sigma)

The polynomial predictors are strongly correlated, so the posterior of b is too:
NUTS needs a dense mass matrix to be efficient here. ``b_Intercept``, the
intercept of the uncentred predictors, is kept as a deterministic site as in the
Stan program's generated quantities. Reference draws are posteriordb's (Stan
NUTS, 10 chains x 1000 draws, thinned from 10000).
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "diamonds-diamonds"


def diamonds(Xc, means_X, Y=None):
    b = pyro.sample("b", dist.Normal(0.0, 1.0).expand([Xc.shape[-1]]).to_event(1))
    intercept = pyro.sample("Intercept", dist.StudentT(3.0, 8.0, 10.0))
    # StudentT(3, 0, 10) truncated to (0, inf): Stan's student_t_lpdf(sigma | 3, 0, 10) - student_t_lccdf(0 | ...)
    sigma = pyro.sample("sigma", dist.FoldedDistribution(dist.StudentT(3.0, 0.0, 10.0)))
    pyro.deterministic("b_Intercept", intercept - means_X @ b)
    with pyro.plate("obs", Xc.shape[0]):
        pyro.sample("Y", dist.Normal(intercept + Xc @ b, sigma), obs=Y)


def diamonds_data() -> dict:
    """posteriordb's diamonds with the Stan program's transformed data: X's columns after the
    intercept, centred (``Xc``), and their means (``means_X``). ``prior_only`` is 0 there: the
    likelihood is always included."""
    d = load_data(NAME)
    X = np.asarray(d["X"], float)
    means_X = X[:, 1:].mean(0)
    return {"Xc": X[:, 1:] - means_X, "means_X": means_X, "Y": np.asarray(d["Y"], float)}


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="diamond prices, linear regression on 24 correlated predictors")
def _spec() -> ModelSpec:
    return ModelSpec(
        name=NAME,
        data=diamonds_data(),
        model=for_backends(diamonds),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"Xc": ("N", "K"), "means_X": ("K",), "Y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )
