"""A fitted network as a numpy function: the spec's factory built on the result's backend,
with the weights the run fitted (``<network>$$$<parameter>`` in ``result.params``)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ppl_models.errors import UnknownChoiceError
from ppl_models.nets import params_of
from ppl_models.nets.factories import has_state


def _to_numpy(out, convert):
    return tuple(convert(o) for o in out) if isinstance(out, tuple) else convert(out)


def fitted_network(spec, result, name: str) -> Callable:
    """Network ``name`` of ``spec`` with the weights of ``result``, mapping numpy arrays (one or
    several inputs) to numpy arrays (or tuples of them), evaluated on the CPU in the run's precision,
    in eval mode: batch normalization by the running statistics the result holds, no dropout."""
    if name not in spec.networks:
        raise UnknownChoiceError(f"network of {spec.name!r}", name, spec.networks)
    params = params_of(result.params, name)
    if not params:
        raise ValueError(f"the {result.backend} {result.method} result of {result.model!r} holds no parameters of "
                         f"network {name!r}")
    dtype = result.info.get("dtype", spec.dtype)
    factory = spec.networks[name]
    if has_state(factory) and not any(k.startswith("norm.") for k in params):
        raise ValueError(f"network {name!r} of {spec.name!r} has batch normalization, but the {result.backend} "
                         f"{result.method} result of {result.model!r} holds no running statistics for it "
                         f"({name}$$$norm.running_mean, ...) to evaluate it with")
    if result.backend == "pyro":
        import torch

        net = factory.build("pyro", 0, dtype)
        net.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
        net.eval()  # batch normalization by the fitted running statistics, no dropout

        def apply(*xs):
            with torch.no_grad():
                return _to_numpy(net(*(torch.as_tensor(np.asarray(x), dtype=getattr(torch, dtype)) for x in xs)),
                                 lambda t: t.numpy())
        return apply
    import jax
    import jax.numpy as jnp

    from ppl_models.nets.equinox_nets import with_parameters

    with jax.enable_x64(dtype == "float64"):
        net = with_parameters(factory.build("numpyro", 0, dtype), {k: jnp.asarray(v) for k, v in params.items()})

    def apply(*xs):
        with jax.enable_x64(dtype == "float64"):
            return _to_numpy(net(*(jnp.asarray(x, dtype=dtype) for x in xs)), np.asarray)
    return apply
