"""PyTorch builds of the network factories (for Pyro). Parameter initialization is
PyTorch's default for ``nn.Linear`` and ``nn.Conv2d``, drawn from a generator seeded per network."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_ACTIVATIONS = {"tanh": torch.tanh, "relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
                "softplus": F.softplus}


def _seeded(seed: int, dtype: str, make):
    """``make()`` under a private RNG state seeded with ``seed``, in ``dtype`` on the default device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = make()
    return module.to(getattr(torch, dtype))


class _MLP(nn.Module):
    def __init__(self, sizes, activation: str, head: str, inputs: str):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.activation, self.head, self.inputs = activation, head, inputs

    def forward(self, *inputs):
        act = _ACTIVATIONS[self.activation]
        x = torch.cat(inputs, dim=-1) if len(inputs) > 1 else inputs[0]
        if self.inputs == "log1p":
            x = torch.log1p(x)
        for layer in self.layers[:-1]:
            x = act(layer(x))
        x = self.layers[-1](x)
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
    def __init__(self, num_topics: int, vocab_size: int):
        super().__init__()
        self.topics = nn.Linear(num_topics, vocab_size)

    def forward(self, h):
        return self.topics(torch.softmax(h, dim=-1))


def MLP(sizes, activation: str, head: str, inputs: str, *, seed: int, dtype: str) -> nn.Module:  # noqa: N802
    return _seeded(seed, dtype, lambda: _MLP(sizes, activation, head, inputs))


def ConvDecoder(latent_dim: int, channels, activation: str, *, seed: int, dtype: str) -> nn.Module:  # noqa: N802
    return _seeded(seed, dtype, lambda: _ConvDecoder(latent_dim, channels, activation))


def ProductOfExperts(num_topics: int, vocab_size: int, *, seed: int, dtype: str) -> nn.Module:  # noqa: N802
    return _seeded(seed, dtype, lambda: _ProductOfExperts(num_topics, vocab_size))
