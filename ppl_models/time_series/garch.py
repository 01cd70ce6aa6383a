"""GARCH(1, 1) (posteriordb ``garch-garch11``).

Generative story: the T = 200 returns are normal around mu, with a volatility
that follows the previous squared deviation and the previous volatility, from a
known start sigma1:

    mu flat;  alpha0 flat on (0, inf);  (alpha1, beta1) flat on alpha1 in (0, 1), beta1 in (0, 1 - alpha1)
    sigma_1 = sigma1;  sigma_t^2 = alpha0 + alpha1 (y_{t-1} - mu)^2 + beta1 sigma_{t-1}^2
    y_t ~ Normal(mu, sigma_t)

The Stan program's upper bound on beta1 depends on alpha1. A support that moves with
another latent is lost where a backend fixes each site's transform once (Pyro's NUTS
does), so beta1 is written as Stan transforms it: ``beta1 = (1 - alpha1) * beta1_frac``
with beta1_frac on (0, 1), a deterministic site. The flat density on the triangle is
kept exactly: alpha1 ~ Beta(1, 2) (the triangle's marginal, density 2 (1 - alpha1)) and
beta1_frac ~ Uniform(0, 1) give (alpha1, beta1) the constant density 2. The variances
follow ``time_series.filters``' closed form. Reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec
from ppl_models.time_series.filters import lag_data, recursion

NAME = "garch-garch11"


def garch11(y, sigma1, lag, causal):
    mu = pyro.sample("mu", dist.ImproperUniform(dist.constraints.real, (), ()))
    alpha0 = pyro.sample("alpha0", dist.ImproperUniform(dist.constraints.positive, (), ()))
    alpha1 = pyro.sample("alpha1", dist.Beta(1.0, 2.0))
    beta1_frac = pyro.sample("beta1_frac", dist.Uniform(0.0, 1.0))
    beta1 = pyro.deterministic("beta1", (1.0 - alpha1) * beta1_frac)
    variance = recursion(beta1, sigma1**2, alpha0 + alpha1 * (y[:-1] - mu) ** 2, lag, causal)
    with pyro.plate("time", y.shape[0]):
        pyro.sample("y", dist.Normal(mu, variance**0.5), obs=y)


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="GARCH(1, 1) volatility (200 points)")
def _spec() -> ModelSpec:
    d = load_data(NAME)
    y = np.asarray(d["y"], float)
    return ModelSpec(
        name=NAME,
        data={"y": y, "sigma1": float(d["sigma1"]), **lag_data(len(y))},
        model=for_backends(garch11),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"y": ("T",), "lag": ("T", "T"), "causal": ("T", "T")},
        description=__doc__.split("\n\n")[1],
    )
