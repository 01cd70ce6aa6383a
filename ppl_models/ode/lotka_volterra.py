"""Lotka-Volterra predator-prey dynamics (posteriordb ``hudson_lynx_hare-lotka_volterra``).

Generative story: the Hudson's Bay Company's pelts of snowshoe hares (prey u) and Canada lynxes
(predator v), in thousands, over N = 20 years after a first count y_init, follow the Lotka-Volterra
equations from an unknown initial population z_init, with multiplicative (lognormal) measurement error:

    theta = (alpha, beta, gamma, delta) > 0;  alpha, gamma ~ Normal(1, 0.5);  beta, delta ~ Normal(0.05, 0.05)
    z_init_k ~ LogNormal(log 10, 1);  sigma_k ~ LogNormal(-1, 1)        (k = prey, predator)
    du/dt = (alpha - beta v) u;  dv/dt = (-gamma + delta u) v;  (u, v)(0) = z_init
    y_init_k ~ LogNormal(log z_init_k, sigma_k);  y_nk ~ LogNormal(log z_k(t_n), sigma_k)

As in Stan, theta is flat on (0, inf) with its normal priors added unnormalized (the truncation's
constant does not depend on anything). The equations are solved for log z, d log u/dt = alpha - beta v
and d log v/dt = -gamma + delta u: the same solution, which stays positive however far a proposal
drives a population down, and whose log is what the likelihood needs. Stan's ``integrate_ode_rk45``
(rtol 1e-5, atol 1e-3, 500 steps) becomes Dormand-Prince at rtol = atol = 1e-8 on log z (``ode.solvers``),
which keeps the two backends' log densities within 1e-7 of each other. ``z`` (the solved populations)
is a deterministic site. Reference draws are posteriordb's (theta, z_init, sigma).
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.errors import DataError
from ppl_models.generic import dist, for_backends, pyro, xp
from ppl_models.ode.solvers import check_times, solve
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

NAME = "hudson_lynx_hare-lotka_volterra"
RTOL, ATOL, MAX_STEPS = 1e-8, 1e-8, 4096
THETA_LOC, THETA_SCALE = (1.0, 0.05, 1.0, 0.05), (0.5, 0.05, 0.5, 0.05)


def log_rhs(t, log_z, theta, xp):
    """The Lotka-Volterra equations for (log u, log v)."""
    z = xp.exp(log_z)
    return xp.stack([theta[0] - theta[1] * z[1], -theta[2] + theta[3] * z[0]])


def lotka_volterra(ts, y_init, y):
    theta = pyro.sample("theta", dist.ImproperUniform(dist.constraints.positive, (), (4,)))
    pyro.factor("theta_prior", sum(dist.Normal(m, s).log_prob(theta[k])
                                   for k, (m, s) in enumerate(zip(THETA_LOC, THETA_SCALE, strict=True))))
    z_init = pyro.sample("z_init", dist.LogNormal(float(np.log(10.0)), 1.0).expand([2]).to_event(1))
    sigma = pyro.sample("sigma", dist.LogNormal(-1.0, 1.0).expand([2]).to_event(1))
    log_z = solve(log_rhs, xp.log(z_init), 0.0, ts, theta, RTOL, ATOL, MAX_STEPS)  # (N, 2)
    pyro.deterministic("z", xp.exp(log_z))
    pyro.sample("y_init", dist.LogNormal(xp.log(z_init), sigma).to_event(1), obs=y_init)
    with pyro.plate("time", ts.shape[0]):
        pyro.sample("y", dist.LogNormal(log_z, sigma).to_event(1), obs=y)


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="Lotka-Volterra ODE, hare and lynx pelts (20 years, lognormal errors)")
def _spec() -> ModelSpec:
    d = load_data(NAME)
    ts = check_times(d["ts"], 0.0, NAME)
    y, y_init = np.asarray(d["y"], float), np.asarray(d["y_init"], float)
    if int(d["N"]) != len(ts):
        raise DataError(f"data['N'] of {NAME!r} is {d['N']}, but data['ts'] holds {len(ts)} times")
    return ModelSpec(
        name=NAME,
        data={"ts": ts, "y_init": y_init, "y": y},
        model=for_backends(lotka_volterra),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"ts": ("N",), "y_init": (2,), "y": ("N", 2)},
        description=__doc__.split("\n\n")[1],
    )
