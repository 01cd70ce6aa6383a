"""Eight schools (Rubin 1981; posteriordb ``eight_schools``).

Generative story: each school j has a true coaching effect theta_j drawn from a
population Normal(mu, tau); its estimated effect y_j is observed with known
standard error sigma_j:

    mu ~ Normal(0, 5);  tau ~ HalfCauchy(5)
    theta_j ~ Normal(mu, tau)                       (centered)
      or theta_j = mu + tau * theta_trans_j,
         theta_trans_j ~ Normal(0, 1)               (non-centered)
    y_j ~ Normal(theta_j, sigma_j)

Both parameterizations have the same posterior; the centered one has a funnel
that NUTS reports as divergences. The reference is posteriordb's (Stan NUTS,
10 chains x 1000 draws).
"""
from __future__ import annotations

from ppl_models.data.posteriordb import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

REFERENCE_POSTERIOR = "eight_schools-eight_schools_noncentered"


def eight_schools_noncentered(J, sigma, y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("school", J):
        theta_trans = pyro.sample("theta_trans", dist.Normal(0.0, 1.0))
        theta = pyro.deterministic("theta", mu + tau * theta_trans)
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def eight_schools_centered(J, sigma, y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(5.0))
    with pyro.plate("school", J):
        theta = pyro.sample("theta", dist.Normal(mu, tau))
        pyro.sample("y", dist.Normal(theta, sigma), obs=y)


def _spec(name: str, model) -> ModelSpec:
    data = load_data("eight_schools")
    return ModelSpec(
        name=name,
        data={"J": int(data["J"]), "sigma": data["sigma"].astype(float), "y": data["y"].astype(float)},
        model=for_backends(model),
        reference=Reference(draws=load_reference_draws(REFERENCE_POSTERIOR),
                            source=f"posteriordb {REFERENCE_POSTERIOR}"),
        data_dims={"sigma": ("J",), "y": ("J",)},
        description=__doc__.split("\n\n")[1],
    )


@register_model("eight_schools-eight_schools_noncentered", backends=BACKENDS,
                reference=f"posteriordb {REFERENCE_POSTERIOR}", description="eight schools, non-centered")
def _noncentered() -> ModelSpec:
    return _spec("eight_schools-eight_schools_noncentered", eight_schools_noncentered)


@register_model("eight_schools-eight_schools_centered", backends=BACKENDS,
                reference=f"posteriordb {REFERENCE_POSTERIOR}", description="eight schools, centered (a funnel)")
def _centered() -> ModelSpec:
    return _spec("eight_schools-eight_schools_centered", eight_schools_centered)
