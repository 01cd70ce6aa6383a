"""Importance sampling on Pyro: proposal draws from the guide (or the prior), one trace pair per draw.

Draws are evaluated in a loop rather than vectorized over a particle plate: vectorizing
adds a batch dimension that models indexing their own latents do not expect.
"""
from __future__ import annotations

import time

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from tqdm.auto import tqdm

from inference.backends.pyro_common import (
    backend_context,
    frames,
    is_small,
    reduce_log_prob,
    start,
    to_backend,
    trace_sites,
    with_networks,
)
from inference.importance import data_plate, keeps_draws, to_result
from inference.sites import check_guide_matches


def _samples(trace) -> dict:
    return {n: s for n, s in trace.nodes.items()
            if s["type"] == "sample" and not site_is_subsample(s) and not s["infer"].get("_deterministic")}


def run(spec, model, *, method, seed, device, dtype, progress_bar, num_samples, guide, params, resample):
    with backend_context(device, dtype, small=is_small(spec)) as dev, torch.no_grad():
        data = to_backend(spec.data, dev)
        start(seed)
        model, spec_guide = with_networks(spec, seed, dev, model, spec.own_guide("pyro"),
                                          params=params)
        sites = trace_sites(model, data)
        proposal = model if guide == "prior" else spec_guide
        for name, value in (params or {}).items():
            pyro.get_param_store()[name] = torch.as_tensor(value, dtype=torch.get_default_dtype(), device=dev)
        if guide == "spec":
            check_guide_matches(sites, trace_sites(proposal, data), f"of {spec.name!r}")
        keep = keeps_draws(spec, resample)
        log_weights, latents, t0 = [], {}, time.perf_counter()
        for i in tqdm(range(num_samples), disable=not progress_bar, desc="IS"):
            q = poutine.trace(proposal).get_trace(**data)
            full = poutine.trace(poutine.replay(model, trace=q)).get_trace(**data)
            p = _samples(full)
            latent = {n: s for n, s in p.items() if not s["is_observed"]}
            if i == 0:
                observed = {n: s for n, s in p.items() if s["is_observed"]}
                plate = data_plate({n: frames(s) for n, s in latent.items()},
                                   {n: frames(s) for n, s in observed.items()})
                plate_axes = {n: (s["value"].dim() - s["fn"].event_dim + plate[1]) if plate else None
                              for n, s in latent.items()}
            log_q = sum(reduce_log_prob(q.nodes[n], plate) for n in latent)
            log_weights.append((sum(reduce_log_prob(s, plate) for s in p.values()) - log_q).cpu().numpy())
            for n in latent if keep else ():
                latents.setdefault(n, []).append(q.nodes[n]["value"].cpu().numpy())
            # deterministic sites go with joint weights; per-data-point weights resample each point's latents alone
            for n in sites.deterministic if keep and plate is None else ():
                latents.setdefault(n, []).append(full.nodes[n]["value"].cpu().numpy())
                plate_axes[n] = None
        seconds = time.perf_counter() - t0
    return to_result(spec, "pyro", np.stack(log_weights), {n: np.stack(v) for n, v in latents.items()}, plate_axes,
                     sites.observed, seed, seconds)
