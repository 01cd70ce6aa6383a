"""Radon in Minnesota homes (Gelman & Hill 2006; posteriordb ``radon_mn``).

Generative story: house n in county j[n] has log radon level log_radon[n],
Normal around a county-level line with noise sigma_y:

* hierarchical intercept: alpha_j ~ Normal(mu_alpha, sigma_alpha) per county;
  log_radon[n] ~ Normal(alpha_j[n] + beta_1 log_uppm[n] + beta_2 floor[n], sigma_y),
  with mu_alpha ~ Normal(0, 10), beta ~ Normal(0, 10), sigma_alpha and
  sigma_y ~ HalfNormal(1). Centered (alpha sampled directly) or non-centered
  (alpha = mu_alpha + sigma_alpha * alpha_raw, alpha_raw ~ Normal(0, 1)).
* variable intercept and slope (non-centered): alpha_j and beta_j (the floor
  effect) both vary by county, each with its own Normal(0, 10) mean and
  HalfNormal(1) scale; log_radon[n] ~ Normal(alpha_j[n] + floor[n] beta_j[n], sigma_y).

posteriordb has no reference draws for these. Ours are made by
``benchmarks/make_radon_reference.py`` (10 chains, NUTS, thinned; R-hat < 1.01,
no divergences) and stored beside this file in ``reference/``.
"""
from __future__ import annotations

from pathlib import Path

from ppl_models.data.posteriordb import load_data
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import load_reference_draws_file
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

REFERENCE_DIR = Path(__file__).with_name("reference")


def _county_effect(name, county, mu_scale=10.0):
    """A county-varying coefficient, non-centered: mu + sigma * raw, raw ~ Normal(0, 1).

    ``county`` is the model's one county plate: Pyro, unlike NumPyro, refuses two
    plates of the same name in one trace, so the plate is made once and reused.
    """
    mu = pyro.sample(f"mu_{name}", dist.Normal(0.0, mu_scale))
    sigma = pyro.sample(f"sigma_{name}", dist.HalfNormal(1.0))
    with county:
        raw = pyro.sample(f"{name}_raw", dist.Normal(0.0, 1.0))
    return pyro.deterministic(name, mu + sigma * raw)


def radon_hierarchical_intercept_noncentered(J, county_idx, log_uppm, floor_measure, log_radon=None):
    alpha = _county_effect("alpha", pyro.plate("county", J))
    beta = pyro.sample("beta", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    sigma_y = pyro.sample("sigma_y", dist.HalfNormal(1.0))
    mu = alpha[county_idx] + log_uppm * beta[0] + floor_measure * beta[1]
    with pyro.plate("house", county_idx.shape[0]):
        pyro.sample("log_radon", dist.Normal(mu, sigma_y), obs=log_radon)


def radon_hierarchical_intercept_centered(J, county_idx, log_uppm, floor_measure, log_radon=None):
    mu_alpha = pyro.sample("mu_alpha", dist.Normal(0.0, 10.0))
    sigma_alpha = pyro.sample("sigma_alpha", dist.HalfNormal(1.0))
    with pyro.plate("county", J):
        alpha = pyro.sample("alpha", dist.Normal(mu_alpha, sigma_alpha))
    beta = pyro.sample("beta", dist.Normal(0.0, 10.0).expand([2]).to_event(1))
    sigma_y = pyro.sample("sigma_y", dist.HalfNormal(1.0))
    mu = alpha[county_idx] + log_uppm * beta[0] + floor_measure * beta[1]
    with pyro.plate("house", county_idx.shape[0]):
        pyro.sample("log_radon", dist.Normal(mu, sigma_y), obs=log_radon)


def radon_variable_intercept_slope_noncentered(J, county_idx, floor_measure, log_radon=None):
    county = pyro.plate("county", J)
    alpha = _county_effect("alpha", county)
    beta = _county_effect("beta", county)
    sigma_y = pyro.sample("sigma_y", dist.HalfNormal(1.0))
    mu = alpha[county_idx] + floor_measure * beta[county_idx]
    with pyro.plate("house", county_idx.shape[0]):
        pyro.sample("log_radon", dist.Normal(mu, sigma_y), obs=log_radon)


def radon_data(with_uppm: bool) -> dict:
    """posteriordb's radon_mn, with 0-based county indices."""
    raw = load_data("radon_mn")
    data = {
        "J": int(raw["J"]),
        "county_idx": raw["county_idx"].astype(int) - 1,
        "floor_measure": raw["floor_measure"].astype(float),
        "log_radon": raw["log_radon"].astype(float),
    }
    if with_uppm:
        data["log_uppm"] = raw["log_uppm"].astype(float)
    return data


def reference_path(name: str) -> Path:
    return REFERENCE_DIR / f"{name}.npz"


def _spec(name: str, model, with_uppm: bool, reference: str) -> ModelSpec:
    path = reference_path(reference)
    data = radon_data(with_uppm)
    return ModelSpec(
        name=name,
        data=data,
        model=for_backends(model),
        reference=load_reference_draws_file(path) if path.is_file() else None,
        data_dims={k: ("N",) for k in data if k != "J"},
        index_bounds={"county_idx": "J"},
        description=__doc__.split("\n\n")[1],
    )


INTERCEPT = "radon_mn-radon_hierarchical_intercept_noncentered"
SLOPE = "radon_mn-radon_variable_intercept_slope_noncentered"
# name -> (model, uses log_uppm, reference posterior). The centered and non-centered
# intercept models are one posterior, so they share one reference, as in posteriordb.
MODELS = {
    INTERCEPT: (radon_hierarchical_intercept_noncentered, True, INTERCEPT),
    "radon_mn-radon_hierarchical_intercept_centered": (radon_hierarchical_intercept_centered, True, INTERCEPT),
    SLOPE: (radon_variable_intercept_slope_noncentered, False, SLOPE),
}
for _name, (_model, _with_uppm, _reference) in MODELS.items():
    _what = _name.split("radon_")[-1].replace("_", " ")
    # reference: the source saved in the .npz by benchmarks/make_radon_reference.py (get_model checks it)
    register_model(_name, backends=BACKENDS, description=f"radon in Minnesota homes, {_what}",
                   reference=f"NUTS (numpyro, 10 chains) by benchmarks/make_radon_reference.py; see {_reference}.json")(
        lambda n=_name, m=_model, u=_with_uppm, r=_reference: _spec(n, m, u, r))
