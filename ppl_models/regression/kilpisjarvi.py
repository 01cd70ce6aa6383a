"""Summer temperature trend at Kilpisjärvi (posteriordb ``kilpisjarvi_mod-kilpisjarvi``).

Generative story: the summer temperature y_n of year x_n (62 consecutive years,
coded 3952-4013 in this modified data set) lies around a line, with normal priors whose means and scales are
data (the posterior's data set gives them):

    alpha ~ Normal(pmualpha, psalpha);  beta ~ Normal(pmubeta, psbeta);  sigma flat on (0, inf)
    y_n ~ Normal(alpha + beta x_n, sigma)

The years are far from zero and not centred, so alpha (the line at x = 0) and
beta are almost perfectly correlated a posteriori: a sampler with a diagonal mass matrix
sees a long narrow ridge. Reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "kilpisjarvi_mod-kilpisjarvi"


def kilpisjarvi(x, pmualpha, psalpha, pmubeta, psbeta, y=None):
    alpha = pyro.sample("alpha", dist.Normal(pmualpha, psalpha))
    beta = pyro.sample("beta", dist.Normal(pmubeta, psbeta))
    sigma = pyro.sample("sigma", dist.ImproperUniform(dist.constraints.positive, (), ()))
    with pyro.plate("obs", x.shape[0]):
        pyro.sample("y", dist.Normal(alpha + beta * x, sigma), obs=y)


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="linear trend of summer temperatures, uncentred years (alpha, beta correlated)")
def _spec() -> ModelSpec:
    d = load_data(NAME)
    data = {k: float(d[k]) for k in ("pmualpha", "psalpha", "pmubeta", "psbeta")}
    return ModelSpec(
        name=NAME,
        data={"x": np.asarray(d["x"], float), "y": np.asarray(d["y"], float), **data},
        model=for_backends(kilpisjarvi),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"x": ("N",), "y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )
