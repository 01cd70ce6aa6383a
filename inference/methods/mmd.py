"""A generative moment-matching network (Li et al. 2015; Dziugaite et al. 2015): the generator
minimizes the maximum mean discrepancy between generated points and data."""
from __future__ import annotations

from inference.discrepancies import KERNELS
from inference.methods import on_backends
from inference.options import LIKELIHOOD_FREE_OPTIONS, one_of, opt, positive_numbers
from inference.registry import register_method


def check(backend: str, options: dict) -> None:
    if options["kernel"] == "energy" and options["bandwidth"] is not None:
        raise ValueError("option bandwidth goes with kernel='gaussian'; the energy distance has none")


register_method(
    "mmd", family="likelihood_free", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check,
    options={
        **LIKELIHOOD_FREE_OPTIONS,
        "kernel": opt("gaussian", "gaussian (a sum of Gaussian kernels, one per bandwidth) or energy (the energy "
                                  "distance, no bandwidth)", one_of(*KERNELS)),
        "bandwidth": opt(None, "Gaussian kernel bandwidth(s): a number or a tuple of numbers (default: the median "
                               "distance between data and generated points, per batch)",
                         (lambda v: v is None or positive_numbers(v), "None, a number > 0 or a tuple of them")),
    },
)(on_backends(numpyro="inference.backends.numpyro_implicit:run", pyro="inference.backends.pyro_implicit:run"))
