"""What the methods that run one of NumPyro's MCMC kernels share (``inference.backends.numpyro_mcmc``):
the runner that hands the method's kernel builder and statistics to the backend, the per-draw
statistics of NumPyro's HMC state, and the ensemble kernels' walkers (their number per model).

Nothing here imports JAX or NumPyro at import time: registering a method loads neither."""
from __future__ import annotations

from collections.abc import Callable, Mapping

from inference.options import MCMC_OPTIONS, boolean, integer, opt, or_none

NUMPYRO = ("numpyro",)

# NumPyro's HMC and NUTS state fields -> ArviZ's sample_stats names
HMC_STATS = {"diverging": "diverging", "accept_prob": "acceptance_rate", "num_steps": "n_steps",
             "adapt_state.step_size": "step_size", "energy": "energy"}


def numpyro_runner(kernel: Callable, stats: Mapping[str, str] | None = None, derive: Callable | None = None,
                   info: Callable | None = None, chain_method: str | None = None) -> Callable:
    """A ``takes="model"`` runner of ``inference.backends.numpyro_mcmc.run`` with the method's own
    ``kernel(model, options) -> MCMCKernel`` and statistics (see that function); ``chain_method``
    fixes the chain method (an ensemble kernel's "vectorized"). The backend is imported when a run
    needs it."""

    def run(spec, model, *, backend: str = "numpyro", **kwargs):
        from inference.backends.numpyro_mcmc import run as run_mcmc

        if chain_method is not None:
            kwargs["chain_method"] = chain_method
        return run_mcmc(spec, model, kernel=kernel, stats=stats, derive=derive, info=info, **kwargs)

    return run


def library_keywords(opts: dict) -> dict:
    """The library's own keywords a run was given (``inference.library_options``), as NumPyro takes them."""
    from inference.library_options import to_library

    return to_library("numpyro", opts["library_options"])


def constant_stat(name: str, value: int) -> Callable[[dict], dict]:
    """A ``derive`` that adds ``name`` = ``value`` for every draw (the gradient evaluations a draw of
    a kernel that takes a fixed number of them)."""

    def derive(sample_stats: dict) -> dict:
        import numpy as np

        shape = next(iter(sample_stats.values())).shape[:2]
        return {**sample_stats, name: np.full(shape, value, dtype=np.int64)}

    return derive


def negated(name: str, as_name: str) -> Callable[[dict], dict]:
    """A ``derive`` that records minus statistic ``name`` as ``as_name`` (``lp``: minus NumPyro's
    potential energy, the log density on the unconstrained space, Jacobians included)."""

    def derive(sample_stats: dict) -> dict:
        out = {k: v for k, v in sample_stats.items() if k != name}
        return {**out, as_name: -sample_stats[name]}

    return derive


def chained(*derives: Callable[[dict], dict]) -> Callable[[dict], dict]:
    """The ``derive`` that applies ``derives`` in turn."""

    def derive(sample_stats: dict) -> dict:
        for d in derives:
            sample_stats = d(sample_stats)
        return sample_stats

    return derive


# What every NumPyro MCMC method takes from MCMC_OPTIONS (not NUTS's step-size target, nor Pyro's JIT).
BASE_OPTIONS = {k: v for k, v in MCMC_OPTIONS.items()
                if k in ("num_warmup", "num_samples", "num_chains", "chain_method", "checkpoint", "checkpoint_every")}


# ---------------------------------------------------------------- ensemble kernels (AIES, ESS)
#
# An ensemble kernel moves half of its walkers (NumPyro's chains) at a time along directions drawn from the other
# half (NumPyro's EnsembleSampler), so the walkers are vectorized in one sampler (chain_method="vectorized"), their
# number is even, and it needs walkers enough to span the space: NumPyro's AIES and ESS docs, emcee and zeus ask for
# at least twice the dimension (NumPyro only warns below it; fewer is an error here). A walker's moves follow
# differences of the other half's walkers, which span at most (walkers / 2 - 1) dimensions at a time.

