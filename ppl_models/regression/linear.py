"""Linear regressions with improper flat priors (posteriordb; Gelman & Hill 2006).

Generative story: y_n ~ Normal(X_n . beta, sigma), with beta flat on R^K (an
improper uniform prior, Stan's default) and sigma either flat on (0, inf) or
HalfCauchy(sigma_scale). Each data set's "transformed data" (logs, centring,
interactions, dummies) is computed in its data binding below, so the model
itself is one function; reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posteriordb import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec


def linear_regression(X, y=None, sigma_scale=None):
    beta = pyro.sample("beta", dist.ImproperUniform(dist.constraints.real, (), (X.shape[-1],)))
    if sigma_scale is None:
        sigma = pyro.sample("sigma", dist.ImproperUniform(dist.constraints.positive, (), ()))
    else:
        sigma = pyro.sample("sigma", dist.HalfCauchy(sigma_scale))
    with pyro.plate("obs", X.shape[0]):
        pyro.sample("y", dist.Normal(X @ beta, sigma), obs=y)


def _design(*columns) -> np.ndarray:
    """Intercept column, then the given columns."""
    columns = [np.asarray(c, float) for c in columns]
    return np.column_stack([np.ones_like(columns[0]), *columns])


def kidiq_kidscore_momiq() -> dict:
    d = load_data("kidiq")
    return {"X": _design(d["mom_iq"]), "y": d["kid_score"].astype(float), "sigma_scale": 2.5}


def earnings_logearn_interaction() -> dict:
    d = load_data("earnings")
    height, male = d["height"].astype(float), d["male"].astype(float)
    return {"X": _design(height, male, height * male), "y": np.log(d["earn"].astype(float))}


def mesquite_logmesquite() -> dict:
    d = load_data("mesquite")
    logs = [np.log(d[k].astype(float)) for k in ("diam1", "diam2", "canopy_height", "total_height", "density")]
    return {"X": _design(*logs, d["group"]), "y": np.log(d["weight"].astype(float))}


def nes2000_nes() -> dict:
    d = load_data("nes2000")
    age = d["age_discrete"]
    columns = [d["real_ideo"], d["race_adj"], age == 2, age == 3, age == 4, d["educ1"], d["gender"], d["income"]]
    return {"X": _design(*columns), "y": d["partyid7"].astype(float)}


DATA = {
    "kidiq-kidscore_momiq": kidiq_kidscore_momiq,
    "earnings-logearn_interaction": earnings_logearn_interaction,
    "mesquite-logmesquite": mesquite_logmesquite,
    "nes2000-nes": nes2000_nes,
}


def _spec(name: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        data=DATA[name](),
        model=for_backends(linear_regression),
        reference=Reference(draws=load_reference_draws(name), source=f"posteriordb {name}"),
        data_dims={"X": ("N", "K"), "y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )


for _name in DATA:
    register_model(_name, backends=BACKENDS, reference=f"posteriordb {_name}",
                   description=f"linear regression, flat priors ({_name.split('-')[0]} data)")(lambda n=_name: _spec(n))
