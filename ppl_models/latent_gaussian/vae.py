"""Variational autoencoder (Kingma & Welling 2014) on MNIST, with injected networks.

Generative story: for each image n, a code z_n ~ Normal(0, I_L), and pixels
x_n | z_n ~ Bernoulli(logits = decoder(z_n)), independently. The amortized guide is
q(z_n | x_n) = Normal(loc, diag(scale^2)) with (loc, scale) = encoder(x_n).

The model and guide say only that. The decoder and encoder are built by factories
(``ppl_models.nets``) for each run and passed in by name, so swapping an MLP decoder
for a convolutional one changes no line here. Both are written over a minibatch:
the plate's size is the full data size ``num_data``, so a batch's log density is
scaled by num_data / batch size.

Data (``<data dir>/mnist``), as in the IWAE paper (Burda et al. 2016): training on
the 60000 images of the classic train and validation splits, testing on the 10000
test images, in a fixed random order (numpy seed 0), so that the first ``num_images``
are a random subset (the static binarization's test file is sorted by digit).

- ``mnist-vae``: dynamic binarization. Training draws every pixel of every minibatch
  afresh as Bernoulli(grey / 255). Whatever sees the data whole (the model contract,
  importance sampling) gets one fixed binarization (numpy seed 0; the test split too).
- ``binarized_mnist-vae``: Larochelle & Murray's static binarization.
- ``mnist-vae_implicit``: the same model with an implicit guide, z_n = encoder(x_n, e_n) with
  noise e_n ~ Normal(0, I), fitted by adversarial variational Bayes (``method="avb"``).
"""
from __future__ import annotations

import functools

import numpy as np

from ppl_models.data.mnist import load_binarized_mnist, load_mnist, test_order
from ppl_models.errors import UnknownChoiceError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.nets import MLP, ConvDecoder
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

DATASETS = ("mnist", "binarized_mnist")
SPLITS = ("train", "test")
HIDDEN = (200, 200)
LATENT_DIM = 50
HELD_OUT_IMAGES = 1000  # test images a fit is scored on (inference.held_out)
BINARIZATION_SEED = 0


def vae(x, num_data, latent_dim, decoder):
    """z_n ~ Normal(0, I), x_n ~ Bernoulli(logits = decoder(z_n)) for each image in the minibatch."""
    decode = pyro.module("decoder", decoder)
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        z = pyro.sample("z", dist.Normal(0.0, 1.0).expand([latent_dim]).to_event(1))
        logits = decode(z)
        _check_output("decoder", logits.shape, x.shape)
        pyro.sample("x", dist.Bernoulli(logits=logits).to_event(1), obs=x)


def vae_guide(x, num_data, latent_dim, encoder):
    """q(z_n | x_n) = Normal(encoder(x_n)) for each image in the minibatch."""
    encode = pyro.module("encoder", encoder)
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        loc, scale = encode(x)
        _check_output("encoder", loc.shape, (*x.shape[:-1], latent_dim))
        pyro.sample("z", dist.Normal(loc, scale).to_event(1))


def implicit_vae_guide(x, num_data, latent_dim, encoder):
    """e_n ~ Normal(0, I) (auxiliary noise), z_n = encoder(x_n, e_n): an implicit q(z_n | x_n), as
    flexible as the encoder, with no density (Mescheder et al. 2017); fitted by ``method="avb"``."""
    encode = pyro.module("encoder", encoder)
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        e = pyro.sample("e", dist.Normal(0.0, 1.0).expand([latent_dim]).to_event(1), infer={"is_auxiliary": True})
        z = encode(x, e)
        _check_output("encoder", z.shape, (*x.shape[:-1], latent_dim))
        pyro.sample("z", dist.Delta(z, event_dim=1))


def _check_output(role: str, got: tuple, want: tuple) -> None:
    """A network's output must end in the size its site needs (leading particle dims may precede)."""
    if tuple(got[-1:]) != tuple(want[-1:]):
        raise ValueError(f"the {role} returned shape {tuple(got)}, but the data need {want[-1]} values per image "
                         f"(shape {tuple(want)}); check the {role} network's output size")


DECODERS = {"mlp": lambda latent, pixels: MLP((latent, *HIDDEN, pixels)),
            "conv": lambda latent, pixels: ConvDecoder(latent)}
ENCODERS = {"mlp": lambda pixels, latent: MLP((pixels, *HIDDEN, 2 * latent), head="normal"),
            "implicit": lambda pixels, latent: MLP((pixels + latent, *HIDDEN, latent))}
