"""Write a model once, run it on Pyro and on NumPyro.

Pyro and NumPyro share their modeling primitives (``sample``, ``plate``,
``deterministic``, ``param``, ``factor``) and distribution names. A model that
uses only those, through ``ppl_models.generic.pyro`` and ``ppl_models.generic.dist``,
and array functions that torch and jax.numpy spell the same way, through
``ppl_models.generic.xp`` (the active backend's array namespace, the array API's
``xp``: ``xp.stack``, ``xp.log``, ``xp.eye``, ``xp.linalg.cholesky``), runs on both.
:func:`for_backends` binds such a model to each backend::

    from ppl_models.generic import dist, pyro, for_backends, xp

    def model(J, sigma, y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 5.0))
        ...

    spec = ModelSpec("my-model", data, model=for_backends(model))

On Pyro the backend makes its device and dtype torch's defaults while the model runs, so
``xp.eye(n)`` and ``xp.ones(k)`` are made where the data are, as ``jnp.eye`` is on NumPyro.

The idea is pyroapi's; pyroapi's own ``pyro_backend`` also installs a global
``seed`` handler, which leaks JAX tracers under NumPyro's jit, hence this small
dispatch on a context variable.
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib

from ppl_models.spec import BACKENDS

_MODULES = {
    "pyro": {"pyro": "pyro", "dist": "pyro.distributions", "xp": "torch"},
    "numpyro": {"pyro": "numpyro", "dist": "numpyro.distributions", "xp": "jax.numpy"},
}
_active: contextvars.ContextVar[str | None] = contextvars.ContextVar("ppl_backend", default=None)


class _Dispatch:
    """Forwards attribute access to the active backend's module."""

    def __init__(self, role: str):
        self._role = role

    def __getattr__(self, name: str):
        backend = _active.get()
        if backend is None:
            raise RuntimeError(
                f"generic model code used {self._role}.{name} outside a backend; bind the model with "
                "for_backends(model) or call it inside ppl_models.generic.use_backend('pyro' | 'numpyro')"
            )
        adapter = _ADAPTERS.get((backend, self._role, name))
        return adapter if adapter is not None else getattr(_module(backend, self._role), name)


@functools.cache
def _module(backend: str, role: str):
    return importlib.import_module(_MODULES[backend][role])


def _pyro_param(name, init_value=None, *args, **kwargs):
    """``pyro.param`` that also takes a number or array as initial value, as ``numpyro.param`` does."""
    import pyro as _pyro
    import torch

    if init_value is not None and not callable(init_value) and not isinstance(init_value, torch.Tensor):
        init_value = torch.as_tensor(init_value, dtype=torch.get_default_dtype())
    return _pyro.param(name, init_value, *args, **kwargs)


def _pyro_module(name, nn_module, update_module_params=False):
    """``pyro.module`` that first puts the network in train mode inside ``nets.training()``, else in
    eval mode (batch normalization by running statistics, no dropout)."""
    import pyro as _pyro

    from ppl_models.nets.modes import is_training

    nn_module.train(is_training())
    return _pyro.module(name, nn_module, update_module_params)


def _numpyro_module(name, net):
    """``pyro.module`` for NumPyro: each parameter of an Equinox network from ``ppl_models.nets``
    becomes ``numpyro.param(f"{name}$$${param}")``, named as Pyro names a torch module's.

    A network with batch normalization or dropout runs in train mode inside ``nets.training()``,
    else in eval mode. Its running statistics live in the mutable site ``f"{name}$state"`` (a dict
    of the network's buffers, started from the network's own), which NumPyro's SVI carries from
    step to step in its state; train mode updates them, and draws dropout masks from the seed."""
    import numpyro
    import numpyro.primitives

    from ppl_models.nets import param_name
    from ppl_models.nets.equinox_nets import has_modes, named_buffers, named_parameters, with_parameters
    from ppl_models.nets.factories import state_site
    from ppl_models.nets.modes import is_training

    params = {k: numpyro.param(param_name(name, k), v) for k, v in named_parameters(net).items()}
    net = with_parameters(net, params)
    if not has_modes(net):
        return net
    train, buffers = is_training(), named_buffers(net)
    holder = numpyro.primitives.mutable(state_site(name), buffers) if buffers else {}
    key = numpyro.primitives.prng_key() if train and net.dropout is not None else None

    def call(*inputs):
        out, new = net.apply(holder, inputs, train, key)
        if train:
            holder.update(new)
        return out

    return call


def _pyro_multinomial(total_count=1, probs=None, logits=None, validate_args=None):
    """``pyro.distributions.Multinomial`` that also takes one total count per row, as NumPyro's does."""
    from ppl_models.torch_multinomial import Multinomial

    return Multinomial(total_count, probs, logits, validate_args)


def _numpyro_dirichlet(*args, **kwargs):
    """``numpyro.distributions.Dirichlet`` with a reparameterized gradient as cheap as PyTorch's."""
    from ppl_models.jax_dirichlet import Dirichlet

    return Dirichlet(*args, **kwargs)


# Where one backend's primitive takes what the other's does not: (backend, role, name) -> adapter.
_ADAPTERS = {("pyro", "pyro", "param"): _pyro_param, ("pyro", "pyro", "module"): _pyro_module,
             ("numpyro", "pyro", "module"): _numpyro_module,
             ("pyro", "dist", "Multinomial"): _pyro_multinomial, ("numpyro", "dist", "Dirichlet"): _numpyro_dirichlet}

pyro = _Dispatch("pyro")
dist = _Dispatch("dist")
xp = _Dispatch("xp")


@contextlib.contextmanager
def use_backend(backend: str):
    """Make ``pyro``, ``dist`` and ``xp`` of this module stand for ``backend``'s inside the block."""
    if backend not in _MODULES:
        raise ValueError(f"unknown backend {backend!r}; valid choices: {', '.join(_MODULES)}")
    token = _active.set(backend)
    try:
        yield
    finally:
        _active.reset(token)


def active_backend() -> str | None:
    """The backend whose ``pyro``, ``dist`` and ``xp`` this module stands for now (None outside a model),
    for the rare generic code whose best arithmetic differs between backends (a ``lax.scan`` against a
    Python loop, diffrax against torchdiffeq)."""
    return _active.get()


def bind(fn, backend: str):
    """``fn`` as a function of ``backend``: each call runs inside ``use_backend(backend)``."""

    @functools.wraps(fn)
    def bound(*args, **kwargs):
        with use_backend(backend):
            return fn(*args, **kwargs)

    bound.backend = backend
    return bound


def for_backends(fn, backends=BACKENDS) -> dict:
    """The ``{backend: function}`` dict a ``ModelSpec`` takes, for a generic ``fn``."""
    return {b: bind(fn, b) for b in backends}
