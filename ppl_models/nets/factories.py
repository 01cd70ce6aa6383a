"""Backend-neutral descriptions of networks; the backend modules build them."""
from __future__ import annotations

import importlib
import zlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ppl_models.errors import UnknownChoiceError

ACTIVATIONS = ("tanh", "relu", "leaky_relu", "softplus")  # leaky_relu: slope 0.2 below 0, as in GAN discriminators
INPUTS = ("raw", "log1p")  # log1p: counts (hundreds in a long document) to O(1) before the first layer
# the raw output; split in half into loc and softplus(scale); softplus; sigmoid
HEADS = ("logits", "normal", "positive", "sigmoid")
_BUILDERS = {"pyro": "ppl_models.nets.torch_nets", "numpyro": "ppl_models.nets.equinox_nets"}
SEPARATOR = "$$$"  # pyro.module names a network's parameters <network>$$$<parameter>; NumPyro's are named alike


def param_name(network: str, parameter: str) -> str:
    """The name under which ``network``'s ``parameter`` is registered (``decoder$$$layers.0.weight``)."""
    return f"{network}{SEPARATOR}{parameter}"


def params_of(params: dict, network: str) -> dict:
    """The entries of ``params`` that belong to ``network``, keyed by the parameter's own name."""
    prefix = network + SEPARATOR
    return {k.removeprefix(prefix): v for k, v in params.items() if k.startswith(prefix)}


class NetworkFactory(Protocol):
    def build(self, backend: str, seed: int, dtype: str): ...


STATE_SUFFIX = "$state"  # NumPyro: a network's running statistics live in the mutable site "<network>$state"


def has_state(factory) -> bool:
    """Whether networks of ``factory`` keep running statistics (batch normalization): state that
    training updates besides the parameters, saved with them and used in eval mode."""
    return bool(getattr(factory, "batch_norm", False))


def has_modes(factory) -> bool:
    """Whether networks of ``factory`` compute differently in train mode and in eval mode
    (batch normalization, dropout). Networks run in eval mode unless inside ``nets.training()``."""
    return has_state(factory) or bool(getattr(factory, "dropout", 0.0))


def state_site(network: str) -> str:
    """The NumPyro mutable site holding ``network``'s running statistics."""
    return network + STATE_SUFFIX


def flatten_state(values: dict) -> dict:
    """``values`` with each NumPyro state site (``decoder$state``: {buffer: array}) spread into one
    entry per buffer, named as Pyro names a module's buffers in a result (``decoder$$$norm.running_mean``)."""
    out = {}
    for k, v in values.items():
        if k.endswith(STATE_SUFFIX) and isinstance(v, dict):
            out.update({param_name(k.removesuffix(STATE_SUFFIX), b): x for b, x in v.items()})
        else:
            out[k] = v
    return out


AFFINE = (False, True, "shift")  # none; a learned scale and shift per feature; a learned shift alone


def _check_affine(factory) -> None:
    if factory.affine not in AFFINE:
        raise ValueError(f"{type(factory).__name__}: affine={factory.affine!r} is not one of {AFFINE} (False: none; "
                         "True: a learned scale and shift after batch normalization; 'shift': a learned shift alone)")
    if factory.affine and not factory.batch_norm:
        raise ValueError(f"{type(factory).__name__}: affine={factory.affine!r} is batch normalization's scale and "
                         "shift, and batch_norm is False")


def _check_dropout(dropout, what: str) -> None:
    if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
        raise ValueError(f"{what} dropout must be a probability in [0, 1), not {dropout!r}")


def network_seed(seed: int, name: str) -> int:
    """A seed of its own for network ``name`` of a run with ``seed``."""
    return int(np.random.SeedSequence([seed, zlib.crc32(name.encode())]).generate_state(1)[0])


def _builder(backend: str, kind: str):
    if backend not in _BUILDERS:
        raise UnknownChoiceError("backend", backend, _BUILDERS)
    return getattr(importlib.import_module(_BUILDERS[backend]), kind)


