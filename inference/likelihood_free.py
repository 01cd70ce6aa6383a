"""What the likelihood-free backends share: which site is the data (and, for AVB, the latent),
the default discriminator, and the names of the loss columns.

A likelihood-free method fits a model by its samples alone. It runs the model with its data
site unobserved, so that the site draws generated points G(z) (with a gradient, through a
reparameterized sampler such as ``Delta``), and compares them with minibatches of the data:
through a discriminator (``adversarial``) or a kernel discrepancy (``mmd``,
``inference.discrepancies``). Adversarial variational Bayes (``avb``) fits a model that has a
likelihood with an implicit guide, whose density is replaced by a discriminator's estimate of
log q(z | x) - log p(z).
"""
from __future__ import annotations

import numpy as np

from ppl_models.errors import DataError
from ppl_models.nets import MLP

LOSS_NAMES = {"adversarial": ("discriminator", "generator"), "mmd": ("mmd2",),
              "avb": ("discriminator", "negative_elbo")}
DISCRIMINATOR = "discriminator"


def data_site(spec, observed: dict) -> str:
    """The model's one observed site: the data that generated points are compared with."""
    keys = spec.minibatch.keys if spec.minibatch is not None else ()
    sites = [name for name in observed if name in keys]
    if len(observed) != 1 or len(sites) != 1:
        raise DataError(f"likelihood-free methods compare generated points with one data set: {spec.name!r} "
                        f"must have one observed site that is a minibatch key; it observes {sorted(observed)} "
                        f"and its minibatch keys are {list(keys)}")
    return sites[0]


def latent_site(spec, latent: dict) -> str:
    """The model's one latent site, which an implicit guide draws and the discriminator of AVB sees."""
    if len(latent) != 1:
        raise DataError(f"method 'avb' takes a model with one latent site (the discriminator sees (x, z)); "
                        f"{spec.name!r} has {sorted(latent)}")
    return next(iter(latent))


def check_reparameterized(spec, site: str, fn, has_rsample: bool) -> None:
    """Generated points must carry a gradient back to the generator's parameters."""
    if not has_rsample:
        while hasattr(fn, "base_dist"):  # Independent, Masked, ...: name the distribution inside
            fn = fn.base_dist
        raise ValueError(f"the data site {site!r} of {spec.name!r} is drawn from {type(fn).__name__}, which has no "
                         "reparameterized sampler, so no gradient reaches the generator; likelihood-free methods "
                         "need a site such as Delta(generator(z)) or Normal(generator(z), sd)")


def discriminator_input_size(spec, sites, site: str, method: str) -> int:
    """What the discriminator sees: a data point, and for avb its latent value too (flattened)."""
    size = int(np.prod(np.shape(sites.observed[site])[1:]))
    if method == "avb":
        size += int(np.prod(sites.latent[latent_site(spec, sites.latent)][1:]))
    return size


def discriminator_factory(factory, input_size: int):
    """The discriminator asked for, or two hidden layers of 128 ReLU units; one logit out. It takes a
    data point, or for AVB a data point and a latent value, concatenated: ``input_size`` values."""
    if factory is None:
        return MLP((input_size, 128, 128, 1), activation="relu")
    sizes = (getattr(factory, "in_features", input_size), getattr(factory, "out_features", 1))
    if sizes != (input_size, 1):
        raise ValueError(f"the discriminator maps {sizes[0]} -> {sizes[1]} values; it must take {input_size} "
                         "values (a data point, and for avb its latent value too) to one logit")
    return factory


def adaptive_contrast(z, xp):
    """AVB's adaptive contrast (Mescheder et al. 2017, section 3.3), from m >= 2 guide draws ``z`` per
    data point, shaped (m, B, D). The contrast r(z | x_b) is the Gaussian with q(z | x_b)'s mean and sd,
    estimated from the draws. Since

        log q(z | x) - log p(z) = [log r(z | x) - log p(z)] + [log q~(z~ | x) - log N(z~; 0, I)],

    with z~ = (z - mean) / sd (the Jacobians of the standardization cancel), the first term is exact and
    the discriminator estimates only the second, between standardized draws and N(0, I): a ratio near 0
    when q is near Gaussian, where plain AVB asks it for log q - log p, about 100 nats in 50 dimensions.
    Returns z~ (m, B, D) and log r(z | x_b) per draw (m, B); gradients flow through the mean and sd."""
    m = z.shape[0]
    mean = z.mean(0)
    sd = xp.sqrt(((z - mean) ** 2).sum(0) / (m - 1))
    standardized = (z - mean) / sd
    log_r = -xp.log(sd).sum(-1) - 0.5 * (standardized ** 2).sum(-1) - 0.5 * z.shape[-1] * np.log(2 * np.pi)
    return standardized, log_r
