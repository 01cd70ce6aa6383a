"""Importance sampling from the prior or the model's own guide (fitted, say, by SVI): weighted
draws, the log evidence with its standard error, and the weights' PSIS k-hat."""
from __future__ import annotations

from collections.abc import Mapping

from inference.methods import on_backends
from inference.methods._guides import check_own_guide
from inference.options import integer, one_of, opt
from inference.registry import register_method

GUIDES = (None, "prior", "spec")


def prepare(spec, backend: str, options: dict) -> None:
    if options["guide"] is None:
        options["guide"] = "spec" if spec.guide and backend in spec.guide else "prior"
    if options["guide"] == "spec":
        check_own_guide(spec, backend, "is", GUIDES)


register_method(
    "is", family="importance", backends=("numpyro", "pyro"), takes="model", doc=__doc__, prepare=prepare,
    options={
        "num_samples": opt(1000, "proposal draws (per data point when every latent is local to a data plate)",
                           integer(1)),
        "guide": opt(None, "proposal: prior, or spec (the model's own guide); default spec if the model has one",
                     one_of(*GUIDES)),
        "params": opt(None, "fitted parameters of the guide, e.g. an SVI result's .params",
                      (lambda v: v is None or isinstance(v, Mapping), "a dict name -> array")),
        "resample": opt(None, "keep num_samples posterior draws, resampled from the weighted proposals (default: "
                              "yes, except for minibatched models, whose latents number one per data point)",
                        (lambda v: v is None or isinstance(v, bool), "None, True or False")),
        "chunk_size": opt(None, "numpyro only: proposal draws evaluated at once (default: as many as fit in "
                                "about 256 MB); pyro evaluates one draw at a time",
                          (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 1),
                           "None or an integer >= 1"), ("numpyro",)),
    },
)(on_backends(numpyro="inference.backends.numpyro_importance:run", pyro="inference.backends.pyro_importance:run"))
