"""Adversarial and MMD training of implicit models on Pyro.

The model runs under ``poutine.uncondition``: its data site draws generated points, with a
gradient back to the generator's weights (the networks it registers with ``pyro.module``). Each
generator update follows ``discriminator_steps`` discriminator updates (adversarial), or
descends the minibatch MMD² (mmd). Every update sees a fresh minibatch of the data. Updates
are applied only when their loss and gradients are finite; the first that is not stops the
run with a ``TrainingError`` that holds the parameters that gave the last finite losses.
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from inference.backends.pyro_common import backend_context, start, to_backend, to_numpy, trace_sites, with_networks
from inference.backends.pyro_svi import Minibatches
from inference.discrepancies import discriminator_loss, generator_loss, mmd_loss
from inference.likelihood_free import (
    DISCRIMINATOR,
    LOSS_NAMES,
    check_reparameterized,
    data_site,
    discriminator_factory,
)
from inference.result import InferenceResult
from ppl_models.errors import TrainingError
from ppl_models.nets import network_seed, param_name

BETAS = (0.5, 0.999)


class Generator:
    """Generated points of the model's data site, one per point of a minibatch."""

    def __init__(self, spec, model, site: str, batches: Minibatches):
        self.model, self.site = batches.plate_indices(poutine.uncondition(model)), site
        node = poutine.trace(self.model).get_trace(**batches(0)).nodes[site]
        check_reparameterized(spec, site, node["fn"], node["fn"].has_rsample)
        self.params = [p.unconstrained() for p in pyro.get_param_store().values()]

    def __call__(self, batch: dict) -> torch.Tensor:
        return poutine.trace(self.model).get_trace(**batch).nodes[self.site]["value"]


def finite_update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list) -> bool:
    """Back-propagate ``loss`` and step ``optimizer`` if the loss and its gradients are finite."""
    optimizer.zero_grad()
    if not torch.isfinite(loss):
        return False
    loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    if grads and not torch.isfinite(torch.nn.utils.get_total_norm(grads)):
        return False
    optimizer.step()
    return True


def _flat(points: torch.Tensor) -> torch.Tensor:
    return points.reshape(points.shape[0], -1)


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    with backend_context(device, dtype) as dev:
        data = to_backend(spec.data, dev)
        start(seed)
        (model,) = with_networks(spec, seed, dev, model)
        sites = trace_sites(model, data)
        site = data_site(spec, sites.observed)
        batches = Minibatches(spec, data, opts["batch_size"], dev)
        generate = Generator(spec, model, site, batches)
        g_optim = torch.optim.Adam(generate.params, lr=opts["learning_rate"], betas=BETAS)
        if method == "adversarial":
            factory = discriminator_factory(opts["discriminator"], int(np.prod(sites.observed[site].shape[1:])))
            critic = factory.build("pyro", network_seed(seed, DISCRIMINATOR), dtype).to(dev)
            d_optim = torch.optim.Adam(critic.parameters(), lr=opts["learning_rate"], betas=BETAS)
        losses = np.full((opts["num_steps"], len(LOSS_NAMES[method])), np.nan)
        shaped = (lambda a: a) if method == "adversarial" else (lambda a: a[:, 0])
        draw = itertools.count()  # minibatch counter: every update takes the next minibatch

        def snapshot() -> dict:
            """Copies of every parameter, named as in the result (in-place updates leave them be)."""
            params = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
            if method == "adversarial":
                params |= {param_name(DISCRIMINATOR, k): v.detach().clone() for k, v in critic.state_dict().items()}
            return params

        def fail(step: int, cause: str):
            params = to_numpy(previous if previous is not None else before)
            partial = InferenceResult(model=spec.name, backend="pyro", method=method, samples={},
                                      losses=shaped(losses[:step + 1]), params=params)
            last = float(losses[step - 1, -1]) if step else None
            raise TrainingError(step, last, partial, cause)

        t0 = time.perf_counter()
        previous, before = None, None  # the parameters at the start of the last step and of this one
        for step in tqdm(range(opts["num_steps"]), disable=not progress_bar, desc=method.upper()):
            previous, before = before, snapshot()
            if method == "adversarial":
                d_losses = []
                for _ in range(opts["discriminator_steps"]):
                    batch = batches(next(draw))
                    with torch.no_grad():
                        fake = generate(batch)
                    loss = discriminator_loss(critic(_flat(batch[site]))[..., 0], critic(_flat(fake))[..., 0],
                                              torch, opts["label_smoothing"])
                    d_losses.append(float(loss.detach()))
                    if not finite_update(loss, d_optim, list(critic.parameters())):
                        losses[step, 0] = np.nan
                        fail(step, "the discriminator's loss or gradient is not finite")
                losses[step, 0] = np.mean(d_losses)
                loss = generator_loss(critic(_flat(generate(batches(next(draw)))))[..., 0],
                                      opts["generator_loss"], torch)
            else:
                batch = batches(next(draw))
                real, fake = _flat(batch[site]), _flat(generate(batch))
                loss = mmd_loss(real, fake, fake.detach(), torch, opts["kernel"], opts["bandwidth"])
            losses[step, -1] = float(loss.detach())
            if not finite_update(loss, g_optim, generate.params):
                losses[step, -1] = np.nan
                fail(step, "the generator's loss or gradient is not finite")
        t1 = time.perf_counter()
        with torch.no_grad():
            points = [generate(batches(next(draw))) for _ in range(-(-opts["num_samples"] // opts["batch_size"]))]
        predictive = {site: torch.cat(points)[:opts["num_samples"]].cpu().numpy()[None]} if points else {}
        t2 = time.perf_counter()
        params = to_numpy(snapshot())
    return InferenceResult(
        model=spec.name, backend="pyro", method=method, samples={}, posterior_predictive=predictive,
        losses=shaped(losses), params=params,
        timing={"optimization": t1 - t0, "sampling": t2 - t1},
        info={"loss_names": list(LOSS_NAMES[method]), "data_site": site},
    )
