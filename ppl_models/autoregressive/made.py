"""MADE: a masked autoencoder for distribution estimation (Germain, Gregor, Murray & Larochelle 2015).

Generative story: the pixels of image n are drawn one after the other in an ordering,
x_nd ~ Bernoulli(logits_d(x_n,<d)), where logits_d is output d of a masked network that sees only the
pixels before d. The masks (``ppl_models.nets.MADE``) make the product of the conditionals a
normalized density, p(x_n) = prod_d Bernoulli(x_nd | logits_d(x_n)), exact in one pass. With K masks
(``num_masks``; each its own hidden connectivity and, with ``order="random"``, its own ordering) the
model is the uniform mixture of the K autoregressive densities, p(x_n) = 1/K sum_k p_k(x_n): the
paper's ensemble over masks, here trained as one exact density rather than one sampled mask per step.

Nothing is latent: the network's weights are the only unknowns, and fitting them is maximum
likelihood, ``method="svi"`` with ``guide=None``. The held-out negative log-likelihood is exact
(``HeldOut("exact_likelihood")``): no importance sampling, no estimator error.

Data: Larochelle & Murray's statically binarized MNIST, as in the paper: ``binarized_mnist-made``
trains on the 50000 training images and is scored on the 10000 test images.
"""
from __future__ import annotations

import functools

import numpy as np

from ppl_models.data.mnist import load_binarized_mnist
from ppl_models.errors import UnknownChoiceError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.nets.density import MADE
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

SPLITS = ("train", "valid", "test")
HIDDEN = (500,)  # the paper's one-hidden-layer MADE


def made_model(x, num_data, made):
    """x_n ~ prod_d Bernoulli(logits_d(x_n,<d)) (or the uniform mixture over the network's masks) for
    each image in the minibatch."""
    logits_of = pyro.module("made", made)
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        logits = logits_of(x)
        if tuple(logits.shape[-1:]) != tuple(x.shape[-1:]):
            raise ValueError(f"the MADE network returned {logits.shape[-1]} logits per image, but the data have "
                             f"{x.shape[-1]} values per image")
        pixels = dist.Bernoulli(logits=logits).to_event(1)
        if logits.ndim > x.ndim:  # (..., K, D): one set of logits per mask, mixed uniformly
            pixels = dist.MixtureSameFamily(dist.Categorical(logits=logits[..., 0] * 0.0), pixels)
        pyro.sample("x", pixels, obs=x)


def check_network(network, dim: int) -> None:
    """A network's masks must be for the data's dimension."""
    n_in, n_out = getattr(network, "in_features", dim), getattr(network, "out_features", dim)
    if (n_in, n_out) != (dim, dim):
        raise ValueError(f"the MADE network's masks are for {n_in} inputs and {n_out} outputs, but the data have "
                         f"{dim} values per image")


def made_spec(split: str = "train", *, network=None, num_images: int | None = None,
              name: str = "binarized_mnist-made") -> ModelSpec:
    """MADE on one split of statically binarized MNIST. ``network``: a ``ppl_models.nets.MADE``
    (default: one hidden layer of 500 units, one mask, the natural pixel order) or another factory
    of the same sizes; ``num_images`` keeps the first images only."""
    if split not in SPLITS:
        raise UnknownChoiceError("MADE split", split, SPLITS)
    x = load_binarized_mnist(split).astype(np.float32)
    if num_images is not None:
        x = x[:num_images]
    network = network if network is not None else MADE(x.shape[1], HIDDEN)
    check_network(network, x.shape[1])
    return ModelSpec(
        name=name,
        data={"x": x, "num_data": x.shape[0]},
        model=for_backends(made_model),
        networks={"made": network},
        minibatch=Minibatch(keys=("x",)),
        data_dims={"x": ("num_data", x.shape[1])},
        data_support={"x": "binary"},
        dtype="float32",
        description=__doc__.split("\n\n")[1],
        held_out=HeldOut("exact_likelihood", functools.partial(made_spec, "test", network=network, name=name))
        if split == "train" else None,
    )


register_model("binarized_mnist-made", backends=BACKENDS, reference="",
               description="MADE on statically binarized MNIST (exact likelihood)")(lambda: made_spec("train"))
