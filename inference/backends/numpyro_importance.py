"""Importance sampling on NumPyro: proposal draws from the guide (or the prior), vectorized with vmap."""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers

from inference.backends.numpyro_common import backend_context, to_backend, trace_sites
from inference.importance import data_plate, to_result
from inference.sites import check_guide_matches


def _frames(site) -> tuple:
    return tuple((f.name, f.dim) for f in site["cond_indep_stack"])


def _reduce(site, plate) -> jnp.ndarray:
    """A site's log density, summed to a scalar, or to one value per element of ``plate``."""
    lp = site["fn"].log_prob(site["value"])
    if site.get("scale") is not None:
        lp = lp * site["scale"]
    if plate is None:
        return jnp.sum(lp)
    lp = jnp.moveaxis(lp, lp.ndim + plate[1], 0)
    return lp.reshape(lp.shape[0], -1).sum(-1)


def run(spec, model, *, method, seed, device, dtype, progress_bar, num_samples, guide, params, chunk_size):
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        sites = trace_sites(model, data, seed)
        proposal = model if guide == "prior" else spec.guide_fn("numpyro")
        if params:
            proposal = handlers.substitute(proposal, data={k: jnp.asarray(v) for k, v in params.items()})
        if guide == "spec":
            check_guide_matches(sites, trace_sites(proposal, data, seed), f"of {spec.name!r}")
        trace = handlers.trace(handlers.seed(proposal, seed)).get_trace(**data)
        model_trace = handlers.trace(handlers.replay(handlers.seed(model, seed), trace)).get_trace(**data)
        latent = {n: s for n, s in model_trace.items() if s["type"] == "sample" and not s["is_observed"]}
        observed = {n: s for n, s in model_trace.items() if s["type"] == "sample" and s["is_observed"]}
        plate = data_plate({n: _frames(s) for n, s in latent.items()}, {n: _frames(s) for n, s in observed.items()})
        plate_axes = {n: (np.ndim(s["value"]) - s["fn"].event_dim + plate[1]) if plate else None
                      for n, s in latent.items()}

        def one(key):
            q = handlers.trace(handlers.seed(proposal, key)).get_trace(**data)
            p = handlers.trace(handlers.replay(model, q)).get_trace(**data)
            log_p = sum(_reduce(s, plate) for s in p.values() if s["type"] == "sample")
            log_q = sum(_reduce(q[n], plate) for n in latent)
            return log_p - log_q, {n: q[n]["value"] for n in latent}

        batched = jax.jit(jax.vmap(one))
        keys = jax.random.split(jax.random.PRNGKey(seed), num_samples)
        t0 = time.perf_counter()
        chunks = [batched(keys[i:i + chunk_size]) for i in range(0, num_samples, chunk_size)]
        log_weights = np.concatenate([np.asarray(c[0]) for c in chunks])
        latents = {n: np.concatenate([np.asarray(c[1][n]) for c in chunks]) for n in latent}
        seconds = time.perf_counter() - t0
    return to_result(spec, "numpyro", log_weights, latents, plate_axes, sites.observed, seed, seconds)
