"""Reweighted wake-sleep (Bornschein & Bengio 2015): the model's parameters by the IWAE bound,
the guide's by the wake-phi update, num_particles importance samples per data point."""
from __future__ import annotations

from inference.methods import on_backends
from inference.methods._guides import autoguide_class, check_rank, prepare_training
from inference.options import GUIDE_OPTION, GUIDES, TRAINING_OPTIONS, integer, opt
from inference.registry import register_method

register_method(
    "rws", family="vi", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check_rank,
    prepare=prepare_training("rws", GUIDES), library=autoguide_class,
    options={"guide": GUIDE_OPTION, **TRAINING_OPTIONS,
             "num_particles": opt(5, "importance samples per data point", integer(1))},
)(on_backends(numpyro="inference.backends.numpyro_svi:run", pyro="inference.backends.pyro_svi:run"))
