"""Equinox builds of the network factories (for NumPyro).

Same layers, parameter names and shapes as ``torch_nets`` (weights ``(out, in)``,
convolution kernels ``(out, in, kh, kw)``, NCHW images) and the same initialization
distributions as PyTorch's defaults: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

Networks with batch normalization or dropout (``has_modes``) are called in eval mode with their
own running statistics (``net(x)``), or through ``net.apply(buffers, inputs, train, key)``, which
returns the output and the updated statistics: the NumPyro adapter of ``pyro.module``
(``ppl_models.generic``) keeps those in a mutable site, which NumPyro's SVI carries in its state.
Batch normalization is Equinox's ``BatchNorm`` ("batch" mode, momentum 0.9,
i.e. PyTorch's 0.1) and its ``State``; the statistics are held as PyTorch names and means them
(``norm.running_mean``, ``norm.running_var``: what eval mode normalizes with; ``norm.num_batches_tracked``),
so that they load into either backend. Two differences from PyTorch remain, both Equinox's: its
running statistics are debiased averages of the batch statistics (PyTorch's start from 0 and 1),
and its running variance averages the biased batch variances (PyTorch's, the unbiased ones).
"""
from __future__ import annotations

import functools
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


BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


class BatchNorm(eqx.Module):
    """Equinox's ``BatchNorm`` over the last axis of inputs with any leading dimensions."""

    layer: eqx.nn.BatchNorm
    # ``affine="shift"``: a learned shift and no scale, which Equinox's layer has no switch for
    bias: jax.Array | None = None

    @staticmethod
    def init(size: int, dtype: str, affine: bool | str = False) -> BatchNorm:
        scaled = bool(affine) and affine != "shift"
        bn = eqx.nn.BatchNorm(size, "batch", channelwise_affine=scaled, momentum=0.9, mode="batch", dtype=dtype)
        # the batch counter as an int32 of its own (Equinox starts it as a weakly typed 0)
        bn = eqx.tree_at(lambda b: b.batch_counter.init, bn, jnp.zeros((), jnp.int32))
        return BatchNorm(bn, jnp.zeros(size, dtype) if affine == "shift" else None)

    def initial_buffers(self) -> dict:
        """Running statistics before any batch: mean 0, variance 1 (as PyTorch starts them), no batches."""
        state = eqx.nn.State(self.layer)
        mean, var = state.get(self.layer.batch_state_index)
        return dict(zip(BUFFERS, (mean, var, state.get(self.layer.batch_counter)), strict=True))

    def __call__(self, x, buffers: dict, train: bool):
        """``x`` normalized, and the running statistics after it (unchanged in eval mode)."""
        bn = self.layer
        count = buffers["num_batches_tracked"]
        # Equinox keeps zero-debiased averages: in eval mode it divides by 1 - momentum**count (by 1 before
        # any batch); in train mode the averages it updates must be 0 before the first batch
        debias = 1.0 - bn.momentum**count
        debias = jnp.where(count == 0, 0.0 if train else 1.0, debias)
        state = eqx.nn.State(bn).set(bn.batch_counter, jnp.asarray(count, jnp.int32))
        state = state.set(bn.batch_state_index, (buffers["running_mean"] * debias, buffers["running_var"] * debias))
        call = functools.partial(bn, inference=not train)
        flat, state = jax.vmap(call, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(
            x.reshape(-1, x.shape[-1]), state)
        if self.bias is not None:
            flat = flat + self.bias
        if not train:
            return flat.reshape(x.shape), buffers
        count = state.get(bn.batch_counter)
        mean, var = state.get(bn.batch_state_index)
        debias = 1.0 - bn.momentum**count
        return flat.reshape(x.shape), {"running_mean": mean / debias, "running_var": var / debias,
                                       "num_batches_tracked": count.astype(buffers["num_batches_tracked"].dtype)}


def _norm_buffers(norm: BatchNorm | None) -> dict:
    return {} if norm is None else {f"norm.{k}": v for k, v in norm.initial_buffers().items()}


def _normalize(norm: BatchNorm | None, x, buffers: dict, train: bool):
    if norm is None:
        return x, buffers
    y, new = norm(x, {k: buffers[f"norm.{k}"] for k in BUFFERS}, train)
    return y, {**buffers, **{f"norm.{k}": v for k, v in new.items()}}


def _drop(dropout, x, train: bool, key):
    return x if dropout is None else dropout(x, key=key, inference=not train)


class _Stateful(eqx.Module):
    """A network with train and eval modes: ``__call__`` is eval mode with the network's own
    running statistics; ``apply`` runs either mode on the statistics it is given."""

    def __call__(self, *inputs):
        return self.apply(self.buffers, inputs)[0]

    @property
    def has_modes(self) -> bool:
        return self.norm is not None or self.dropout is not None


class _MLP(_Stateful):
    layers: list[Linear]
    norm: BatchNorm | None
    dropout: eqx.nn.Dropout | None
    buffers: dict
    activation: str = eqx.field(static=True)
    head: str = eqx.field(static=True)
    inputs: str = eqx.field(static=True)

    def apply(self, buffers: dict, inputs: tuple, train: bool = False, key=None):
        act = _ACTIVATIONS[self.activation]
        x = jnp.concatenate(inputs, axis=-1) if len(inputs) > 1 else inputs[0]
        if self.inputs == "log1p":
            x = jnp.log1p(x)
        for layer in self.layers[:-1]:
            x = act(layer(x))
        x, buffers = _normalize(self.norm, self.layers[-1](_drop(self.dropout, x, train, key)), buffers, train)
        if self.head == "normal":
            loc, raw = jnp.split(x, 2, axis=-1)
            return (loc, jax.nn.softplus(raw)), buffers
        if self.head == "sigmoid":
            return jax.nn.sigmoid(x), buffers
        return (jax.nn.softplus(x) if self.head == "positive" else x), buffers


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


class _ProductOfExperts(_Stateful):
    topics: Linear
    norm: BatchNorm | None
    dropout: eqx.nn.Dropout | None
    buffers: dict

    def apply(self, buffers: dict, inputs: tuple, train: bool = False, key=None):
        (h,) = inputs
        theta = _drop(self.dropout, jax.nn.softmax(h, axis=-1), train, key)
        return _normalize(self.norm, self.topics(theta), buffers, train)


def _dropout(p: float):
    return eqx.nn.Dropout(p) if p else None


def MLP(sizes, activation: str, head: str, inputs: str, batch_norm: bool = False, dropout: float = 0.0,  # noqa: N802
        affine: bool | str = False, *, seed: int, dtype: str) -> _MLP:
    keys = jax.random.split(jax.random.PRNGKey(seed), len(sizes) - 1)
    layers = [Linear.init(k, a, b, dtype) for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)]
    norm = BatchNorm.init(sizes[-1], dtype, affine) if batch_norm else None
    return _MLP(layers, norm, _dropout(dropout), _norm_buffers(norm), activation, head, inputs)


