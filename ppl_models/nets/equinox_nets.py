"""Equinox builds of the network factories (for NumPyro).

Same layers, parameter names and shapes as ``torch_nets`` (weights ``(out, in)``,
convolution kernels ``(out, in, kh, kw)``, NCHW images) and the same initialization
distributions as PyTorch's defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
"""
from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp

_ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu, "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.2),
                "softplus": jax.nn.softplus}


def _weight_and_bias(key, weight_shape: tuple, fan_in: int, dtype: str):
    """A weight of ``weight_shape`` and a bias of ``weight_shape[0]``, both U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    kw, kb = jax.random.split(key)
    return (jax.random.uniform(kw, weight_shape, dtype=dtype, minval=-bound, maxval=bound),
            jax.random.uniform(kb, weight_shape[:1], dtype=dtype, minval=-bound, maxval=bound))


class Linear(eqx.Module):
    weight: jax.Array
    bias: jax.Array

    @staticmethod
    def init(key, n_in: int, n_out: int, dtype: str) -> Linear:
        return Linear(*_weight_and_bias(key, (n_out, n_in), n_in, dtype))

    def __call__(self, x):
        return x @ self.weight.T + self.bias


class Conv2d(eqx.Module):
    """3 x 3 convolution, padding 1, on NCHW images (cross-correlation, as ``torch.nn.Conv2d``)."""

    weight: jax.Array
    bias: jax.Array

    @staticmethod
    def init(key, c_in: int, c_out: int, dtype: str) -> Conv2d:
        return Conv2d(*_weight_and_bias(key, (c_out, c_in, 3, 3), c_in * 9, dtype))

    def __call__(self, x):
        y = jax.lax.conv_general_dilated(x, self.weight, (1, 1), ((1, 1), (1, 1)),
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + self.bias[:, None, None]


class _MLP(eqx.Module):
    layers: list[Linear]
    activation: str = eqx.field(static=True)
    head: str = eqx.field(static=True)
    inputs: str = eqx.field(static=True)

    def __call__(self, *inputs):
        act = _ACTIVATIONS[self.activation]
        x = jnp.concatenate(inputs, axis=-1) if len(inputs) > 1 else inputs[0]
        if self.inputs == "log1p":
            x = jnp.log1p(x)
        for layer in self.layers[:-1]:
            x = act(layer(x))
        x = self.layers[-1](x)
        if self.head == "normal":
            loc, raw = jnp.split(x, 2, axis=-1)
            return loc, jax.nn.softplus(raw)
        if self.head == "sigmoid":
            return jax.nn.sigmoid(x)
        return jax.nn.softplus(x) if self.head == "positive" else x


def _upsample(h):
    return jnp.repeat(jnp.repeat(h, 2, axis=-2), 2, axis=-1)


class _ConvDecoder(eqx.Module):
    linear: Linear
    conv1: Conv2d
    conv2: Conv2d
    c1: int = eqx.field(static=True)
    activation: str = eqx.field(static=True)

    def __call__(self, z):
        act, batch = _ACTIVATIONS[self.activation], z.shape[:-1]
        h = act(self.linear(z)).reshape(-1, self.c1, 7, 7)
        h = act(self.conv1(_upsample(h)))
        h = self.conv2(_upsample(h))
        return h.reshape(*batch, 28 * 28)


class _ProductOfExperts(eqx.Module):
    topics: Linear

    def __call__(self, h):
        return self.topics(jax.nn.softmax(h, axis=-1))


def MLP(sizes, activation: str, head: str, inputs: str, *, seed: int, dtype: str) -> _MLP:  # noqa: N802
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    layers = [Linear.init(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]
    return _MLP(layers, activation, head, inputs)


def ConvDecoder(latent_dim: int, channels, activation: str, *, seed: int, dtype: str) -> _ConvDecoder:  # noqa: N802
    c1, c2 = channels
    k0, k1, k2 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return _ConvDecoder(Linear.init(k0, latent_dim, c1 * 49, dtype), Conv2d.init(k1, c1, c2, dtype),
                        Conv2d.init(k2, c2, 1, dtype), c1, activation)


def ProductOfExperts(num_topics: int, vocab_size: int, *, seed: int, dtype: str) -> _ProductOfExperts:  # noqa: N802
    return _ProductOfExperts(Linear.init(jax.random.PRNGKey(seed), num_topics, vocab_size, dtype))


def named_parameters(module: eqx.Module) -> dict[str, jax.Array]:
    """Parameters by their PyTorch-style names (``layers.0.weight``)."""
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(module, eqx.is_inexact_array))[0]
    return {_torch_name(path): leaf for path, leaf in leaves}


def _torch_name(path) -> str:
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            parts.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        else:
            parts.append(str(key))
    return ".".join(parts)


def with_parameters(module: eqx.Module, params: dict[str, jax.Array]) -> eqx.Module:
    """``module`` with its parameters replaced by ``params`` (named as ``named_parameters``)."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(module)
    return jax.tree_util.tree_unflatten(treedef, [params.get(_torch_name(p), leaf) for p, leaf in leaves])
