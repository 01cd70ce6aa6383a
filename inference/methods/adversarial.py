"""Adversarial training of an implicit model (Goodfellow et al. 2014): a discriminator tells data
from generated points, and the generator learns to fool it; the likelihood is never evaluated.

What keeps the generator's modes: a gradient penalty on the discriminator, R1 by default
(Mescheder, Geiger & Nowozin 2018), or WGAN-GP with the Wasserstein loss (Gulrajani et al. 2017);
a discriminator step size of its own (two time-scale updates, Heusel et al. 2017); and a moving
average of the generator's weights (Yazıcı et al. 2019), which the fitted generator takes: the
last iterate of the game circles its equilibrium, and on the ring of eight the clusters it drew
sat 0.03-0.1 off their modes' centres (1.5-5 sd) while the points' angles covered all eight."""
from __future__ import annotations

import numbers

from inference.discrepancies import CROSS_ENTROPY_LOSSES, GENERATOR_LOSSES, GRADIENT_PENALTIES, PENALTY_WEIGHTS
from inference.methods import on_backends
from inference.options import (
    DISCRIMINATOR_LEARNING_RATE,
    FACTORY,
    LIKELIHOOD_FREE_OPTIONS,
    discriminator_steps,
    one_of,
    opt,
    or_none,
    positive,
)
from inference.registry import register_method


def check(backend: str, options: dict) -> None:
    """Refuse the options that do not apply to the chosen loss or penalty, saying why."""
    loss, penalty = options["generator_loss"], options["gradient_penalty"]
    if loss not in CROSS_ENTROPY_LOSSES and options["label_smoothing"]:
        raise ValueError(f"option label_smoothing applies to the cross-entropy losses "
                         f"({', '.join(map(repr, CROSS_ENTROPY_LOSSES))}), not generator_loss={loss!r}: "
                         f"its critic has no labels to smooth")
    if loss == "wasserstein" and penalty is None:
        raise ValueError("generator_loss='wasserstein' needs a gradient_penalty ('wgan_gp' or 'r1'): without one "
                         "nothing keeps the critic Lipschitz, and its loss is unbounded")
    if penalty is None and options["penalty_weight"] is not None:
        raise ValueError("option penalty_weight goes with a gradient_penalty; gradient_penalty=None has none")


register_method(
    "adversarial", family="likelihood_free", backends=("numpyro", "pyro"), takes="model", doc=__doc__, check=check,
    options={
        **LIKELIHOOD_FREE_OPTIONS,
        "discriminator": opt(None, "the discriminator, a network factory from data to one logit (default: an "
                                   "MLP with two hidden layers of 128 ReLU units)", FACTORY),
        "generator_loss": opt("non_saturating", "non_saturating (-log D(G(z))), minimax (log(1 - D(G(z)))) or "
                                                "wasserstein (-critic(G(z)); the discriminator is then a critic, "
                                                "Arjovsky et al. 2017)", one_of(*GENERATOR_LOSSES)),
        "label_smoothing": opt(0.0, "one-sided label smoothing: data are labelled 1 - label_smoothing (the "
                                    "cross-entropy losses only)",
                               (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v < 1,
                                "a number in [0, 1)")),
        "gradient_penalty": opt("r1", "r1 (gamma/2 E_data ||grad D(x)||², Mescheder et al. 2018), wgan_gp "
                                      "(lambda E (||grad D(x^)|| - 1)² between data and generated points, "
                                      "Gulrajani et al. 2017) or None", one_of(*GRADIENT_PENALTIES, None)),
        "penalty_weight": opt(None, "the gradient penalty's gamma or lambda (default: "
                                    + ", ".join(f"{k} {v:g}" for k, v in PENALTY_WEIGHTS.items())
                                    + "; R1 on images such as MNIST wants about 10)",
                              or_none(positive())),
        "discriminator_learning_rate": DISCRIMINATOR_LEARNING_RATE,
        "discriminator_steps": discriminator_steps(1),
        "generator_average": opt(0.999, "decay of the exponential moving average of the generator's weights, "
                                        "which the fitted generator takes (Yazıcı et al. 2019); 0: its last "
                                        "iterate", (lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool)
                                                    and 0 <= v < 1, "a number in [0, 1)")),
    },
)(on_backends(numpyro="inference.backends.numpyro_implicit:run", pyro="inference.backends.pyro_implicit:run"))
