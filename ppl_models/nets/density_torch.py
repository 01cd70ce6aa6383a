"""PyTorch builds of ``ppl_models.nets.density`` (for Pyro): MADE and RealNVP. Weights are initialized
as ``nn.Linear``'s defaults, from a generator seeded per network; MADE's masks are boolean tensors
held aside (not parameters, not buffers, not in the state dict: the factory makes them)."""
from __future__ import annotations

import torch
from pyro.distributions import transforms
from torch import nn
from torch.nn import functional as F

from ppl_models.nets.torch_nets import _ACTIVATIONS, _seeded


class _MADE(nn.Module):
    def __init__(self, sizes, masks, activation: str):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.activation, self.num_masks = activation, len(masks)
        # plain tensors, not buffers: a buffer is state a run saves and loads (running statistics), and
        # the masks are not: the factory makes them, the same in every build
        self._masks = {"cpu": [[torch.as_tensor(m, dtype=torch.bool) for m in layer_masks] for layer_masks in masks]}

    def mask(self, k: int, i: int, device: torch.device) -> torch.Tensor:
        """Mask ``i`` of mask set ``k``, on ``device`` (copied there once)."""
        key = str(device)
        if key not in self._masks:
            self._masks[key] = [[m.to(device) for m in layer_masks] for layer_masks in self._masks["cpu"]]
        return self._masks[key][k][i]

    def forward(self, x):
        act, out = _ACTIVATIONS[self.activation], []
        for k in range(self.num_masks):
            h = x
            for i, layer in enumerate(self.layers):
                h = F.linear(h, layer.weight * self.mask(k, i, layer.weight.device), layer.bias)
                if i < len(self.layers) - 1:
                    h = act(h)
            out.append(h)
        return out[0] if self.num_masks == 1 else torch.stack(out, dim=-2)


class _Conditioner(nn.Module):
    """y1 -> (mean, log_scale) of the moved coordinates: an MLP whose output is split in half."""

    def __init__(self, sizes, activation: str, zero_init: bool):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.activation = activation
        if zero_init:
            nn.init.zeros_(self.layers[-1].weight)
            nn.init.zeros_(self.layers[-1].bias)

    def forward(self, x):
        act = _ACTIVATIONS[self.activation]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        mean, log_scale = self.layers[-1](x).chunk(2, dim=-1)
        return mean, log_scale


class _RealNVP(nn.Module):
    def __init__(self, dim: int, conditioner_sizes, num_couplings: int, activation: str, zero_init: bool):
        super().__init__()
        self.dim, self.split_dim = dim, conditioner_sizes[0]
        self.couplings = nn.ModuleList(_Conditioner(conditioner_sizes, activation, zero_init)
                                       for _ in range(num_couplings))

    def transforms(self) -> list:
        """z -> x as Pyro transforms: each coupling, then a reversal of the coordinates."""
        reverse = torch.arange(self.dim - 1, -1, -1)
        out = []
        for conditioner in self.couplings:
            out += [transforms.AffineCoupling(self.split_dim, conditioner), transforms.Permute(reverse)]
        return out

    def forward(self, z):
        """x = f(z)."""
        for t in self.transforms():
            z = t(z)
        return z


def MADE(sizes, masks, activation: str, *, seed: int, dtype: str) -> nn.Module:  # noqa: N802
    return _seeded(seed, dtype, lambda: _MADE(sizes, masks, activation))


def RealNVP(dim: int, conditioner_sizes, num_couplings: int, activation: str, zero_init: bool = False, *,  # noqa: N802
            seed: int, dtype: str) -> nn.Module:
    return _seeded(seed, dtype, lambda: _RealNVP(dim, conditioner_sizes, num_couplings, activation, zero_init))
