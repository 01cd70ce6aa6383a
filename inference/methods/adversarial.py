"""Adversarial training of an implicit model (Goodfellow et al. 2014): a discriminator tells data
from generated points, and the generator learns to fool it; the likelihood is never evaluated."""
from __future__ import annotations

import numbers

from inference.discrepancies import GENERATOR_LOSSES
from inference.methods import on_backends
from inference.options import FACTORY, LIKELIHOOD_FREE_OPTIONS, discriminator_steps, one_of, opt
from inference.registry import register_method

register_method(
    "adversarial", family="likelihood_free", backends=("numpyro", "pyro"), takes="model", doc=__doc__,
    options={
        **LIKELIHOOD_FREE_OPTIONS,
        "discriminator": opt(None, "the discriminator, a network factory from data to one logit (default: an "
                                   "MLP with two hidden layers of 128 ReLU units)", FACTORY),
        "generator_loss": opt("non_saturating", "non_saturating (-log D(G(z))) or minimax (log(1 - D(G(z))))",
                              one_of(*GENERATOR_LOSSES)),
        "label_smoothing": opt(0.0, "one-sided label smoothing: data are labelled 1 - label_smoothing",
                               (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1,
                                "a number in [0, 1)")),
        "discriminator_steps": discriminator_steps(1),
    },
)(on_backends(numpyro="inference.backends.numpyro_implicit:run", pyro="inference.backends.pyro_implicit:run"))
