"""An autoregressive model with K lags (posteriordb ``arK-arK``).

Generative story: each of the T = 200 observations after the first K is normal
around an intercept plus a weighted sum of the K observations before it:

    alpha ~ Normal(0, 10);  beta_k ~ Normal(0, 10);  sigma ~ Cauchy(0, 2.5) on (0, inf)
    y_t ~ Normal(alpha + sum_k beta_k y_{t-k}, sigma),  t = K+1, ..., T

The first K observations are conditioned on, as in the Stan program. ``beta[k-1]``
is the weight of lag k; reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "arK-arK"


def ark(K, y):
    T = y.shape[0]
    alpha = pyro.sample("alpha", dist.Normal(0.0, 10.0))
    beta = pyro.sample("beta", dist.Normal(0.0, 10.0).expand([K]).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfCauchy(2.5))
    mu = alpha
    for k in range(1, K + 1):  # lag k of y_t, t = K+1..T (Stan's 1-based), is y[K-k : T-k]
        mu = mu + beta[k - 1] * y[K - k:T - k]
    with pyro.plate("time", T - K):
        pyro.sample("y", dist.Normal(mu, sigma), obs=y[K:])


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="autoregressive model, K = 5 lags (200 points)")
def _spec() -> ModelSpec:
    d = load_data(NAME)
    return ModelSpec(
        name=NAME,
        data={"K": int(d["K"]), "y": np.asarray(d["y"], float)},
        model=for_backends(ark),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"y": ("T",)},
        description=__doc__.split("\n\n")[1],
    )
