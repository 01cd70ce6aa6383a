"""Linear regressions of posteriordb (Gelman & Hill 2006, "ARM"): one model, 29 designs.

Generative story: y_n ~ Normal(X_n . beta, sigma), with beta flat on R^K (an
improper uniform prior, Stan's default) and sigma either flat on (0, inf) or
HalfCauchy(sigma_scale) (the kidiq programs' ``sigma ~ cauchy(0, 2.5)``). What
tells posteriordb's programs apart is their "transformed data" (logs, centring,
standardizing, interactions, dummies), computed here in each posterior's design
(response y, columns of X after the intercept), so the model itself is one
function for both backends. ``beta[k]`` is the coefficient of X's k-th column,
in the Stan program's order; reference draws are posteriordb's.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
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


class Design(NamedTuple):
    """A posterior's transformed data: its response and the columns of X after the intercept, as
    functions of posteriordb's data (a dict of float arrays); ``sigma_scale`` for a HalfCauchy prior."""

    y: Callable[[dict], np.ndarray]
    columns: Callable[[dict], list]
    sigma_scale: float | None = None


log = np.log


def z(x, scale=1.0):
    """Stan's ``(x - mean(x)) / (scale * sd(x))``; Stan's ``sd`` divides by N - 1."""
    return (x - x.mean()) / (scale * x.std(ddof=1))


def dummies(x, levels):
    """Stan's ``x[n] == level`` for each level: 0/1 columns."""
    return [x == level for level in levels]


def _kid(d):
    return d["kid_score"]


def _earn(d):
    return log(d["earn"])


def _weight(d):
    return log(d["weight"])


def _volume(d):
    return log(d["diam1"] * d["diam2"] * d["canopy_height"])


def _area(d):
    return log(d["diam1"] * d["diam2"])


def _shape(d):
    return log(d["diam1"] / d["diam2"])


def _nes(d):
    return [d["real_ideo"], d["race_adj"], *dummies(d["age_discrete"], (2, 3, 4)), d["educ1"], d["gender"],
            d["income"]]


def _interacting(a, b):
    """Two predictors and their interaction."""
    return [a, b, a * b]


DESIGNS = {
    "earnings-earn_height": Design(lambda d: d["earn"], lambda d: [d["height"]]),
    "earnings-log10earn_height": Design(lambda d: np.log10(d["earn"]), lambda d: [d["height"]]),
    "earnings-logearn_height": Design(_earn, lambda d: [d["height"]]),
    "earnings-logearn_height_male": Design(_earn, lambda d: [d["height"], d["male"]]),
    "earnings-logearn_interaction": Design(_earn, lambda d: _interacting(d["height"], d["male"])),
    "earnings-logearn_interaction_z": Design(_earn, lambda d: _interacting(z(d["height"]), d["male"])),
    "earnings-logearn_logheight_male": Design(_earn, lambda d: [log(d["height"]), d["male"]]),
    "kidiq-kidscore_momhs": Design(_kid, lambda d: [d["mom_hs"]], 2.5),
    "kidiq-kidscore_momiq": Design(_kid, lambda d: [d["mom_iq"]], 2.5),
    "kidiq-kidscore_momhsiq": Design(_kid, lambda d: [d["mom_hs"], d["mom_iq"]], 2.5),
    "kidiq-kidscore_interaction": Design(_kid, lambda d: _interacting(d["mom_hs"], d["mom_iq"]), 2.5),
    "kidiq_with_mom_work-kidscore_interaction_c": Design(_kid, lambda d: _interacting(
        d["mom_hs"] - d["mom_hs"].mean(), d["mom_iq"] - d["mom_iq"].mean())),
    "kidiq_with_mom_work-kidscore_interaction_c2": Design(_kid, lambda d: _interacting(
        d["mom_hs"] - 0.5, d["mom_iq"] - 100.0)),
    "kidiq_with_mom_work-kidscore_interaction_z": Design(_kid, lambda d: _interacting(
        z(d["mom_hs"], 2), z(d["mom_iq"], 2))),
    "kidiq_with_mom_work-kidscore_mom_work": Design(_kid, lambda d: dummies(d["mom_work"], (2, 3, 4))),
    "mesquite-mesquite": Design(lambda d: d["weight"], lambda d: [
        d[k] for k in ("diam1", "diam2", "canopy_height", "total_height", "density", "group")]),
    "mesquite-logmesquite": Design(_weight, lambda d: [
        *(log(d[k]) for k in ("diam1", "diam2", "canopy_height", "total_height", "density")), d["group"]]),
    "mesquite-logmesquite_logva": Design(_weight, lambda d: [_volume(d), _area(d), d["group"]]),
    "mesquite-logmesquite_logvas": Design(_weight, lambda d: [
        _volume(d), _area(d), _shape(d), log(d["total_height"]), log(d["density"]), d["group"]]),
    "mesquite-logmesquite_logvash": Design(_weight, lambda d: [
        _volume(d), _area(d), _shape(d), log(d["total_height"]), d["group"]]),
    "mesquite-logmesquite_logvolume": Design(_weight, lambda d: [_volume(d)]),
    **{f"nes{year}-nes": Design(lambda d: d["partyid7"], _nes) for year in range(1972, 2001, 4)},
}


def design_data(name: str) -> dict:
    """The data ``linear_regression`` takes for posterior ``name``: X (intercept first), y, and
    sigma_scale where the program puts a HalfCauchy prior on sigma."""
    design = DESIGNS[name]
    d = {k: np.asarray(v, float) for k, v in load_data(name).items()}
    columns = [np.asarray(c, float) for c in design.columns(d)]
    data = {"X": np.column_stack([np.ones_like(columns[0]), *columns]), "y": np.asarray(design.y(d), float)}
    if design.sigma_scale is not None:
        data["sigma_scale"] = design.sigma_scale
    return data


def _spec(name: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        data=design_data(name),
        model=for_backends(linear_regression),
        reference=Reference(draws=load_reference_draws(name), source=f"posteriordb {name}"),
        data_dims={"X": ("N", "K"), "y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )


for _name, _design in DESIGNS.items():
    _prior = "flat beta, HalfCauchy sigma" if _design.sigma_scale is not None else "flat priors"
    register_model(_name, backends=BACKENDS, reference=f"posteriordb {_name}",
                   description=f"linear regression, {_prior} (ARM)")(lambda n=_name: _spec(n))