@dataclass(frozen=True)
class MLP:
    """Fully connected layers ``sizes[0] -> ... -> sizes[-1]``, ``activation`` between them.

    ``head="normal"`` splits the output in half into (loc, softplus(raw)): the
    parameters of a diagonal Normal, as an amortized guide's encoder returns them.
    ``head="positive"`` returns softplus(raw): for example Dirichlet concentrations.
    ``head="sigmoid"`` returns values in (0, 1): for example grey levels of generated images.
    ``inputs="log1p"`` feeds log(1 + x) to the first layer, for counts.
    ``dropout=p`` zeroes each unit of the last hidden layer with probability p in train mode
    (scaling the others by 1 / (1 - p)); ``batch_norm=True`` normalizes the last layer's raw output
    (before the head) by batch statistics in train mode and by running statistics in eval mode,
    without affine parameters (ProdLDA's encoder, Srivastava & Sutton 2017) unless ``affine=True``
    (a learned scale and shift per feature after it) or ``affine="shift"`` (a learned shift alone).
    Both are the libraries' own layers (``torch.nn.Dropout``, ``BatchNorm1d``; Equinox's ``Dropout``, ``BatchNorm``).
    Called with several arrays, ``net(x, e)``, it takes their concatenation along the last axis:
    an implicit guide's encoder of data and noise, or a discriminator of (x, z) pairs.
    """

    sizes: tuple[int, ...]
    activation: str = "tanh"
    head: str = "logits"
    inputs: str = "raw"
    batch_norm: bool = False
    dropout: float = 0.0
    affine: bool | str = False

    def __post_init__(self):
        _check_dropout(self.dropout, "MLP")
        _check_affine(self)
        if self.dropout and len(self.sizes) < 3:
            raise ValueError(f"MLP dropout acts on the last hidden layer, and sizes {self.sizes} have none")
        if len(self.sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in self.sizes):
            raise ValueError(f"MLP sizes must be two or more positive integers, not {self.sizes}")
        if self.activation not in ACTIVATIONS:
            raise UnknownChoiceError("activation", self.activation, ACTIVATIONS)
        if self.head not in HEADS:
            raise UnknownChoiceError("network head", self.head, HEADS)
        if self.inputs not in INPUTS:
            raise UnknownChoiceError("network inputs", self.inputs, INPUTS)
        if self.head == "normal" and self.sizes[-1] % 2:
            raise ValueError(f"an MLP with a normal head needs an even output size (loc and scale), not {self.sizes}")

    @property
    def in_features(self) -> int:
        return self.sizes[0]

    @property
    def out_features(self) -> int:
        return self.sizes[-1] // 2 if self.head == "normal" else self.sizes[-1]

    def build(self, backend: str, seed: int, dtype: str):
        return _builder(backend, "MLP")(self.sizes, self.activation, self.head, self.inputs, self.batch_norm,
                                        self.dropout, self.affine, seed=seed, dtype=dtype)


@dataclass(frozen=True)
class ConvDecoder:
    """A convolutional decoder to 28 x 28 images: ``latent -> 32 x 7 x 7`` (linear), then twice
    (nearest-neighbour upsampling x2, 3 x 3 convolution), to one channel of logits, flattened."""

    latent_dim: int
    channels: tuple[int, int] = (32, 16)
    activation: str = "tanh"

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise UnknownChoiceError("activation", self.activation, ACTIVATIONS)

    @property
    def in_features(self) -> int:
        return self.latent_dim

    @property
    def out_features(self) -> int:
        return 28 * 28

    def build(self, backend: str, seed: int, dtype: str):
        return _builder(backend, "ConvDecoder")(self.latent_dim, self.channels, self.activation, seed=seed,
                                                dtype=dtype)


@dataclass(frozen=True)
class ProductOfExperts:
    """ProdLDA's decoder (Srivastava & Sutton 2017): unnormalized topic proportions h (``num_topics``)
    -> word logits ``softmax(h) @ topics.weight.T + topics.bias`` (``vocab_size``). Each topic is an
    expert voting on every word, so the word distribution is a normalized product of experts, not a
    mixture; row k of ``topics.weight.T`` is topic k's word weights.

    As in the paper's network: ``dropout=p`` drops topic proportions softmax(h) with probability p in
    train mode, and ``batch_norm=True`` normalizes the word logits (running statistics in eval mode),
    which keeps topics from collapsing into copies of one; ``affine=True`` learns a scale and a
    shift per word after it (the shift carries each word's overall frequency, which normalization
    alone takes out of the logits), ``affine="shift"`` the shift alone (the paper's TensorFlow layer,
    ``batch_norm(center=True, scale=False)``: every word's logit keeps the same spread over documents)."""

    num_topics: int
    vocab_size: int
    batch_norm: bool = False
    dropout: float = 0.0
    affine: bool | str = False

    def __post_init__(self):
        _check_dropout(self.dropout, "ProductOfExperts")
        _check_affine(self)

    @property
    def in_features(self) -> int:
        return self.num_topics

    @property
    def out_features(self) -> int:
        return self.vocab_size

    def build(self, backend: str, seed: int, dtype: str):
        return _builder(backend, "ProductOfExperts")(self.num_topics, self.vocab_size, self.batch_norm, self.dropout,
                                                     self.affine, seed=seed, dtype=dtype)