def ConvDecoder(latent_dim: int, channels, activation: str, *, seed: int, dtype: str) -> _ConvDecoder:  # noqa: N802
    c1, c2 = channels
    k0, k1, k2 = jax.random.split(jax.random.PRNGKey(seed), 3)
    return _ConvDecoder(Linear.init(k0, latent_dim, c1 * 49, dtype), Conv2d.init(k1, c1, c2, dtype),
                        Conv2d.init(k2, c2, 1, dtype), c1, activation)


def ProductOfExperts(num_topics: int, vocab_size: int, batch_norm: bool = False, dropout: float = 0.0,  # noqa: N802
                     affine: bool | str = False, *, seed: int, dtype: str) -> _ProductOfExperts:
    norm = BatchNorm.init(vocab_size, dtype, affine) if batch_norm else None
    return _ProductOfExperts(Linear.init(jax.random.PRNGKey(seed), num_topics, vocab_size, dtype), norm,
                             _dropout(dropout), _norm_buffers(norm))


def has_modes(module) -> bool:
    """Whether ``module`` computes differently in train and eval mode (batch normalization, dropout)."""
    return bool(getattr(module, "has_modes", False))


def named_buffers(module: eqx.Module) -> dict[str, jax.Array]:
    """Running statistics by their PyTorch names (``norm.running_mean``); {} for a network without."""
    return dict(getattr(module, "buffers", {}))


def named_parameters(module: eqx.Module) -> dict[str, jax.Array]:
    """Parameters by their PyTorch-style names (``layers.0.weight``): the inexact arrays, less the
    running statistics and the initial values Equinox's ``StateIndex`` keeps."""
    leaves = jax.tree_util.tree_flatten_with_path(module, is_leaf=lambda x: isinstance(x, eqx.nn.StateIndex))[0]
    return {name: leaf for path, leaf in leaves if eqx.is_inexact_array(leaf)
            and (name := _torch_name(path)) not in named_buffers(module)}


def _torch_name(path) -> str:
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            # running statistics are named by their dictionary key alone; BatchNorm's weight and bias as
            # PyTorch's (norm.weight, not norm.layer.weight)
            if key.name not in ("buffers", "layer"):
                parts.append(key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
        elif isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        else:
            parts.append(str(key))
    return ".".join(parts)


def with_parameters(module: eqx.Module, params: dict[str, jax.Array]) -> eqx.Module:
    """``module`` with its parameters and running statistics replaced by ``params`` (named as
    ``named_parameters`` and ``named_buffers``), each in the dtype of the value it replaces."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(module)

    def value(path, leaf):
        given = params.get(_torch_name(path))
        if given is None:
            return leaf
        return jnp.asarray(given, dtype=leaf.dtype) if hasattr(leaf, "dtype") else given

    return jax.tree_util.tree_unflatten(treedef, [value(p, leaf) for p, leaf in leaves])
