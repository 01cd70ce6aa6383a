"""One explicit Runge-Kutta solver for both backends: Dormand-Prince 5(4) with adaptive steps.

The posteriordb programs solve their ODEs with Stan's ``integrate_ode_rk45`` (Dormand-Prince) or
``integrate_ode_bdf``. Here NumPyro solves with diffrax's ``Dopri5`` under a PID step-size controller
and Pyro with torchdiffeq's ``dopri5``: the same method, the same relative and absolute tolerances
(mixed error test ``|err| <= atol + rtol |y|``, RMS over components), and the solution at the
measurement times read from the method's dense output. At the models' tolerances both solutions lie
within about ``10 * rtol`` of the exact one, so the two backends' log densities agree far inside the
model contract's 1e-5.

Gradients: torch backpropagates through the solver's steps; diffrax solves the adjoint equations
backwards in time (``BacksolveAdjoint``, with the forward solve's method and tolerances, as
``jax.experimental.ode.odeint`` does), whose gradient differs from that of the computed solution by
about the solver's tolerance (1e-7 relative on Lotka-Volterra), far below what NUTS notices.
diffrax's default, ``RecursiveCheckpointAdjoint`` (backpropagation through the steps), fails inside
NumPyro's parallel chains (``pmap``) with jax 0.10.2, equinox 0.13.8 and diffrax 0.7.2 ("Closure-converted
function called with different dynamic arguments"); ``DirectAdjoint``, which works there, is ten
times slower.

A solve that needs more than ``max_steps`` steps fails as Stan's ``max_num_steps`` does: the solution
is +inf (diffrax's ``throw=False``; the Pyro side catches torchdiffeq's error and does the same), so
the log density is not finite and the sampler rejects the point instead of hanging on a stiff
proposal far out in warmup. (diffrax counts the steps of the whole solve, torchdiffeq those between
two measurement times; the limit is a guard far above what the posteriors need, not part of the model.)

``rhs(t, y, args, xp)`` is the right-hand side written once, with ``xp`` the array module
(``jax.numpy`` or ``torch``) for the few functions the two spell alike (``exp``, ``stack``). It is
passed in, not read from ``ppl_models.generic.xp``: diffrax traces ``rhs`` again for the adjoint
solve when the gradient is taken, after the model has returned and outside its backend.
"""
from __future__ import annotations

import numpy as np

from ppl_models.errors import DataError
from ppl_models.generic import active_backend


def check_times(ts, t0: float, name: str, key: str = "ts") -> np.ndarray:
    """The measurement times as a float array, refused in one line unless strictly increasing and after ``t0``."""
    ts = np.asarray(ts, dtype=float)
    if ts.ndim != 1 or ts.size == 0:
        raise DataError(f"data[{key!r}] of {name!r} must be a non-empty vector of times, not shape {ts.shape}")
    bad = np.flatnonzero(np.diff(np.concatenate([[t0], ts])) <= 0)
    if bad.size:
        i = int(bad[0])
        before = f"data[{key!r}][{i - 1}] = {ts[i - 1]}" if i else f"the initial time {t0}"
        raise DataError(f"data[{key!r}] of {name!r} must increase strictly from the initial time: "
                        f"data[{key!r}][{i}] = {ts[i]} does not come after {before}")
    return ts


def solve(rhs, y0, t0, ts, args, rtol: float, atol: float, max_steps: int):
    """The solution at ``ts`` on the backend of the model being run (``ppl_models.generic``)."""
    if active_backend() == "numpyro":
        return solve_numpyro(rhs, y0, t0, ts, args, rtol, atol, max_steps)
    return solve_pyro(rhs, y0, t0, ts, args, rtol, atol, max_steps)


def solve_numpyro(rhs, y0, t0, ts, args, rtol: float, atol: float, max_steps: int):
    """The solution at ``ts`` (``(len(ts), *y0.shape)``), +inf where the solve took over ``max_steps`` steps."""
    import diffrax
    import jax.numpy as jnp

    solution = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, a: rhs(t, y, a, jnp)), diffrax.Dopri5(), t0=t0, t1=ts[-1], dt0=None, y0=y0,
        args=args, saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps, adjoint=diffrax.BacksolveAdjoint(), throw=False)
    return solution.ys


def solve_pyro(rhs, y0, t0, ts, args, rtol: float, atol: float, max_steps: int):
    """The solution at ``ts`` (``(len(ts), *y0.shape)``), +inf where the solve took over ``max_steps`` steps."""
    import torch
    import torchdiffeq

    times = torch.cat([ts.new_tensor([float(t0)]), ts])
    try:
        ys = torchdiffeq.odeint(lambda t, y: rhs(t, y, args, torch), y0, times, rtol=rtol, atol=atol,
                                method="dopri5", options={"max_num_steps": max_steps})
    except AssertionError as e:  # torchdiffeq's "max_num_steps exceeded", "underflow in dt", "non-finite values"
        if not str(e).startswith(("max_num_steps", "underflow", "non-finite")):
            raise
        return torch.full((len(ts), *y0.shape), float("inf"), dtype=y0.dtype, device=y0.device)
    return ys[1:]