def ensemble_options(default_warmup: int, default_samples: int, walkers_per_dim: int) -> dict:
    return {
        "num_warmup": opt(default_warmup, "warmup iterations (each moves every walker once)", integer(1), NUMPYRO),
        "num_samples": opt(default_samples, "draws kept per walker", integer(1), NUMPYRO),
        "num_chains": opt(None, "walkers of the ensemble (the result's chains): an even number, at least 2 per "
                                f"unconstrained latent dimension and 4 (default: {walkers_per_dim} per dimension)",
                          or_none(integer(1)), NUMPYRO),  # too few for the model: prepare says how many
        # NumPyro's ESS defaults to True: the walkers are then shuffled among the chains every iteration, and R-hat
        # and ESS over the chains mean nothing (eight schools: bulk ESS 46000-61000 of 80000 draws; 2300-3800 with
        # the walkers kept in place, the same draws' honest count)
        "randomize_split": opt(False, "shuffle the walkers before splitting them in halves, each iteration; the "
                                      "result's chains are then no walker's path, so R-hat and ESS over them are "
                                      "meaningless", boolean(), NUMPYRO),
        **{k: MCMC_OPTIONS[k] for k in ("checkpoint", "checkpoint_every")},
    }


def moves_option(moves: Mapping[str, str], default: str) -> dict:
    """``moves``: the ensemble's proposal moves by name, each with its probability (NumPyro's
    ``moves``, whose keys are functions: a name keeps the result's record of its options readable)."""
    names = ", ".join(map(repr, moves))

    def valid(v) -> bool:
        import numbers

        return v is None or (isinstance(v, Mapping) and len(v) > 0 and all(k in moves for k in v) and all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) and w >= 0 for w in v.values())
            and sum(v.values()) > 0)

    return {"moves": opt(None, f"proposal moves and their probabilities, a dict of {names} to weights (default: "
                               f"{{{default!r}: 1.0}}, NumPyro's)", (valid, f"None or a dict of {names} to weights "
                                                                            "(not all zero)"), NUMPYRO)}


def build_moves(cls, moves: Mapping[str, str], given: Mapping[str, float] | None) -> dict | None:
    """NumPyro's ``moves`` for kernel class ``cls`` from the names in ``given`` (``moves``: a name ->
    the name of ``cls``'s static method that makes the move)."""
    return None if given is None else {getattr(cls, moves[name])(): float(w) for name, w in given.items()}


def latent_dim(spec, options: dict) -> int:
    """The length of the model's flat unconstrained latent vector (its sites traced by NumPyro, on the CPU)."""
    from inference.backends.numpyro_common import backend_context, to_backend, with_networks
    from inference.potential import Potential

    dtype = options.get("dtype") or spec.dtype
    with backend_context("cpu", dtype):
        (model,) = with_networks(spec, 0, dtype, spec.model_fn("numpyro"))
        return Potential.of(model, to_backend(spec.data, dtype)).dim


def needed_walkers(dim: int) -> int:
    return max(2 * dim, 4)


def ensemble_prepare(name: str, walkers_per_dim: int) -> Callable:
    """``prepare``: ``num_chains`` from the model's dimension, or checked against it (one line, naming the number)."""

    def prepare(spec, backend: str, options: dict) -> None:
        dim = latent_dim(spec, options)
        needed = needed_walkers(dim)
        given = options["num_chains"]
        if given is None:
            options["num_chains"] = max(walkers_per_dim * dim, needed)
        elif given < needed or given % 2:
            raise ValueError(f"method {name!r} needs num_chains >= {needed}, an even number of ensemble walkers (2 "
                             f"per unconstrained latent dimension; {spec.name} has {dim}), not {given}")

    return prepare


def walkers_moved(last_state, samples: dict) -> dict:
    """``info`` of a Metropolis ensemble kernel (AIES): ``acceptance_rate``, the fraction of walker
    updates accepted over the draws kept. Each walker is updated once an iteration, and a rejected
    update leaves it where it was: the accepted ones are the positions of a draw not among the last
    draw's (compared as a projection of all the sites, so walkers shuffled among the chains count right)."""
    import numpy as np

    flat = np.concatenate([v.reshape(*v.shape[:2], -1) for v in samples.values()], axis=-1)  # (walker, draw, n)
    if flat.shape[1] < 2:
        return {}
    keys = flat @ np.random.default_rng(0).normal(size=flat.shape[-1])
    moved = [~np.isin(keys[:, t], keys[:, t - 1]) for t in range(1, keys.shape[1])]
    return {"acceptance_rate": float(np.mean(moved))}
