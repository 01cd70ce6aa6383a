"""Equinox builds of ``ppl_models.nets.density`` (for NumPyro): MADE and RealNVP, with the parameter
names and shapes of ``density_torch`` and PyTorch's default initialization distributions.

MADE's masks are boolean arrays: ``named_parameters`` keeps inexact arrays only, so they are never
parameters. RealNVP's ``transforms()`` are NumPyro transforms: ``AffineCoupling`` below, written to
compute what Pyro's ``pyro.distributions.transforms.AffineCoupling`` does (NumPyro has none), and
NumPyro's ``PermuteTransform``.
"""
from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.distributions import constraints
from numpyro.distributions.transforms import PermuteTransform, Transform

from ppl_models.nets.equinox_nets import _ACTIVATIONS, Linear

LOG_SCALE_CLIP = (-5.0, 3.0)  # Pyro's AffineCoupling defaults


class _MADE(eqx.Module):
    layers: list[Linear]
    masks: list  # per mask, one boolean array per layer
    activation: str = eqx.field(static=True)

    def __call__(self, x):
        act, out = _ACTIVATIONS[self.activation], []
        for layer_masks in self.masks:
            h = x
            for i, (layer, mask) in enumerate(zip(self.layers, layer_masks, strict=True)):
                h = h @ (layer.weight * mask).T + layer.bias
                if i < len(self.layers) - 1:
                    h = act(h)
            out.append(h)
        return out[0] if len(out) == 1 else jnp.stack(out, axis=-2)


class _Conditioner(eqx.Module):
    layers: list[Linear]
    activation: str = eqx.field(static=True)

    def __call__(self, x):
        act = _ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        mean, log_scale = jnp.split(self.layers[-1](x), 2, axis=-1)
        return mean, log_scale


def _clamp_preserve_gradients(x, low: float, high: float):
    """``x`` clipped to [low, high] in value, with the gradient of the identity (as Pyro's helper)."""
    return x + jax.lax.stop_gradient(jnp.clip(x, low, high) - x)


class AffineCoupling(Transform):
    """y1 = x1, y2 = exp(log_scale) * x2 + mean, with (mean, log_scale) = conditioner(x1) and x1 the
    first ``split_dim`` coordinates: Pyro's ``AffineCoupling`` on the last dimension."""

    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, split_dim: int, conditioner):
        self.split_dim, self.conditioner = split_dim, conditioner
        self._cache = None  # (x, y, log_scale) of the last call, as Pyro caches it

    def _scale(self, x1):
        mean, log_scale = self.conditioner(x1)
        return mean, _clamp_preserve_gradients(log_scale, *LOG_SCALE_CLIP)

    def __call__(self, x):
        x1, x2 = x[..., :self.split_dim], x[..., self.split_dim:]
        mean, log_scale = self._scale(x1)
        y = jnp.concatenate([x1, jnp.exp(log_scale) * x2 + mean], axis=-1)
        self._cache = (x, y, log_scale)
        return y

    def _inverse(self, y):
        y1, y2 = y[..., :self.split_dim], y[..., self.split_dim:]
        mean, log_scale = self._scale(y1)
        x = jnp.concatenate([y1, (y2 - mean) * jnp.exp(-log_scale)], axis=-1)
        self._cache = (x, y, log_scale)
        return x

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        if self._cache is not None and self._cache[0] is x and self._cache[1] is y:
            log_scale = self._cache[2]
        else:
            log_scale = self._scale(x[..., :self.split_dim])[1]
        return log_scale.sum(-1)

    def tree_flatten(self):
        return (self.conditioner,), (("conditioner",), {"split_dim": self.split_dim})


class _RealNVP(eqx.Module):
    couplings: list[_Conditioner]
    dim: int = eqx.field(static=True)
    split_dim: int = eqx.field(static=True)

    def transforms(self) -> list:
        """z -> x as NumPyro transforms: each coupling, then a reversal of the coordinates."""
        reverse = np.arange(self.dim - 1, -1, -1)
        out = []
        for conditioner in self.couplings:
            out += [AffineCoupling(self.split_dim, conditioner), PermuteTransform(reverse)]
        return out

    def __call__(self, z):
        """x = f(z)."""
        for t in self.transforms():
            z = t(z)
        return z


def _layers(key, sizes, dtype: str) -> list[Linear]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [Linear.init(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]


def MADE(sizes, masks, activation: str, *, seed: int, dtype: str) -> _MADE:  # noqa: N802
    return _MADE(_layers(jax.random.PRNGKey(seed), sizes, dtype),
                 [[jnp.asarray(m, dtype=bool) for m in layer_masks] for layer_masks in masks], activation)


def RealNVP(dim: int, conditioner_sizes, num_couplings: int, activation: str, zero_init: bool = False, *,  # noqa: N802
            seed: int, dtype: str) -> _RealNVP:
    keys = jax.random.split(jax.random.PRNGKey(seed), num_couplings)
    stacks = [_layers(k, conditioner_sizes, dtype) for k in keys]
    if zero_init:
        stacks = [[*layers[:-1], Linear(jnp.zeros_like(layers[-1].weight), jnp.zeros_like(layers[-1].bias))]
                  for layers in stacks]
    return _RealNVP([_Conditioner(layers, activation) for layers in stacks], dim, conditioner_sizes[0])
