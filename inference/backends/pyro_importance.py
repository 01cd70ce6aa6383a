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

from inference.backends.pyro_common import backend_context, start, to_backend, trace_sites
from inference.importance import data_plate, to_result
from inference.sites import check_guide_matches


def _samples(trace) -> dict:
    return {n: s for n, s in trace.nodes.items()
            if s["type"] == "sample" and not site_is_subsample(s) and not s["infer"].get("_deterministic")}


def _frames(site) -> tuple:
    return tuple((f.name, f.dim) for f in site["cond_indep_stack"])


def _reduce(site, plate) -> torch.Tensor:
    """A site's log density, summed to a scalar, or to one value per element of ``plate``."""
    lp = site["fn"].log_prob(site["value"])
    if site["scale"] != 1.0:
        lp = lp * site["scale"]
    if plate is None:
        return lp.sum()
    lp = lp.movedim(lp.dim() + plate[1], 0)
    return lp.reshape(lp.shape[0], -1).sum(-1)


def run(spec, model, *, method, seed, device, dtype, progress_bar, num_samples, guide, params, chunk_size):
    with backend_context(device, dtype) as dev, torch.no_grad():
        data = to_backend(spec.data, dev)
        start(seed)
        sites = trace_sites(model, data)
        proposal = model if guide == "prior" else spec.guide_fn("pyro")
        for name, value in (params or {}).items():
            pyro.get_param_store()[name] = torch.as_tensor(value, dtype=torch.get_default_dtype(), device=dev)
        if guide == "spec":
            check_guide_matches(sites, trace_sites(proposal, data), f"of {spec.name!r}")
        log_weights, latents, t0 = [], {}, time.perf_counter()
        for _ in range(num_samples):
            q = poutine.trace(proposal).get_trace(**data)
            p = _samples(poutine.trace(poutine.replay(model, trace=q)).get_trace(**data))
            latent = {n: s for n, s in p.items() if not s["is_observed"]}
            if not latents:
                observed = {n: s for n, s in p.items() if s["is_observed"]}
                plate = data_plate({n: _frames(s) for n, s in latent.items()},
                                   {n: _frames(s) for n, s in observed.items()})
                plate_axes = {n: (s["value"].dim() - s["fn"].event_dim + plate[1]) if plate else None
                              for n, s in latent.items()}
            log_q = sum(_reduce(q.nodes[n], plate) for n in latent)
            log_weights.append((sum(_reduce(s, plate) for s in p.values()) - log_q).cpu().numpy())
            for n in latent:
                latents.setdefault(n, []).append(q.nodes[n]["value"].cpu().numpy())
        seconds = time.perf_counter() - t0
    return to_result(spec, "pyro", np.stack(log_weights), {n: np.stack(v) for n, v in latents.items()}, plate_axes,
                     sites.observed, seed, seconds)
