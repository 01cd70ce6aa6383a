"""A two-component normal mixture (posteriordb ``low_dim_gauss_mix-low_dim_gauss_mix``).

Generative story: each of the N = 1000 points comes from the first normal
component with probability theta and from the second otherwise; the assignment
is summed out, as the Stan program's ``log_mix`` does:

    mu ~ Normal(0, 2) on mu_1 < mu_2 (Stan's ``ordered[2]``);  sigma_j ~ Normal(0, 2) on (0, inf)
    theta ~ Beta(5, 5)
    y_n ~ theta Normal(mu_1, sigma_1) + (1 - theta) Normal(mu_2, sigma_2)

The ordering breaks the label switching. As in Stan, mu lives on the ordered vectors
(an improper uniform there, NumPyro's and Pyro's ``ordered_vector`` constraint, whose
transform is Stan's) and its normal prior is added to the log density unnormalized: a
normal pushed through the ordered transform would be another prior. The model is written
once for both backends (``ppl_models.generic``). Reference draws are posteriordb's.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import dist, for_backends, pyro, xp
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "low_dim_gauss_mix-low_dim_gauss_mix"


def low_dim_gauss_mix(y):
    mu = pyro.sample("mu", dist.ImproperUniform(dist.constraints.ordered_vector, (), (2,)))
    pyro.factor("mu_prior", dist.Normal(0.0, 2.0).log_prob(mu).sum(-1))
    sigma = pyro.sample("sigma", dist.HalfNormal(2.0).expand([2]).to_event(1))
    theta = pyro.sample("theta", dist.Beta(5.0, 5.0))
    mix = dist.Categorical(probs=xp.stack([theta, 1.0 - theta], -1))
    with pyro.plate("obs", y.shape[0]):
        pyro.sample("y", dist.MixtureSameFamily(mix, dist.Normal(mu, sigma)), obs=y)


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="two-component normal mixture, ordered means (1000 points)")
def _spec() -> ModelSpec:
    return ModelSpec(
        name=NAME,
        data={"y": np.asarray(load_data(NAME)["y"], float)},
        model=for_backends(low_dim_gauss_mix),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )
