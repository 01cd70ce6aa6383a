"""One-compartment pharmacokinetics with first-order absorption and Michaelis-Menten elimination
(posteriordb ``one_comp_mm_elim_abs-one_comp_mm_elim_abs``).

Generative story: a dose D = 30 mg is absorbed at rate k_a into a compartment of volume V = 2 L,
empty at t0 = 0, and eliminated with saturating (Michaelis-Menten) kinetics; the concentration is
measured N_t = 20 times over ten days with multiplicative (lognormal) error:

    k_a, K_m, V_m, sigma ~ Cauchy(0, 1) on (0, inf)
    dC/dt = exp(-k_a t) D k_a / V - (V_m / V) C / (K_m + C);  C(t0) = 0
    C_hat_n ~ LogNormal(log C(t_n), sigma)

The Stan program sets the absorption term to 0 at t = 0 itself (``if (t > 0)``), a single point that
changes no solution; it is left out here, so the solver sees a right-hand side without a jump at the
start. Stan's ``integrate_ode_bdf`` (a stiff solver, tolerances 1e-6 by default) becomes Dormand-Prince
at rtol 1e-8 and atol 1e-10 (``ode.solvers``): the equation is not stiff where the posterior lies
(C stays well above K_m after the first hours but for K_m in its far upper tail, where elimination is
linear and slow). ``C`` (the solved concentrations) is a deterministic site; a solution at or below 0
(the solver's error near C = 0) has density 0 (``log_concentration``). Reference draws are posteriordb's.
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

NAME = "one_comp_mm_elim_abs-one_comp_mm_elim_abs"
RTOL, ATOL, MAX_STEPS = 1e-8, 1e-10, 4096


def rhs(t, C, params, xp):
    """dC/dt: absorption of the dose minus Michaelis-Menten elimination; ``params`` = (k_a, K_m, V_m, D, V)."""
    k_a, K_m, V_m, D, V = params
    return xp.exp(-k_a * t) * D * k_a / V - (V_m / V) * C / (K_m + C)


def one_comp(t0, D, V, times, C_hat):
    k_a = pyro.sample("k_a", dist.HalfCauchy(1.0))
    K_m = pyro.sample("K_m", dist.HalfCauchy(1.0))
    V_m = pyro.sample("V_m", dist.HalfCauchy(1.0))
    sigma = pyro.sample("sigma", dist.HalfCauchy(1.0))
    C = solve(rhs, xp.zeros(1, dtype=times.dtype), t0, times, (k_a, K_m, V_m, D, V), RTOL, ATOL, MAX_STEPS)[:, 0]
    pyro.deterministic("C", C)
    with pyro.plate("time", times.shape[0]):
        pyro.sample("C_hat", dist.LogNormal(log_concentration(C), sigma), obs=C_hat)


def log_concentration(C):
    """log C, and -inf where the solution is at or below 0: the point has density 0 and the sampler
    rejects it, as Stan rejects the NaN its ``log(C)`` gives there. The exact C is positive after t0,
    but a solution within ``ATOL`` of 0 can come out a little below it: with fast absorption and a
    small K_m (k_a 22, K_m 0.01, V_m 5, a prior draw) C is about 1e-11 at ten days and the solver's
    -4e-11. Its NaN made Pyro's argument validation raise."""
    return xp.log(xp.where(C > 0, C, 0.0))


@register_model(NAME, backends=BACKENDS, reference=f"posteriordb {NAME}",
                description="one-compartment pharmacokinetics, Michaelis-Menten elimination (ODE, 20 times)")
def _spec() -> ModelSpec:
    d = load_data(NAME)
    t0 = float(d["t0"])
    times = check_times(d["times"], t0, NAME, key="times")
    if int(d["N_t"]) != len(times):
        raise DataError(f"data['N_t'] of {NAME!r} is {d['N_t']}, but data['times'] holds {len(times)} times")
    for key in ("D", "V"):
        if not float(d[key]) > 0:
            raise DataError(f"data[{key!r}] of {NAME!r} must be positive, not {d[key]}")
    return ModelSpec(
        name=NAME,
        data={"t0": t0, "D": float(d["D"]), "V": float(d["V"]), "times": times,
              "C_hat": np.asarray(d["C_hat"], float)},
        model=for_backends(one_comp),
        reference=Reference(draws=load_reference_draws(NAME), source=f"posteriordb {NAME}"),
        data_dims={"times": ("N_t",), "C_hat": ("N_t",)},
        description=__doc__.split("\n\n")[1],
    )
