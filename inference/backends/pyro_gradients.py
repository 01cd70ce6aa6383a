"""Draws of an estimator's gradient on Pyro (``inference.gradient_check``): each from one call of the
ELBO's ``loss_and_grads`` at the same parameters. Pyro's baselines for ``TraceGraph_ELBO`` learn as
they go: a decaying average of the downstream cost updates at every call, and a neural baseline is
trained by its own regression loss, so ``warmup`` calls come first, with Adam steps on the baseline
networks' parameters only (the model's and guide's stay where they are)."""
from __future__ import annotations

import numpy as np
import pyro
import torch
from pyro import poutine


def gradient_draws(elbo, model, guide, params: dict, data: dict, num_draws: int, warmup: int = 0,
                   learning_rate: float = 1e-2) -> dict:
    """``num_draws`` draws of ``elbo``'s estimate of the bound's gradient with respect to ``params`` (names
    as in the param store, all set to their given values first): ``{param: (num_draws, ...)}``.
    Parameters the estimator learns along (names starting ``baseline``, ``__baseline``) are not given."""
    store = pyro.get_param_store()
    with torch.no_grad():
        for name, value in params.items():
            if name in store:
                store[name].copy_(torch.as_tensor(np.asarray(value)))
    given = set(params)
    optimizer, draws = None, {n: [] for n in params}
    for step in range(warmup + num_draws):
        with poutine.trace(param_only=True) as capture:
            elbo.loss_and_grads(model, guide, **data)
        live = {n: s["value"].unconstrained() for n, s in capture.trace.nodes.items()}
        learnt = [p for n, p in live.items() if n not in given and p.requires_grad and p.grad is not None]
        if step < warmup and learnt:
            optimizer = optimizer or torch.optim.Adam(learnt, lr=learning_rate)
            optimizer.step()
        if step >= warmup:
            for name in params:
                draws[name].append(-live[name].grad.detach().cpu().numpy().copy())
        for p in live.values():
            p.grad = None
    return {n: np.stack(v) for n, v in draws.items()}
