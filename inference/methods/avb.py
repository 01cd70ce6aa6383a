"""Adversarial variational Bayes (Mescheder et al. 2017): a model fitted together with an implicit
guide, whose log density ratio to the prior a discriminator T(x, z) estimates."""
from __future__ import annotations

from inference.methods import on_backends
from inference.options import (
    ADAPTIVE_CONTRAST,
    DISCRIMINATOR_LEARNING_RATE,
    FACTORY,
    LIKELIHOOD_FREE_OPTIONS,
    discriminator_steps,
    opt,
)
from inference.registry import register_method


def prepare(spec, backend: str, options: dict) -> None:
    if not spec.guide:
        raise ValueError(f"method 'avb' fits a model together with its own guide (an implicit one, say "
                         f"ppl_models.latent_gaussian.vae.implicit_vae_guide); {spec.name!r} has no guide")
    spec.guide_fn(backend)  # the model must have a guide for this backend, taking this data


register_method(
    "avb", family="vi", backends=("numpyro", "pyro"), takes="model", doc=__doc__, prepare=prepare,
    options={
        **{k: v for k, v in LIKELIHOOD_FREE_OPTIONS.items() if k != "num_samples"},  # latents: one per data point
        "discriminator": opt(None, "T(x, z), a network factory from a data point and its latent value "
                                   "(concatenated) to one logit (default: an MLP with two hidden layers of 128 "
                                   "ReLU units)", FACTORY),
        # T must keep up with q as q moves; with one update per step it lags and the guide follows a
        # stale ratio: on AVB's toy, 5 updates cut the total variation to the exact posterior by half
        # (benchmarks/RESULTS.md, "Implicit models against their ground truth")
        "discriminator_steps": discriminator_steps(5),
        "discriminator_learning_rate": DISCRIMINATOR_LEARNING_RATE,
        "adaptive_contrast": opt(0, "m >= 2: contrast q(z | x) with the Gaussian of its own mean and sd, estimated "
                                    "from m guide draws per data point, so that T(x, z) learns only how far q is "
                                    "from that Gaussian (Mescheder et al. 2017, adaptive contrast); 0: with the "
                                    "prior p(z)", ADAPTIVE_CONTRAST),
    },
)(on_backends(numpyro="inference.backends.numpyro_implicit:run", pyro="inference.backends.pyro_implicit:run"))
