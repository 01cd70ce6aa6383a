"""HMC with a fixed trajectory length (or number of leapfrog steps): NumPyro's and Pyro's own."""
from __future__ import annotations

from inference.methods import on_backends
from inference.methods._mcmc import check_chain_method, kernel_class
from inference.methods._numpyro_kernels import HMC_STATS, library_keywords, numpyro_runner
from inference.options import MCMC_OPTIONS, integer, opt, or_none, positive
from inference.registry import register_method


def numpyro_kernel(model, opts: dict):
    from numpyro.infer import HMC

    from inference.backends import hmc_path_length

    return HMC(model, **hmc_path_length(opts), target_accept_prob=opts["target_accept_prob"],
               dense_mass=opts["dense_mass"], **library_keywords(opts))


register_method(
    "hmc", family="mcmc", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check_chain_method,
    library=kernel_class("HMC"),
    options={**MCMC_OPTIONS,
             "num_steps": opt(None, "leapfrog steps per iteration (default: from trajectory_length)",
                              or_none(integer(1))),
             "trajectory_length": opt(6.283185307179586, "integration time per iteration (when num_steps is None)",
                                      positive())},
)(on_backends(numpyro=numpyro_runner(numpyro_kernel, HMC_STATS), pyro="inference.backends.pyro_mcmc:run"))
