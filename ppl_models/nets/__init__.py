"""Network factories: descriptions of networks, built fresh and seeded for each run.

A factory (``MLP``, ``ConvDecoder``, ``ProductOfExperts``) holds only sizes and choices. ``build(backend, seed,
dtype)`` makes an instance for one backend: a ``torch.nn.Module`` for Pyro, an Equinox
module for NumPyro. Both take inputs with any leading batch dimensions and name their
parameters alike (``layers.0.weight``, shapes as in ``torch.nn.Linear``), so weights fitted
on one backend load into the other. Models receive built networks as keyword arguments
and register them with ``pyro.module(name, net)``; they never build one.
"""
from ppl_models.nets.density import MADE, RealNVP
from ppl_models.nets.factories import (
    MLP,
    ConvDecoder,
    NetworkFactory,
    ProductOfExperts,
    network_seed,
    param_name,
    params_of,
)

__all__ = ["MADE", "MLP", "ConvDecoder", "RealNVP", "NetworkFactory", "ProductOfExperts", "network_seed", "param_name",
           "params_of"]
