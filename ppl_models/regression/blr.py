"""Bayesian linear regression with normal priors (posteriordb ``sblrc-blr``, ``sblri-blr``).

Generative story: five coefficients and a noise scale with weakly informative
normal priors, and a linear likelihood for 100 simulated observations:

    beta_d ~ Normal(0, 10);  sigma ~ Normal(0, 10) on (0, inf)
    y_n ~ Normal(X_n . beta, sigma)

posteriordb's two data sets share the program: ``sblrc`` has correlated
predictors, ``sblri`` independent ones. Reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

POSTERIORS = {"sblrc-blr": "correlated", "sblri-blr": "independent"}


def blr(X, y=None):
    beta = pyro.sample("beta", dist.Normal(0.0, 10.0).expand([X.shape[-1]]).to_event(1))
    sigma = pyro.sample("sigma", dist.HalfNormal(10.0))
    with pyro.plate("obs", X.shape[0]):
        pyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)


def _spec(name: str) -> ModelSpec:
    d = load_data(name)
    return ModelSpec(
        name=name,
        data={"X": np.asarray(d["X"], float), "y": np.asarray(d["y"], float)},
        model=for_backends(blr),
        reference=Reference(draws=load_reference_draws(name), source=f"posteriordb {name}"),
        data_dims={"X": ("N", "K"), "y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )


for _name, _kind in POSTERIORS.items():
    register_model(_name, backends=BACKENDS, reference=f"posteriordb {_name}",
                   description=f"linear regression, normal priors ({_kind} predictors)")(lambda n=_name: _spec(n))
