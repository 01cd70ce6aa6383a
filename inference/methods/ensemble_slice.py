"""Ensemble slice sampling (Karamanis & Beutler 2021, "Ensemble slice sampling: parallel, black-box
and gradient-free inference for correlated & multimodal distributions", Statistics and Computing
31(61); zeus): NumPyro's ``numpyro.infer.ESS``.

An ensemble of walkers (the result's chains, ``num_chains``) moves half at a time: each walker of
one half slice-samples along a direction drawn from the other half (NumPyro's default,
``moves={"differential": 1.0}``: the difference of two of its walkers, scaled by ``mu``; or
``"gaussian"``, ``"kde"``, ``"random"``, NumPyro's other moves), stepping out and shrinking the
interval, so every update is accepted. Gradient free and affine invariant. The
walkers run vectorized in one sampler and must number at least twice the model's unconstrained
dimension (and be even); the default is 4 per dimension. They are not independent chains: R-hat
and ESS over them are approximations.

``randomize_split`` defaults to False here (NumPyro's ESS: True, which shuffles the walkers among
the chains every iteration, so that R-hat and ESS over the chains mean nothing: on eight schools a
bulk ESS of 46000 to 61000 from 80000 draws, against 2300 to 3800 with the walkers in place).

NumPyro tunes the scale ``mu`` (``tune_mu``) from the expansions and contractions of the last
iteration alone, during sampling as well as warmup, so it keeps moving (on eight schools its last
value ranged from 0.1 to 1.8 between seeds); ``info["mu"]`` is its last value. No per-draw
statistics (NumPyro keeps the ensemble's, not each walker's)."""
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
)
from inference.registry import register_method

WALKERS_PER_DIM = 4
# name -> ESS's move
MOVES = {"differential": "DifferentialMove", "gaussian": "GaussianMove", "kde": "KDEMove", "random": "RandomMove"}


def kernel(model, opts: dict):
    from numpyro.infer import ESS

    return ESS(model, randomize_split=opts["randomize_split"], moves=build_moves(ESS, MOVES, opts["moves"]),
               **library_keywords(opts))


def last_mu(last_state, samples: dict) -> dict:
    return {"mu": float(last_state.inner_state.mu)}


register_method(
    "ensemble_slice", family="mcmc", backends=NUMPYRO, takes="model", doc=__doc__,
    prepare=ensemble_prepare("ensemble_slice", WALKERS_PER_DIM), library=kernel_class("ESS"),
    options={**ensemble_options(2000, 2000, WALKERS_PER_DIM), **moves_option(MOVES, "differential")},
)(numpyro_runner(kernel, info=last_mu, chain_method="vectorized"))
