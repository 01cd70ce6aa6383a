"""A torch optimizer (Adam unless told otherwise) for Pyro SVI, as one optimizer over all of a run's parameters.

Pyro's ``PyroOptim`` keeps a torch optimizer for each parameter tensor and steps them in turn.
The Python cost of those calls is a large share of a small model's step on a CPU: for the
IWAE paper's VAE (12 tensors), 1.9 ms of an 11 ms step with fused per-tensor Adams against
0.5 ms for one fused Adam over all twelve (benchmarks/RESULTS.md). ``JointOptimizer`` keeps Pyro's
interface (``SVI`` takes it; ``get_state``/``set_state`` as a checkpoint needs) with a single torch
optimizer underneath, fused where torch has a fused kernel for it. Adam's update is elementwise, so
this is the same algorithm as one Adam per tensor; so are those of SGD, RMSprop, Adagrad and the
other elementwise optimizers (``inference.optimizers`` names which torch optimizers a run may use).
"""
from __future__ import annotations

import inspect

import pyro
import torch
from pyro.optim import PyroOptim


class JointOptimizer(PyroOptim):
    """torch's ``optimizer`` (keywords ``options``) with step size ``learning_rate * decay ** (t / num_steps)``
    after ``t`` calls of ``step()`` (Pyro's ``ExponentialLR`` with gamma = decay^(1/num_steps)).

    A tensor joins the optimizer the first time an update reaches it. A tensor that an update
    does not reach must have no gradient (``grad is None``): torch's Adam then leaves it and its
    moments as they are, as Pyro's per-tensor optimizers would.
    """

    def __init__(self, learning_rate: float, decay: float = 1.0, num_steps: int = 1,
                 optimizer: type[torch.optim.Optimizer] = torch.optim.Adam, options: dict | None = None):
        super().__init__(optimizer, {"lr": learning_rate, **(options or {})})
        self.learning_rate, self.gamma = learning_rate, decay ** (1 / num_steps)
        self.optimizer_class = optimizer
        self.options = dict(options or {})
        if "fused" in inspect.signature(optimizer).parameters:
            self.options.setdefault("fused", True)
        self.optimizer: torch.optim.Optimizer | None = None
        self.names: list[str] = []  # the parameter store's names of the optimizer's tensors, in its order
        self.schedule_steps = 0
        self._saved: dict | None = None  # a set_state waiting for its tensors' first update

    @property
    def lr(self) -> float:
        return self.learning_rate * self.gamma ** self.schedule_steps

    def __call__(self, params, *args, **kwargs) -> None:
        store = pyro.get_param_store()
        known = set(self.names)
        new = {name: p for name, p in ((store.param_name(p), p) for p in params) if name not in known}
        if self._saved is not None:
            self._restore(new)
        if new:
            self._add(list(new.values()), list(new))
        if self.optimizer is not None:  # None while no update has reached a parameter, as PyroOptim does nothing then
            self.optimizer.step()

    def _add(self, tensors: list, names: list[str]) -> None:
        if self.optimizer is None:
            self.optimizer = self.optimizer_class(tensors, lr=self.lr, **self.options)
        else:
            self.optimizer.add_param_group({"params": tensors, "lr": self.lr})
        self.names += names

    def _restore(self, new: dict) -> None:
        """Rebuild the saved optimizer, group by group as it was, from the parameter store's
        tensors of the names it saved (these leave ``new``), and load its state."""
        saved, self._saved = self._saved, None
        live = pyro.get_param_store().get_state()["params"]  # name -> unconstrained tensor
        if missing := sorted(set(saved["names"]) - set(live)):
            raise ValueError(f"the saved optimizer state is of parameters {missing} that the parameter store "
                             f"does not hold (it holds {sorted(live)})")
        names = iter(saved["names"])
        for group in saved["optimizer"]["param_groups"]:
            group_names = [next(names) for _ in group["params"]]
            self._add([live[n] for n in group_names], group_names)
            for n in group_names:
                new.pop(n, None)
        self.optimizer.load_state_dict(saved["optimizer"])

    def step(self) -> None:
        """One step of the learning-rate schedule (``train`` calls it after each update)."""
        self.schedule_steps += 1
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr

    def get_state(self) -> dict:
        if self._saved is not None:  # restored, not yet stepped: still the saved state
            return self._saved
        return {"names": list(self.names), "schedule_steps": self.schedule_steps,
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None}

    def set_state(self, state: dict) -> None:
        """Continue from ``get_state``'s ``state``; the optimizer is rebuilt at the next update, from
        the parameter store, which must then hold every tensor the state names."""
        if self.optimizer is not None:
            raise ValueError("set_state on an optimizer that has already stepped; make a fresh JointOptimizer")
        self.schedule_steps = state["schedule_steps"]
        self._saved = state if state["optimizer"] is not None else None
