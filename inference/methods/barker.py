"""Barker MCMC (Livingstone & Zanella 2022, "The Barker proposal: combining robustness and
efficiency in gradient-based MCMC", JRSS B 84(2)): NumPyro's ``numpyro.infer.BarkerMH``.

A Metropolis-Hastings kernel whose proposal moves each coordinate by a Gaussian step whose sign is
flipped with a probability set by the gradient (Barker's rule), which makes it robust to the step
size where MALA is not. The step size is adapted during warmup towards ``target_accept_prob``
(NumPyro's default 0.4), with a diagonal (or, with ``dense_mass``, dense) mass matrix.

Per-draw statistics: ``acceptance_rate``, ``step_size``, ``lp`` (the log density on the
unconstrained space, Jacobians included) and ``n_steps`` = 1, the gradient evaluations of a draw.
It mixes more slowly than NUTS, a random walk guided by the gradient: its defaults are 5 times NUTS's
warmup and draws."""
from __future__ import annotations

from inference.methods._mcmc import check_chain_method, kernel_class
from inference.methods._numpyro_kernels import (
    BASE_OPTIONS,
    NUMPYRO,
    chained,
    constant_stat,
    library_keywords,
    negated,
    numpyro_runner,
)
from inference.options import MCMC_OPTIONS, integer, open_unit, opt
from inference.registry import register_method

STATS = {"accept_prob": "acceptance_rate", "adapt_state.step_size": "step_size",
         "potential_energy": "potential_energy"}


def kernel(model, opts: dict):
    from numpyro.infer import BarkerMH

    return BarkerMH(model, target_accept_prob=opts["target_accept_prob"], dense_mass=opts["dense_mass"],
                    **library_keywords(opts))


register_method(
    "barker", family="mcmc", backends=NUMPYRO, takes="model", doc=__doc__, check=check_chain_method,
    library=kernel_class("BarkerMH"),
    options={**BASE_OPTIONS,
             "num_warmup": opt(5000, "warmup (adaptation) iterations per chain", integer(1), NUMPYRO),
             "num_samples": opt(5000, "draws kept per chain", integer(1), NUMPYRO),
             "target_accept_prob": opt(0.4, "step-size adaptation target (NumPyro's default for Barker)",
                                       open_unit(), NUMPYRO),
             "dense_mass": MCMC_OPTIONS["dense_mass"]},
)(numpyro_runner(kernel, STATS, derive=chained(negated("potential_energy", "lp"), constant_stat("n_steps", 1))))
