"""PyTorch builds of the network factories (for Pyro). Parameter initialization is
PyTorch's default for ``nn.Linear`` and ``nn.Conv2d``, drawn from a generator seeded per network.
Networks are built in eval mode; the Pyro adapter of ``pyro.module`` (``ppl_models.generic``)
sets each network's mode from ``nets.training()`` whenever a model or guide registers it.
Batch normalization (``nn.BatchNorm1d``, momentum 0.1; ``norm.weight``, ``norm.bias`` if affine, ``norm.bias``
alone if ``affine="shift"``) keeps its running
statistics as buffers (``norm.running_mean``, ``norm.running_var``, ``norm.num_batches_tracked``)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
                "softplus": F.softplus}


def _seeded(seed: int, dtype: str, make):
    """``make()`` under a private RNG state seeded with ``seed``, in ``dtype`` on the default device,
    in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = make()
    return module.to(getattr(torch, dtype)).eval()


def _norm(size: int, batch_norm: bool, affine: bool | str):
    if not batch_norm:
        return None
    if affine == "shift":
        return _ShiftedBatchNorm1d(size)
    return nn.BatchNorm1d(size, affine=bool(affine))


class _ShiftedBatchNorm1d(nn.BatchNorm1d):
    """Batch normalization with a learned shift (``bias``) and no scale: TensorFlow's
    ``batch_norm(center=True, scale=False)``, which ``nn.BatchNorm1d`` has no switch for
    (``F.batch_norm`` takes a bias without a weight)."""

    def __init__(self, size: int):
        super().__init__(size, affine=False)
        self.bias = nn.Parameter(torch.zeros(size))


def _normalize(norm, x):
    """``norm`` over every leading dimension of ``x`` (BatchNorm1d takes (batch, features) only)."""
    if norm is None:
        return x
    return norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class _MLP(nn.Module):
    def __init__(self, sizes, activation: str, head: str, inputs: str, batch_norm: bool, dropout: float,
                 affine: bool | str):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.activation, self.head, self.inputs = activation, head, inputs
        self.drop = nn.Dropout(dropout) if dropout else None
        self.norm = _norm(sizes[-1], batch_norm, affine)

    def forward(self, *inputs):
        act = _ACTIVATIONS[self.activation]
        x = torch.cat(inputs, dim=-1) if len(inputs) > 1 else inputs[0]
        if self.inputs == "log1p":
            x = torch.log1p(x)
        for layer in self.layers[:-1]:
            x = act(layer(x))
        if self.drop is not None:
            x = self.drop(x)
        x = _normalize(self.norm, self.layers[-1](x))
        if self.head == "normal":
            loc, raw = x.chunk(2, dim=-1)
            return loc, F.softplus(raw)
        if self.head == "sigmoid":
            return torch.sigmoid(x)
        return F.softplus(x) if self.head == "positive" else x


class _ConvDecoder(nn.Module):
    def __init__(self, latent_dim: int, channels, activation: str):
        super().__init__()
        c1, c2 = channels
        self.linear = nn.Linear(latent_dim, c1 * 7 * 7)
        self.conv1 = nn.Conv2d(c1, c2, 3, padding=1)
        self.conv2 = nn.Conv2d(c2, 1, 3, padding=1)
        self.c1, self.activation = c1, activation

    def forward(self, z):
        act, batch = _ACTIVATIONS[self.activation], z.shape[:-1]
        h = act(self.linear(z)).reshape(-1, self.c1, 7, 7)
        h = act(self.conv1(F.interpolate(h, scale_factor=2, mode="nearest")))
        h = self.conv2(F.interpolate(h, scale_factor=2, mode="nearest"))
        return h.reshape(*batch, 28 * 28)


class _ProductOfExperts(nn.Module):
    def __init__(self, num_topics: int, vocab_size: int, batch_norm: bool, dropout: float, affine: bool | str):
        super().__init__()
        self.topics = nn.Linear(num_topics, vocab_size)
        self.drop = nn.Dropout(dropout) if dropout else None
        self.norm = _norm(vocab_size, batch_norm, affine)

    def forward(self, h):
        theta = torch.softmax(h, dim=-1)
        if self.drop is not None:
            theta = self.drop(theta)
        return _normalize(self.norm, self.topics(theta))


def MLP(sizes, activation: str, head: str, inputs: str, batch_norm: bool = False, dropout: float = 0.0,  # noqa: N802
        affine: bool | str = False, *, seed: int, dtype: str) -> nn.Module:
    return _seeded(seed, dtype, lambda: _MLP(sizes, activation, head, inputs, batch_norm, dropout, affine))


def ConvDecoder(latent_dim: int, channels, activation: str, *, seed: int, dtype: str) -> nn.Module:  # noqa: N802
    return _seeded(seed, dtype, lambda: _ConvDecoder(latent_dim, channels, activation))


def ProductOfExperts(num_topics: int, vocab_size: int, batch_norm: bool = False, dropout: float = 0.0,  # noqa: N802
                     affine: bool | str = False, *, seed: int, dtype: str) -> nn.Module:
    return _seeded(seed, dtype, lambda: _ProductOfExperts(num_topics, vocab_size, batch_norm, dropout, affine))
