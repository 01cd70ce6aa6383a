"""NUTS (Hoffman & Gelman 2014), with step-size and diagonal mass-matrix adaptation during warmup.
Three implementations, chosen by ``engine``: NumPyro's and Pyro's own, each on its backend, and
BlackJAX's (window adaptation, then its NUTS kernel) on a NumPyro model lowered to a Potential."""
from __future__ import annotations

from inference.methods import on_backends
from inference.methods._mcmc import check_chain_method, kernel_class
from inference.options import MCMC_OPTIONS, integer, one_of, opt
from inference.potential_runs import run_on_potential
from inference.registry import register_method
from ppl_models.spec import resolve_function

ENGINES = ("library", "blackjax")
_LIBRARY = on_backends(numpyro="inference.backends.numpyro_mcmc:run", pyro="inference.backends.pyro_mcmc:run")
# what BlackJAX's NUTS takes; the other options are the backends' own samplers'
_BLACKJAX_OPTIONS = ("num_warmup", "num_samples", "num_chains", "target_accept_prob", "max_tree_depth", "dense_mass")


def check(backend: str, options: dict) -> None:
    check_chain_method(backend, options)
    if options.get("engine") == "blackjax":
        taken = [k for k in ("chain_method", "checkpoint") if options[k] is not None]
        if taken:
            raise ValueError(f"option(s) {', '.join(taken)} apply to engine='library' (NumPyro's own NUTS), not "
                             "engine='blackjax'")


def run(spec, model, *, backend: str, method: str, engine: str = "library", **kwargs):
    if engine == "library":
        return _LIBRARY(spec, model, backend=backend, method=method, **kwargs)
    common = {k: kwargs[k] for k in ("seed", "device", "dtype", "progress_bar")}
    return run_on_potential(method, resolve_function("inference.backends.blackjax_nuts:nuts"), spec, model,
                            **common, **{k: kwargs[k] for k in _BLACKJAX_OPTIONS})


register_method(
    "nuts", family="mcmc", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check,
    library=kernel_class("NUTS"),
    options={**MCMC_OPTIONS, "max_tree_depth": opt(10, "maximum NUTS tree depth", integer(1)),
             "engine": opt("library", "numpyro only: library (NumPyro's own NUTS) or blackjax (BlackJAX's NUTS with "
                                      "its window adaptation)", one_of(*ENGINES), ("numpyro",))},
)(run)
