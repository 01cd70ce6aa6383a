"""Importance sampling on NumPyro: proposal draws from the guide (or the prior), vectorized with vmap
in chunks that bound memory."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from tqdm.auto import tqdm

from inference.backends.numpyro_common import (
    backend_context,
    frames,
    reduce_log_prob,
    to_backend,
    trace_sites,
    with_networks,
)
from inference.importance import auto_chunk_size, data_plate, keeps_draws, to_result
from inference.sites import check_guide_matches


def _floats_per_draw(trace: dict) -> int:
    """Values and distribution parameters a draw holds, counted from one model trace."""
    sizes = [np.size(s["value"]) + int(np.prod(s["fn"].shape())) for s in trace.values() if s["type"] == "sample"]
    return int(sum(sizes))


def run(spec, model, *, method, seed, device, dtype, progress_bar, num_samples, guide, params, resample,
        chunk_size):
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        model, spec_guide = with_networks(spec, seed, dtype, model, spec.own_guide("numpyro"))
        sites = trace_sites(model, data, seed)
        if params:  # fitted parameters of the guide, and of the model's networks, if any
            fitted = {k: jnp.asarray(v) for k, v in params.items()}
            model = handlers.substitute(model, data=fitted)
            spec_guide = spec_guide and handlers.substitute(spec_guide, data=fitted)
        proposal = model if guide == "prior" else spec_guide
        if guide == "spec":
            check_guide_matches(sites, trace_sites(proposal, data, seed), f"of {spec.name!r}")
        trace = handlers.trace(handlers.seed(proposal, seed)).get_trace(**data)
        model_trace = handlers.trace(handlers.replay(handlers.seed(model, seed), trace)).get_trace(**data)
        latent = {n: s for n, s in model_trace.items() if s["type"] == "sample" and not s["is_observed"]}
        observed = {n: s for n, s in model_trace.items() if s["type"] == "sample" and s["is_observed"]}
        plate = data_plate({n: frames(s) for n, s in latent.items()}, {n: frames(s) for n, s in observed.items()})
        plate_axes = {n: (np.ndim(s["value"]) - s["fn"].event_dim + plate[1]) if plate else None
                      for n, s in latent.items()} | {n: None for n in sites.deterministic}
        keep = keeps_draws(spec, resample)
        chunk_size = chunk_size or auto_chunk_size(_floats_per_draw(model_trace), jnp.dtype(dtype).itemsize)

        def one(key):
            q = handlers.trace(handlers.seed(proposal, key)).get_trace(**data)
            p = handlers.trace(handlers.replay(model, q)).get_trace(**data)
            log_p = sum(reduce_log_prob(s, plate) for s in p.values() if s["type"] == "sample")
            log_q = sum(reduce_log_prob(q[n], plate) for n in latent)
            # deterministic sites go with joint weights; per-data-point weights resample each point's latents alone
            kept = [*latent, *(sites.deterministic if plate is None else ())] if keep else []
            return log_p - log_q, {n: (q[n] if n in latent else p[n])["value"] for n in kept}

        batched = jax.jit(jax.vmap(one))
        keys = jax.random.split(jax.random.PRNGKey(seed), num_samples)
        t0 = time.perf_counter()
        log_weights, latents = [], {}
        for i in tqdm(range(0, num_samples, chunk_size), disable=not progress_bar, desc="IS"):
            lw, values = batched(keys[i:i + chunk_size])
            log_weights.append(np.asarray(lw))
            for n, v in values.items():
                latents.setdefault(n, []).append(np.asarray(v))
        seconds = time.perf_counter() - t0
    return to_result(spec, "numpyro", np.concatenate(log_weights), {n: np.concatenate(v) for n, v in latents.items()},
                     plate_axes, sites.observed, seed, seconds)
