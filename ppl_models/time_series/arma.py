"""ARMA(1, 1) (posteriordb ``arma-arma11``).

Generative story: each of the T = 200 observations is normal around a mean
coefficient, an autoregression on the previous observation and a moving average
of the previous error, with err_0 = 0 and y_0 = mu as the Stan program assumes:

    mu ~ Normal(0, 10);  phi ~ Normal(0, 2);  theta ~ Normal(0, 2);  sigma ~ Cauchy(0, 2.5) on (0, inf)
    nu_1 = mu + phi mu;  nu_t = mu + phi y_{t-1} + theta err_{t-1};  err_t = y_t - nu_t
    err_t ~ Normal(0, sigma)

The errors follow err_t = e_t - theta err_{t-1} with e_t = y_t - mu - phi y_{t-1}, computed in
closed form (``time_series.filters``); reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec
from ppl_models.time_series.filters import lag_data, recursion

NAME = "arma-arma11"


def arma11(y, lag, causal):
    mu = pyro.sample("mu", dist.Normal(0.0, 10.0))
    phi = pyro.sample("phi", dist.Normal(0.0, 2.0))
    theta = pyro.sample("theta", dist.Normal(0.0, 2.0))
    sigma = pyro.sample("sigma", dist.HalfCauchy(2.5))
    e_1 = y[0] - mu - phi * mu
    e_rest = y[1:] - mu - phi * y[:-1]
    err = recursion(-theta, e_1, e_rest, lag, causal)  # err_t = e_t - theta err_{t-1}
    nu = y - err  # the one-step predictions: err ~ Normal(0, sigma) is y ~ Normal(nu, sigma)
    with pyro.plate("time", y.shape[0]):
        pyro.sample("y", dist.Normal(nu, sigma), obs=y)


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="ARMA(1, 1) time series (200 points)")
def _spec() -> ModelSpec:
    y = np.asarray(load_data(NAME)["y"], float)
    return ModelSpec(
        name=NAME,
        data={"y": y, **lag_data(len(y))},
        model=for_backends(arma11),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"y": ("T",), "lag": ("T", "T"), "causal": ("T", "T")},
        description=__doc__.split("\n\n")[1],
    )
