"""NUTS (Hoffman & Gelman 2014), with step-size and mass-matrix adaptation during warmup. Four
implementations, chosen by ``engine``: NumPyro's and Pyro's own, each on its backend; and, on a
NumPyro model lowered to a Potential, BlackJAX's (window adaptation, then its NUTS kernel) and
nutpie's (its own adaptation, in Rust; the ``nutpie`` extra)."""
from __future__ import annotations

from inference.methods import on_backends
from inference.methods._mcmc import check_chain_method, kernel_class
from inference.methods._numpyro_kernels import HMC_STATS, library_keywords, numpyro_runner
from inference.options import MCMC_OPTIONS, integer, one_of, opt
from inference.potential_runs import run_on_potential
from inference.registry import register_method
from ppl_models.spec import resolve_function

ENGINES = ("library", "blackjax", "nutpie")
_ON_POTENTIAL = {"blackjax": "inference.backends.blackjax_nuts:nuts", "nutpie": "inference.backends.nutpie_nuts:nuts"}


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
# what BlackJAX's and nutpie's NUTS take; the other options are the backends' own samplers'
_POTENTIAL_OPTIONS = ("num_warmup", "num_samples", "num_chains", "target_accept_prob", "max_tree_depth", "dense_mass")


def check(backend: str, options: dict) -> None:
    check_chain_method(backend, options)
    if options.get("engine", "library") != "library":
        taken = [k for k in ("chain_method", "checkpoint") if options[k] is not None]
        if taken:
            raise ValueError(f"option(s) {', '.join(taken)} apply to engine='library' (NumPyro's own NUTS), not "
                             f"engine={options['engine']!r}")


def run(spec, model, *, backend: str, method: str, engine: str = "library", **kwargs):
    if engine == "library":
        return _LIBRARY(spec, model, backend=backend, method=method, **kwargs)
    common = {k: kwargs[k] for k in ("seed", "device", "dtype", "progress_bar")}
    return run_on_potential(method, resolve_function(_ON_POTENTIAL[engine]), spec, model,
                            **common, **{k: kwargs[k] for k in _POTENTIAL_OPTIONS})


register_method(
    "nuts", family="mcmc", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check,
    library=kernel_class("NUTS"),
    options={**MCMC_OPTIONS, "max_tree_depth": opt(10, "maximum NUTS tree depth", integer(1)),
             "engine": opt("library", "numpyro only: library (NumPyro's own NUTS), blackjax (BlackJAX's NUTS with its "
                                      "window adaptation) or nutpie (nutpie's; dense_mass: its low-rank mass "
                                      "matrix)", one_of(*ENGINES), ("numpyro",))},
)(run)
