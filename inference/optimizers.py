"""The optimizer of a training method (SVI, RWS), by name: any Optax optimizer on NumPyro, any
``torch.optim`` optimizer on Pyro.

``optimizer="adam"`` (the default) is Adam on both backends; ``"sgd"``, ``"rmsprop"``, ``"adamw"``,
``"adagrad"`` name the same algorithm on both; the rest are one library's (Optax's ``lion``,
``adabelief``, ``yogi``, ...; torch's ``adadelta``, ``asgd``, ``rprop``, ...). Names are case-blind,
so torch's ``RMSprop`` is ``rmsprop``. The step size is the run's ``learning_rate`` with its
``lr_decay`` schedule, whatever the optimizer; ``optimizer_options`` holds the optimizer's other
keywords (``{"momentum": 0.9}``, ``{"b1": 0.5}``), checked against its signature before anything runs.

What counts as an optimizer: on Optax, a function whose first parameter is ``learning_rate`` (the
transformations that take no step size, such as ``scale_by_adam``, are not optimizers by
themselves); on torch, a ``torch.optim.Optimizer``. Left out on both: L-BFGS (its step needs the
loss re-evaluated along a line search, which one stochastic ELBO estimate per step cannot give);
on torch, SparseAdam (sparse gradients only) and Muon (2-D weight matrices only).
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping

from inference.library_options import check_value
from ppl_models.errors import UnknownChoiceError

_EXCLUDED = {"numpyro": ("lbfgs",), "pyro": ("lbfgs", "sparseadam", "muon")}


@functools.cache
def optimizers(backend: str) -> dict[str, object]:
    """``{name: optax function or torch.optim class}`` of ``backend``, by lowercase name."""
    if backend == "numpyro":
        import optax

        return {name: fn for name, fn in sorted(vars(optax).items())
                if inspect.isfunction(fn) and not name.startswith(("_", "scale_by"))
                and _first_parameter(fn) == "learning_rate" and name not in _EXCLUDED[backend]}
    import torch

    return {name.lower(): cls for name, cls in sorted(vars(torch.optim).items())
            if isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer
            and name.lower() not in _EXCLUDED[backend]}


def _first_parameter(fn) -> str | None:
    try:
        return next(iter(inspect.signature(fn).parameters), None)
    except (TypeError, ValueError):
        return None


def optimizer(backend: str, name: str):
    """The optimizer ``name`` of ``backend``; an error naming the closest when there is none."""
    known = optimizers(backend)
    if not isinstance(name, str) or name.lower() not in known:
        raise UnknownChoiceError(f"{'Optax' if backend == 'numpyro' else 'torch.optim'} optimizer", name, known)
    return known[name.lower()]


def check(backend: str, name: str, options: Mapping | None) -> None:
    """Refuse an unknown optimizer, or a keyword its signature does not take (the step size is the
    run's ``learning_rate``, not an optimizer option)."""
    fn = optimizer(backend, name)
    if options is None:
        return
    parameters = inspect.signature(fn).parameters
    takes = [p for p in parameters if p not in ("learning_rate", "lr", "params")]
    for key in options:
        if key not in takes:
            if key in ("learning_rate", "lr"):
                raise ValueError(f"optimizer_options key {key!r}: the step size is the run's learning_rate option")
            raise UnknownChoiceError(f"{name} keyword (optimizer_options)", key, takes)
        check_value(key, options[key], parameters[key], f"optimizer {name!r} on {backend}")


def numpyro_optimizer(name: str, step_size, options: Mapping | None):
    """NumPyro's ``_NumPyroOptim`` for Optax's ``name`` at ``step_size`` (a number or a schedule)."""
    from numpyro.optim import optax_to_numpyro

    return optax_to_numpyro(optimizer("numpyro", name)(step_size, **dict(options or {})))

