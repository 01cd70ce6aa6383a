"""Factories of networks that are densities' building blocks: MADE's masked autoencoder and RealNVP's
coupling flow. Like every factory they hold only sizes and choices; ``build(backend, seed, dtype)``
makes a ``torch.nn.Module`` (``density_torch``) or an Equinox module (``density_equinox``) with the
same parameter names and shapes, so that weights fitted on one backend load into the other.

``MADE`` (Germain et al. 2015): an MLP whose weights are multiplied by binary masks so that output d
depends only on the inputs before d in an ordering. Each unit k of hidden layer l gets a degree
m_l(k) in [min m_(l-1), D - 1]; a hidden connection k' -> k is kept when m_l(k) >= m_(l-1)(k'), an
output connection k -> d when order(d) > m_L(k), where order(d) in 1..D is input d's place in the
ordering. The masks are drawn here, from ``mask_seed``, not from the build's seed: they are part of
the model, the same on both backends and in every run. With ``num_masks`` = K > 1 the network returns
K sets of logits (shape ``(..., K, D)``), one per mask, each mask with its own hidden degrees and,
with ``order="random"``, its own ordering of the inputs (order-agnostic training).

``RealNVP`` (Dinh et al. 2017): ``num_couplings`` affine coupling layers, each followed by a reversal of
the coordinates. Coupling i keeps the first ``dim // 2`` coordinates and moves the others,
y2 = exp(log_scale(y1)) * x2 + mean(y1), the conditioner an MLP of y1. The built network gives the
backend's own transforms (``transforms()``): Pyro's ``AffineCoupling`` and ``Permute``; on NumPyro,
an ``AffineCoupling`` written to match Pyro's (log-scale clipped to [-5, 3] in value, not in gradient)
and NumPyro's ``PermuteTransform``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

import numpy as np

from ppl_models.errors import UnknownChoiceError

ACTIVATIONS = ("tanh", "relu", "softplus")
ORDERS = ("natural", "random")
_BUILDERS = {"pyro": "ppl_models.nets.density_torch", "numpyro": "ppl_models.nets.density_equinox"}


def _builder(backend: str, kind: str):
    if backend not in _BUILDERS:
        raise UnknownChoiceError("backend", backend, _BUILDERS)
    return getattr(importlib.import_module(_BUILDERS[backend]), kind)


def _check_sizes(kind: str, sizes, first: str) -> None:
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        raise ValueError(f"{kind} sizes must be positive integers, not {tuple(sizes)} ({first})")


@dataclass(frozen=True)
class MADE:
    """A masked autoencoder for distribution estimation on ``dim`` binary inputs: ``dim -> hidden ->
    dim`` logits, logit d a function of the inputs before d in the ordering only."""

    dim: int
    hidden: tuple[int, ...] = (500,)
    num_masks: int = 1
    order: str = "natural"
    activation: str = "relu"
    mask_seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        _check_sizes("MADE", (self.dim, *self.hidden), "the input size, then the hidden layers'")
        if self.dim < 2:
            raise ValueError(f"MADE needs at least 2 inputs, not dim={self.dim}")
        if not self.hidden:
            raise ValueError("MADE needs at least one hidden layer")
        if not isinstance(self.num_masks, int) or self.num_masks < 1:
            raise ValueError(f"num_masks must be an integer >= 1, not {self.num_masks!r}")
        if self.order not in ORDERS:
            raise UnknownChoiceError("MADE input order", self.order, ORDERS)
        if self.activation not in ACTIVATIONS:
            raise UnknownChoiceError("activation", self.activation, ACTIVATIONS)

    @property
    def in_features(self) -> int:
        return self.dim

    @property
    def out_features(self) -> int:
        return self.dim

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.dim, *self.hidden, self.dim)

    def orders(self) -> np.ndarray:
        """``(num_masks, dim)``: input d's place (1..dim) in the ordering of each mask."""
        rng = np.random.default_rng([self.mask_seed, 1])
        natural = np.arange(1, self.dim + 1)
        return np.stack([natural if self.order == "natural" else rng.permutation(natural)
                         for _ in range(self.num_masks)])

    def masks(self) -> list[list[np.ndarray]]:
        """For each mask, one 0/1 array per layer, shaped as that layer's weight ``(out, in)``."""
        rng = np.random.default_rng([self.mask_seed, 2])
        out = []
        for order in self.orders():
            degrees, layers = [order], []
            for width in self.hidden:
                low = min(int(degrees[-1].min()), self.dim - 1)
                degrees.append(rng.integers(low, self.dim, size=width))  # in [low, dim - 1]
                layers.append((degrees[-1][:, None] >= degrees[-2][None, :]).astype(np.uint8))
            layers.append((order[:, None] > degrees[-1][None, :]).astype(np.uint8))
            out.append(layers)
        return out

    def build(self, backend: str, seed: int, dtype: str):
        return _builder(backend, "MADE")(self.sizes, self.masks(), self.activation, seed=seed, dtype=dtype)


@dataclass(frozen=True)
class RealNVP:
    """``num_couplings`` affine couplings on ``dim`` coordinates, each conditioner an MLP
    ``dim // 2 -> hidden -> 2 * (dim - dim // 2)`` (mean, then log-scale), a reversal after each.
    ``zero_init=True`` starts each conditioner's last layer at zero, so that the flow starts as the
    identity (as Glow's zero-initialized last layers, Kingma & Dhariwal 2018): in hundreds of dimensions
    six random couplings can scale a point by e^5 each, and the first losses overflow."""

    dim: int = 2
    hidden: tuple[int, ...] = (64, 64)
    num_couplings: int = 6
    activation: str = "relu"
    zero_init: bool = False

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        _check_sizes("RealNVP", (self.dim, *self.hidden), "the data's dimension, then the hidden layers'")
        if self.dim < 2:
            raise ValueError(f"a coupling flow needs at least 2 dimensions, not dim={self.dim}")
        if not isinstance(self.num_couplings, int) or self.num_couplings < 1:
            raise ValueError(f"num_couplings must be an integer >= 1, not {self.num_couplings!r}")
        if self.activation not in ACTIVATIONS:
            raise UnknownChoiceError("activation", self.activation, ACTIVATIONS)

    @property
    def in_features(self) -> int:
        return self.dim

    @property
    def out_features(self) -> int:
        return self.dim

    @property
    def split_dim(self) -> int:
        return self.dim // 2

    def conditioner_sizes(self) -> tuple[int, ...]:
        return (self.split_dim, *self.hidden, 2 * (self.dim - self.split_dim))

    def build(self, backend: str, seed: int, dtype: str):
        return _builder(backend, "RealNVP")(self.dim, self.conditioner_sizes(), self.num_couplings, self.activation,
                                            self.zero_init, seed=seed, dtype=dtype)
