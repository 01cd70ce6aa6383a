"""NUTS and HMC on Pyro: a thin wrapper of ``pyro.infer.MCMC``.

Chains run one after another, each a single-chain ``MCMC`` with its own seed
and a fresh kernel: Pyro's multi-chain mode forks worker processes, which
does not mix with a JAX runtime in the same process. Pyro's ``MCMC`` returns
only latent sites, so deterministic sites are recomputed from the draws with
``Predictive``.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from pyro.infer import HMC, MCMC, NUTS, Predictive

from inference.backends import chain_seeds, hmc_path_length
from inference.backends.pyro_common import (
    backend_context,
    init_to_uniform,
    predictive_draws,
    start,
    to_backend,
    to_numpy,
    trace_sites,
    with_networks,
)
from inference.result import InferenceResult


def make_kernel(method: str, model, opts: dict, max_plate_nesting: int):
    # max_plate_nesting given, so that Pyro need not guess it by sampling (improper priors cannot)
    common = dict(target_accept_prob=opts["target_accept_prob"], jit_compile=opts["jit_compile"],
                  ignore_jit_warnings=True, init_strategy=init_to_uniform, max_plate_nesting=max_plate_nesting)
    if method == "nuts":
        return NUTS(model, max_tree_depth=opts["max_tree_depth"], **common)
    return HMC(model, **hmc_path_length(opts), **common)


def _run_chain(method, model, data, opts, progress_bar, max_plate_nesting):
    """One chain; returns latent draws, per-draw divergences, step size and (warmup, sampling) seconds."""
    kernel = make_kernel(method, model, opts, max_plate_nesting)
    marks = {}

    def hook(kernel, params, stage, i):
        marks.setdefault(stage, time.perf_counter())

    t0 = time.perf_counter()
    mcmc = MCMC(kernel, num_samples=opts["num_samples"], warmup_steps=opts["num_warmup"], num_chains=1,
                disable_progbar=not progress_bar, hook_fn=hook)
    mcmc.run(**data)
    t1 = time.perf_counter()
    diverging = np.zeros(opts["num_samples"], dtype=bool)
    diverging[mcmc.diagnostics()["divergences"]["chain 0"]] = True
    sample_start = marks.get("Sample", t1)
    return to_numpy(mcmc.get_samples()), diverging, float(kernel.step_size), (sample_start - t0, t1 - sample_start)


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    chains, diverging, step_size, warmup, sampling = [], [], [], 0.0, 0.0
    shape = (opts["num_chains"], opts["num_samples"])
    with backend_context(device, dtype) as dev:
        data = to_backend(spec.data, dev)
        start(seed)
        (model,) = with_networks(spec, seed, dev, model)  # networks, if any, at their initial weights
        sites = trace_sites(model, data)
        for chain_seed in chain_seeds(seed, opts["num_chains"]):
            start(chain_seed)
            draws, div, eps, (t_warm, t_samp) = _run_chain(method, model, data, opts, progress_bar,
                                                            sites.max_plate_nesting)
            chains.append(draws), diverging.append(div), step_size.append(eps)
            warmup, sampling = warmup + t_warm, sampling + t_samp
        samples = {k: np.stack([c[k] for c in chains]) for k in sites.latent}
        if sites.deterministic:
            flat = {k: torch.as_tensor(v.reshape(-1, *v.shape[2:]), device=dev) for k, v in samples.items()}
            predictive = Predictive(model, posterior_samples=flat, return_sites=list(sites.deterministic))
            samples |= predictive_draws(predictive, data, sites.deterministic, shape)
    return InferenceResult(
        model=spec.name, backend="pyro", method=method, samples=samples, observed_data=sites.observed,
        sample_stats={"diverging": np.stack(diverging),
                      "step_size": np.broadcast_to(np.array(step_size)[:, None], shape).copy()},
        timing={"warmup": warmup, "sampling": sampling},
        info={"chain_method": "sequential"},
    )