GUIDES = {"gaussian": (vae_guide, "mlp"), "implicit": (implicit_vae_guide, "implicit")}


def load_images(data: str, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """0/1 images (float32) of one split, and for ``mnist`` the grey levels they were drawn from;
    the test split in a fixed random order (``ppl_models.data.mnist.test_order``), binarized before it is shuffled."""
    if data not in DATASETS:
        raise UnknownChoiceError("VAE data set", data, DATASETS)
    if split not in SPLITS:
        raise UnknownChoiceError("VAE split", split, SPLITS)
    parts = ("train", "valid") if split == "train" else ("test",)
    if data == "binarized_mnist":
        x, grey = np.concatenate([load_binarized_mnist(p) for p in parts]).astype(np.float32), None
    else:
        grey = np.concatenate([load_mnist(p)[0] for p in parts])
        rng = np.random.default_rng(BINARIZATION_SEED)
        x = (rng.random(grey.shape) < grey / 255.0).astype(np.float32)
    if split == "test":
        order = test_order(len(x))
        x, grey = x[order], None if grey is None else grey[order]
    return x, grey


def _network(table: dict, role: str, choice, *sizes):
    if isinstance(choice, str):
        if choice not in table:
            raise UnknownChoiceError(role, choice, table)
        return table[choice](*sizes)
    return choice


def _check_sizes(role: str, net, n_in: int, n_out: int) -> None:
    """Factories that state their sizes are checked against the data before anything runs."""
    got = (getattr(net, "in_features", n_in), getattr(net, "out_features", n_out))
    if got != (n_in, n_out):
        raise ValueError(f"the {role} maps {got[0]} -> {got[1]} values, but this VAE needs {n_in} -> {n_out}")


def vae_spec(data: str = "mnist", split: str = "train", *, decoder="mlp", encoder=None, guide: str = "gaussian",
             latent_dim: int = LATENT_DIM, num_images: int | None = None, name: str | None = None) -> ModelSpec:
    """A VAE spec on one split of MNIST.

    ``decoder`` and ``encoder`` are a name (``"mlp"``, or ``"conv"`` for the decoder) or a
    network factory from ``ppl_models.nets``. ``guide="implicit"`` pairs the same model with
    ``implicit_vae_guide``, whose encoder takes an image and noise (default: an MLP). ``num_images``
    keeps the first images only (of the test split: a fixed random subset).
    """
    if guide not in GUIDES:
        raise UnknownChoiceError("VAE guide", guide, GUIDES)
    guide_fn, default_encoder = GUIDES[guide]
    x, grey = load_images(data, split)
    if num_images is not None:
        x, grey = x[:num_images], None if grey is None else grey[:num_images]
    pixels = x.shape[1]
    dec = _network(DECODERS, "decoder", decoder, latent_dim, pixels)
    enc = _network(ENCODERS, "encoder", encoder or default_encoder, pixels, latent_dim)
    _check_sizes("decoder", dec, latent_dim, pixels)
    _check_sizes("encoder", enc, pixels + (latent_dim if guide == "implicit" else 0), latent_dim)
    return ModelSpec(
        name=name or f"{data}-vae",
        data={"x": x, "num_data": x.shape[0], "latent_dim": latent_dim},
        model=for_backends(vae),
        guide=for_backends(guide_fn),
        networks={"decoder": dec, "encoder": enc},
        minibatch=Minibatch(keys=("x",), binarize={"x": grey} if grey is not None and split == "train" else {}),
        data_dims={"x": ("num_data", pixels)},
        data_support={"x": "binary"},
        dtype="float32",
        description=__doc__.split("\n\n")[1],
        held_out=HeldOut("likelihood", functools.partial(
            vae_spec, data, "test", decoder=decoder, encoder=encoder, guide=guide, latent_dim=latent_dim,
            num_images=HELD_OUT_IMAGES)) if split == "train" and guide == "gaussian" else None,
    )


_VAE = dict(backends=BACKENDS, reference="")
register_model("mnist-vae", **_VAE, description="VAE on MNIST, dynamic binarization")(lambda: vae_spec("mnist"))
register_model("binarized_mnist-vae", **_VAE, description="VAE on statically binarized MNIST")(
    lambda: vae_spec("binarized_mnist"))
register_model("mnist-vae_implicit", **_VAE, description="VAE on MNIST with an implicit guide (AVB)")(
    lambda: vae_spec("mnist", guide="implicit", name="mnist-vae_implicit"))
