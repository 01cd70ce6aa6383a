"""NUTS (Hoffman & Gelman 2014), with step-size and diagonal mass-matrix adaptation during warmup.
Three implementations, chosen by ``engine``: NumPyro's and Pyro's own, each on its backend, and
BlackJAX's (window adaptation, then its NUTS kernel) on a NumPyro model lowered to a Potential."""
from __future__ import annotations

from inference.methods import on_backends
from inference.methods._mcmc import check_chain_method, kernel_class
from inference.methods._numpyro_kernels import HMC_STATS, library_keywords, numpyro_runner
from inference.options import MCMC_OPTIONS, integer, one_of, opt
from inference.potential_runs import run_on_potential
from inference.registry import register_method
from ppl_models.spec import resolve_function

ENGINES = ("library", "blackjax")


def numpyro_kernel(model, opts: dict):
    from numpyro.infer import NUTS

    return NUTS(model, max_tree_depth=opts["max_tree_depth"], target_accept_prob=opts["target_accept_prob"],
                dense_mass=opts["dense_mass"], **library_keywords(opts))


def tree_depth(sample_stats: dict) -> dict:
    """A tree of depth d takes up to 2^d - 1 leapfrog steps."""
    import numpy as np

    return {**sample_stats, "tree_depth": np.floor(np.log2(sample_stats["n_steps"])).astype(int) + 1}


_LIBRARY = on_backends(numpyro=numpyro_runner(numpyro_kernel, HMC_STATS, derive=tree_depth),
                       pyro="inference.backends.pyro_mcmc:run")
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
