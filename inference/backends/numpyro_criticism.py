"""Model criticism on NumPyro: pointwise log-likelihoods, posterior and prior predictive draws.

One model trace per draw, vectorized with ``jax.vmap``: the model runs with its data sites
unconditioned (``handlers.uncondition``) and its latent sites set to the draw
(``handlers.substitute``), so each data site yields both its log density at the observed
value (what ``numpyro.infer.util.log_likelihood`` computes) and a replicate drawn from the
same distribution (what ``Predictive`` draws), in one pass instead of two.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers

from inference.backends.numpyro_common import backend_context, to_backend, trace_sites


def _data_sites(trace: dict) -> dict:
    return {n: s for n, s in trace.items() if s["type"] == "sample" and s["infer"].get("was_observed")}


def _flat(draws: dict, lead: int) -> dict:
    return {k: jnp.reshape(jnp.asarray(v), (-1, *np.shape(v)[lead:])) for k, v in draws.items()}


def pointwise(spec, samples: dict, seed: int, device: str, dtype: str) -> tuple[dict, dict]:
    """Log-likelihood of each data site at the data, per draw and element, and data replicated from
    each draw: both ``{site: (chain, draw, *batch_shape)}`` (replicates ``(chain, draw, *site_shape)``).
    ``samples`` are the result's draws ``(chain, draw, ...)``; only the latent sites are used."""
    with backend_context(device, dtype):
        model, data = spec.model_fn("numpyro"), to_backend(spec.data, dtype)
        latent = trace_sites(model, data, seed).latent
        lead = next(iter(samples.values())).shape[:2]
        draws = _flat({k: v for k, v in samples.items() if k in latent}, 2)

        def one(key, draw):
            trace = handlers.trace(handlers.seed(handlers.substitute(handlers.uncondition(model), data=draw), key))
            sites = _data_sites(trace.get_trace(**data))
            return ({n: s["fn"].log_prob(s["infer"]["obs"]) for n, s in sites.items()},
                    {n: s["value"] for n, s in sites.items()})

        keys = jax.random.split(jax.random.PRNGKey(seed), int(np.prod(lead)))
        log_lik, replicates = jax.vmap(one)(keys, draws)
        return ({k: np.asarray(v).reshape(*lead, *v.shape[1:]) for k, v in log_lik.items()},
                {k: np.asarray(v).reshape(*lead, *v.shape[1:]) for k, v in replicates.items()})


def prior_draws(spec, num_samples: int, seed: int, device: str, dtype: str) -> tuple[dict, dict]:
    """``num_samples`` draws of the joint prior predictive: the latent and deterministic sites
    (``prior``) and the data sites drawn given them (``prior_predictive``), each ``(1, num_samples, ...)``."""
    with backend_context(device, dtype):
        model, data = spec.model_fn("numpyro"), to_backend(spec.data, dtype)

        def one(key):
            trace = handlers.trace(handlers.seed(handlers.uncondition(model), key)).get_trace(**data)
            observed = _data_sites(trace)
            return ({n: s["value"] for n, s in trace.items() if n not in observed
                     and s["type"] in ("sample", "deterministic")},
                    {n: s["value"] for n, s in observed.items()})

        prior, predictive = jax.vmap(one)(jax.random.split(jax.random.PRNGKey(seed), num_samples))
        return ({k: np.asarray(v)[None] for k, v in prior.items()},
                {k: np.asarray(v)[None] for k, v in predictive.items()})
