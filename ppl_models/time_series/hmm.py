"""Hidden Markov models of posteriordb, their states summed out by the forward algorithm.

* ``hmm_example-hmm_example``: two states, N = 100 normal outputs with unit scale;
  theta1, theta2 (the transition rows) flat on the simplex; mu positive and ordered,
  mu_1 ~ Normal(3, 1), mu_2 ~ Normal(10, 1).
* ``bball_drive_event_0-hmm_drive_0``: two states (none, drive), N = 416 pairs of
  exponential outputs, u_n (1/speed) with rate phi_k and v_n (hoop distance) with rate
  lambda_k; theta_k ~ Dirichlet(alpha_k); phi and lambda positive and ordered, with
  normal priors N(0, 1) on the first and N(3, 1) on the second component of each.
* ``bball_drive_event_1-hmm_drive_1``: the same chain on another game's drives, with normal
  outputs: u_n ~ Normal(phi_k, tau), v_n ~ Normal(lambda_k, rho), the sds tau and rho given as
  data; phi and lambda ordered (on the whole line), with the same priors.

Generative story (both): the state z_1 is uniform (the Stan programs start the
forward recursion at the emission densities alone), z_t ~ Categorical(theta_{z_{t-1}}),
and the outputs at t depend on z_t only. The log density is Stan's forward algorithm,

    gamma_1k = log p(x_1 | k);  gamma_tk = log sum_j exp(gamma_{t-1,j} + log theta_jk) + log p(x_t | k)
    target += log sum_k exp(gamma_Nk)

As in Stan, the ordered vectors are improper uniform on their constraint (``positive_ordered_vector``,
Stan's transform) with their normal priors added unnormalized; ``theta`` (the stacked rows) is a
deterministic site, as in the programs' transformed parameters. Each model is written once
(``ppl_models.generic``); only the recursion differs, a ``lax.scan`` on NumPyro and a loop on Pyro.
Reference draws are posteriordb's (theta1, theta2 and the emission parameters).
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.posterior_database import load_data, load_reference_draws
from ppl_models.generic import active_backend, dist, for_backends, pyro, xp
from ppl_models.reference import Reference
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, ModelSpec

EXAMPLE = "hmm_example-hmm_example"
DRIVES = ("bball_drive_event_0-hmm_drive_0", "bball_drive_event_1-hmm_drive_1")


# --- the forward algorithm: log_theta (K, K), rows the state before; log_emit (N, K) ---

def forward(log_theta, log_emit):
    """log p(x_1..N), the states summed out: a ``lax.scan`` on NumPyro (one compiled step), a loop on Pyro."""
    if active_backend() == "numpyro":
        return _forward_scan(log_theta, log_emit)
    gamma = log_emit[0]
    for emit in log_emit[1:]:
        gamma = (gamma[:, None] + log_theta).logsumexp(0) + emit
    return gamma.logsumexp(0)


def _forward_scan(log_theta, log_emit):
    import jax
    from jax.scipy.special import logsumexp

    def step(gamma, emit):
        return logsumexp(gamma[:, None] + log_theta, axis=0) + emit, None

    gamma, _ = jax.lax.scan(step, log_emit[0], log_emit[1:])
    return logsumexp(gamma)


def _ordered(name, means, positive=True):
    """A (positive) ordered vector with independent unnormalized normal priors (unit scale) at ``means``."""
    support = dist.constraints.positive_ordered_vector if positive else dist.constraints.ordered_vector
    value = pyro.sample(name, dist.ImproperUniform(support, (), (len(means),)))
    pyro.factor(f"{name}_prior", sum(dist.Normal(m, 1.0).log_prob(value[k]) for k, m in enumerate(means)))
    return value


def _transitions(alpha):
    """The rows theta1, theta2 ~ Dirichlet(alpha_k), and their stack ``theta`` (a deterministic site)."""
    rows = [pyro.sample(f"theta{k + 1}", dist.Dirichlet(alpha[k])) for k in range(2)]
    return pyro.deterministic("theta", xp.stack(rows))


def hmm_example(K, y):
    theta = _transitions([xp.ones(K)] * 2)
    mu = _ordered("mu", (3.0, 10.0))
    pyro.factor("forward", forward(xp.log(theta), dist.Normal(mu, 1.0).log_prob(y[:, None])))


def _drive_emissions(phi, lam, u, v, tau, rho):
    """log p(u_n, v_n | state k), ``(N, K)``: exponential rates (hmm_drive_0, no tau), or normal means
    with sds tau and rho (hmm_drive_1)."""
    if tau is None:
        return dist.Exponential(phi).log_prob(u[:, None]) + dist.Exponential(lam).log_prob(v[:, None])
    return dist.Normal(phi, tau).log_prob(u[:, None]) + dist.Normal(lam, rho).log_prob(v[:, None])


def hmm_drive(u, v, alpha, tau=None, rho=None):
    theta = _transitions(alpha)
    phi = _ordered("phi", (0.0, 3.0), positive=tau is None)
    lam = _ordered("lambda", (0.0, 3.0), positive=tau is None)
    pyro.factor("forward", forward(xp.log(theta), _drive_emissions(phi, lam, u, v, tau, rho)))


def _example() -> ModelSpec:
    d = load_data(EXAMPLE)
    return ModelSpec(
        name=EXAMPLE,
        data={"K": int(d["K"]), "y": np.asarray(d["y"], float)},
        model=for_backends(hmm_example),
        reference=Reference(draws=load_reference_draws(EXAMPLE), source=f"posteriordb {EXAMPLE}"),
        data_dims={"y": ("N",)},
        description=__doc__.split("\n\n")[1],
    )


def _drive(name: str) -> ModelSpec:
    d = load_data(name)
    data = {"u": np.asarray(d["u"], float), "v": np.asarray(d["v"], float), "alpha": np.asarray(d["alpha"], float)}
    data |= {k: float(d[k]) for k in ("tau", "rho") if k in d}  # hmm_drive_1's output sds
    return ModelSpec(
        name=name,
        data=data,
        model=for_backends(hmm_drive),
        reference=Reference(draws=load_reference_draws(name), source=f"posteriordb {name}"),
        data_dims={"u": ("N",), "v": ("N",), "alpha": (2, 2)},
        description=__doc__.split("\n\n")[1],
    )


register_model(EXAMPLE, backends=BACKENDS, reference=f"posteriordb {EXAMPLE}",
               description="hidden Markov model, 2 states, normal outputs (forward algorithm)")(_example)
for _name, _outputs in zip(DRIVES, ("exponential", "normal"), strict=True):
    register_model(_name, backends=BACKENDS, reference=f"posteriordb {_name}",
                   description=f"hidden Markov model, 2 states, {_outputs} outputs (forward algorithm)")(
        lambda n=_name: _drive(n))
