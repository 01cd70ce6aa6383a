"""Implicit generators: data as a deterministic transformation of noise, with no likelihood.

Generative story of ``implicit_generator``: for each data point n, noise z_n ~ Normal(0, I_L) and
x_n = G(z_n). Of ``deep_implicit``, noise injected at two layers: z_n ~ Normal(0, I_L),
e_n ~ Normal(0, I_H) and x_n = G_upper(G_lower(z_n) + e_n), so the hidden features are random
given z_n (Tran, Ranganath & Blei 2017's deep implicit model).

The data site is a point mass at the generator's output, ``Delta(G(z))``: it can be sampled, and
sampled with a gradient, but its density says nothing about how near the data are, so the specs
declare ``likelihood=False``. Likelihood-based methods refuse them; ``adversarial`` and ``mmd``
fit them by comparing generated points to data. The generators are injected networks.

- ``ring8-implicit``, ``ring8-deep_implicit``: 20000 points from a ring of eight Gaussians
  (``toys.RingOfGaussians``); the ground truth is the ring itself.
- ``mnist-implicit``: the 60000 training images of MNIST (train and validation splits), grey
  levels scaled to [0, 1], fitted by an MLP generator with a sigmoid output.
- ``linear_gaussian-implicit``: 20000 points of x = A z + b + noise in five dimensions
  (``toys.LinearGaussian``), fitted by a linear generator whose covariance W Wᵀ should approach
  the true A Aᵀ + sigma² I.
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.mnist import load_mnist, test_order
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.implicit.toys import LinearGaussian, RingOfGaussians
from ppl_models.nets import MLP
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

RING = RingOfGaussians()
LINEAR = LinearGaussian()
NUM_DATA = 20000
DATA_SEED = 0


def implicit_generator(x, num_data, latent_dim, generator):
    """z_n ~ Normal(0, I), x_n = generator(z_n) for each point of the minibatch."""
    generate = pyro.module("generator", generator)
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([latent_dim]).to_event(1))
        pyro.sample("x", dist.Delta(generate(z), event_dim=1), obs=x)


def deep_implicit(x, num_data, latent_dim, hidden_dim, lower, upper):
    """z_n ~ Normal(0, I), e_n ~ Normal(0, I), x_n = upper(lower(z_n) + e_n): noise at two layers."""
    lower_layers, upper_layers = pyro.module("lower", lower), pyro.module("upper", upper)
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([latent_dim]).to_event(1))
        e = pyro.sample("e", dist.Normal(0.0, 1.0).expand([hidden_dim]).to_event(1))
        pyro.sample("x", dist.Delta(upper_layers(lower_layers(z) + e), event_dim=1), obs=x)


def implicit_spec(name: str, x: np.ndarray, generator, latent_dim: int, description: str = "",
                  held_out: np.ndarray | None = None) -> ModelSpec:
    """An ``implicit_generator`` spec on data ``x`` (n, d), with the ``generator`` network factory;
    fits are scored against the test points ``held_out`` (``inference.held_out``), if given."""
    return ModelSpec(
        name=name, data={"x": x, "num_data": x.shape[0], "latent_dim": latent_dim},
        model=for_backends(implicit_generator), networks={"generator": generator},
        minibatch=Minibatch(keys=("x",)), data_dims={"x": ("num_data", generator.out_features)},
        likelihood=False, dtype="float32", description=description or __doc__.split("\n\n")[1],
        held_out=None if held_out is None else HeldOut("samples", held_out),
    )


def deep_implicit_spec(name: str, x: np.ndarray, lower, upper, latent_dim: int,
                       held_out: np.ndarray | None = None) -> ModelSpec:
    """A ``deep_implicit`` spec on data ``x`` (n, d), with ``lower`` (latent -> hidden) and ``upper``
    (hidden -> d) network factories; fits are scored against the test points ``held_out``, if given."""
    if lower.out_features != upper.in_features:
        raise ValueError(f"the lower network gives {lower.out_features} features, but the upper one takes "
                         f"{upper.in_features}")
    return ModelSpec(
        name=name, data={"x": x, "num_data": x.shape[0], "latent_dim": latent_dim, "hidden_dim": lower.out_features},
        model=for_backends(deep_implicit), networks={"lower": lower, "upper": upper},
        minibatch=Minibatch(keys=("x",)), data_dims={"x": ("num_data", upper.out_features)},
        likelihood=False, dtype="float32", description=__doc__.split("\n\n")[1],
        held_out=None if held_out is None else HeldOut("samples", held_out),
    )


RING_LATENT = 2
NUM_HELD_OUT, HELD_OUT_SEED = 2000, 1  # fresh draws of the true distribution, to score fits on
_IMPLICIT = dict(backends=BACKENDS, reference="")
register_model("ring8-implicit", **_IMPLICIT,
               description="implicit generator, ring of eight Gaussians")(lambda: implicit_spec(
    "ring8-implicit", RING.sample(NUM_DATA, DATA_SEED), MLP((RING_LATENT, 128, 128, 2), "relu"), RING_LATENT,
    held_out=RING.sample(NUM_HELD_OUT, HELD_OUT_SEED)))
register_model("ring8-deep_implicit", **_IMPLICIT,
               description="two-layer implicit generator, ring of eight Gaussians")(lambda: deep_implicit_spec(
    "ring8-deep_implicit", RING.sample(NUM_DATA, DATA_SEED), MLP((RING_LATENT, 128, 16), "relu"),
    MLP((16, 128, 2), "relu"), RING_LATENT, held_out=RING.sample(NUM_HELD_OUT, HELD_OUT_SEED)))
# x = W z + c with z of the data's dimension: a linear generator can take any Gaussian's covariance
register_model("linear_gaussian-implicit", **_IMPLICIT,
               description="linear implicit generator, a Gaussian")(lambda: implicit_spec(
    "linear_gaussian-implicit", LINEAR.sample(NUM_DATA, DATA_SEED), MLP((LINEAR.dim, LINEAR.dim)), LINEAR.dim,
    held_out=LINEAR.sample(NUM_HELD_OUT, HELD_OUT_SEED)))


def mnist_images(split: str = "train") -> np.ndarray:
    """MNIST grey levels in [0, 1] (float32): ``train`` (train and validation splits, 60000) or ``test``."""
    parts = ("train", "valid") if split == "train" else (split,)
    return np.concatenate([load_mnist(p)[0] for p in parts]).astype(np.float32) / 255.0


MNIST_LATENT = 64
register_model("mnist-implicit", **_IMPLICIT, description="implicit generator of MNIST digits")(lambda: implicit_spec(
    "mnist-implicit", mnist_images("train"), MLP((MNIST_LATENT, 256, 512, 784), "relu", head="sigmoid"), MNIST_LATENT,
    held_out=mnist_images("test")[test_order()[:NUM_HELD_OUT]]))
