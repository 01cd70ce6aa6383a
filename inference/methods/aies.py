"""AIES, the affine-invariant ensemble sampler (Goodman & Weare 2010, "Ensemble samplers with affine
invariance", CAMCoS 5(1); as in emcee, Foreman-Mackey et al. 2013): NumPyro's ``numpyro.infer.AIES``.

An ensemble of walkers (the result's chains, ``num_chains``) moves half at a time: each walker of
one half proposes a point from the other half's walkers (NumPyro's default move, differential
evolution, ``moves={"de": 1.0}``; ``{"stretch": 1.0}`` is Goodman & Weare's stretch move, and
a dict of both mixes them) and accepts it by Metropolis-Hastings. Gradient free, and unchanged by any affine map of the
space: it suits low-dimensional, badly scaled posteriors. The walkers run vectorized in one sampler
and must number at least twice the model's unconstrained dimension (and be even); the default is 4
per dimension. They are not independent chains: R-hat and ESS over them are approximations.

No per-draw statistics (NumPyro keeps the ensemble's, not each walker's); ``info["acceptance_rate"]``
is the fraction of walker updates accepted over the draws kept (emcee advises 0.2 to 0.5)."""
from __future__ import annotations

from inference.methods._mcmc import kernel_class
from inference.methods._numpyro_kernels import (
    NUMPYRO,
    build_moves,
    ensemble_options,
    ensemble_prepare,
    library_keywords,
    moves_option,
    numpyro_runner,
    walkers_moved,
)
from inference.registry import register_method

WALKERS_PER_DIM = 4
MOVES = {"de": "DEMove", "stretch": "StretchMove"}  # name -> AIES's move


def kernel(model, opts: dict):
    from numpyro.infer import AIES

    return AIES(model, randomize_split=opts["randomize_split"], moves=build_moves(AIES, MOVES, opts["moves"]),
                **library_keywords(opts))


register_method(
    "aies", family="mcmc", backends=NUMPYRO, takes="model", doc=__doc__,
    prepare=ensemble_prepare("aies", WALKERS_PER_DIM), library=kernel_class("AIES"),
    options={**ensemble_options(5000, 5000, WALKERS_PER_DIM), **moves_option(MOVES, "de")},
)(numpyro_runner(kernel, info=walkers_moved, chain_method="vectorized"))
