"""NUTS (Hoffman & Gelman 2014): NumPyro's and Pyro's own, with step-size and diagonal mass-matrix
adaptation during warmup."""
from __future__ import annotations

from inference.methods import on_backends
from inference.methods._mcmc import check_chain_method
from inference.options import MCMC_OPTIONS, integer, opt
from inference.registry import register_method

register_method(
    "nuts", family="mcmc", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check_chain_method,
    options={**MCMC_OPTIONS, "max_tree_depth": opt(10, "maximum NUTS tree depth", integer(1))},
)(on_backends(numpyro="inference.backends.numpyro_mcmc:run", pyro="inference.backends.pyro_mcmc:run"))
