"""Gradients of a model with a few binary latents per data point, on NumPyro: the exact gradient of the
ELBO, or of the K-sample bound, by enumerating every value of the latents, and independent draws of an
estimator's gradient (``inference.gradient_check``).

Enumeration goes data point by data point: with every data point's latents set to one configuration c,
one trace gives log p(x_n, z_n = c) and log q(z_n = c | x_n) for each n, so C = 2^D configurations of
the D binary latents of a data point take C traces, and the K-sample bound C^K terms per data point.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax.lax import stop_gradient
from jax.scipy.special import logsumexp
from numpyro.handlers import replay, seed, substitute, trace
from numpyro.infer.elbo import ELBO
from numpyro.infer.util import log_density

from inference.backends.numpyro_common import frames, reduce_log_prob
from inference.objectives import plate_and_scale

MAX_TUPLES = 2**22  # K-tuples of configurations summed exactly (their log weights take 8 K bytes each)


def initial_params(model, guide, data: dict, seed_: int = 0) -> dict:
    """The values of every ``param`` site of model and guide (networks' weights included)."""
    guide_tr = trace(seed(guide, seed_)).get_trace(**data)
    model_tr = trace(replay(seed(model, seed_), guide_tr)).get_trace(**data)
    return {n: s["value"] for tr in (model_tr, guide_tr) for n, s in tr.items() if s["type"] == "param"}


def _latent_shapes(guide, params: dict, data: dict) -> dict:
    tr = trace(seed(substitute(guide, data=params), 0)).get_trace(**data)
    return {n: s["value"].shape for n, s in tr.items() if s["type"] == "sample" and not s["is_observed"]}


def log_weight_table(model, guide, params: dict, data: dict):
    """log p(x_n, z_n = c) and log q(z_n = c | x_n), each (C, N), over the C = 2^D configurations of a data
    point's D binary latents, and the data plate's scale. Every latent site must be binary and sit in
    the data plate at dim -1 with one event dimension, as the SBN's do."""
    shapes = _latent_shapes(guide, params, data)
    sizes = {n: int(np.prod(shape[1:])) for n, shape in shapes.items()}
    configs = np.array(list(itertools.product((0.0, 1.0), repeat=sum(sizes.values()))))
    num = next(iter(shapes.values()))[0]

    def one(config):
        values, start = {}, 0
        for name, shape in shapes.items():
            values[name] = jnp.broadcast_to(config[start:start + sizes[name]].reshape(shape[1:]), shape)
            start += sizes[name]
        guide_tr = trace(substitute(substitute(guide, data=params), data=values)).get_trace(**data)
        model_tr = trace(replay(substitute(model, data=params), guide_tr)).get_trace(**data)
        sites = {n: s for n, s in model_tr.items() if s["type"] == "sample"}
        plate, scale = plate_and_scale({n: frames(sites[n]) for n in shapes},
                                       {n: frames(s) for n, s in sites.items() if s["is_observed"]},
                                       {n: s["scale"] or 1.0 for n, s in sites.items()})
        log_p = sum(reduce_log_prob(s, plate) for s in sites.values())
        log_q = sum(reduce_log_prob(guide_tr[n], plate) for n in shapes)
        return log_p, log_q, scale

    found = one(jnp.asarray(configs[0], dtype=jnp.result_type(float)))
    if np.shape(found[0]) != (num,):
        raise ValueError(f"exact enumeration needs one log weight per data point; got shape {np.shape(found[0])}")
    log_p, log_q = jax.vmap(lambda c: one(c)[:2])(jnp.asarray(configs, dtype=jnp.result_type(float)))
    return log_p, log_q, found[2]


def exact_bound(model, guide, params: dict, data: dict, num_particles: int = 1):
    """The K-sample bound E[log 1/K sum_k w_k] summed over data points (K = 1: the ELBO), exactly: a
    sum over the C^K configurations of the K samples of each data point."""
    log_p, log_q, scale = log_weight_table(model, guide, params, data)
    log_w = log_p - log_q
    num_configs = log_w.shape[0]
    if num_configs**num_particles > MAX_TUPLES:
        raise ValueError(f"the exact {num_particles}-sample bound sums {num_configs}^{num_particles} tuples per data "
                         f"point, more than {MAX_TUPLES}; use fewer latents or particles")
    tuples = np.array(list(itertools.product(range(num_configs), repeat=num_particles)))  # (C^K, K)
    log_prob = log_q[tuples].sum(1)  # (C^K, N): the probability of each K-tuple of draws
    bound = logsumexp(log_w[tuples], axis=1) - np.log(num_particles)
    return scale * jnp.sum(jnp.exp(log_prob) * bound)


def exact_log_evidence(model, guide, params: dict, data: dict):
    """log p(x) = sum_n log sum_c p(x_n, z_n = c), exactly (the bounds' limit as K grows)."""
    log_p, _, scale = log_weight_table(model, guide, params, data)
    return scale * jnp.sum(logsumexp(log_p, axis=0))


def exact_gradient(model, guide, params: dict, data: dict, num_particles: int = 1) -> dict:
    """The gradient of ``exact_bound`` (the ELBO for ``num_particles=1``) with respect to ``params``."""
    return jax.jit(jax.grad(lambda p: exact_bound(model, guide, p, data, num_particles)))(params)


def gradient_draws(elbo, model, guide, params: dict, data: dict, num_draws: int, seed_: int = 0) -> dict:
    """``num_draws`` independent draws of ``elbo``'s estimate of the bound's gradient (that is, of minus
    its loss's gradient) at ``params``: ``{param: (num_draws, ...)}``."""
    keys = jax.random.split(jax.random.PRNGKey(seed_), num_draws)
    grad = jax.grad(lambda p, key: -elbo.loss(key, p, model, guide, **data))
    return jax.jit(jax.vmap(grad, in_axes=(None, 0)))(params, keys)


class ScoreFunctionELBO(ELBO):
    """The plain score-function estimator (Williams 1992; Ranganath et al. 2014's BBVI without control
    variates): the score of every non-reparameterized guide site weighed by the whole ELBO, of all the
    data and every site, with no Rao-Blackwellization. Here to be measured against the others."""

    def loss(self, rng_key, param_map, model, guide, *args, **kwargs):
        def particle(key):
            log_q, guide_tr = log_density(seed(guide, key), args, kwargs, param_map)
            latent = {n: s["value"] for n, s in guide_tr.items() if s["type"] == "sample" and not s["is_observed"]}
            log_p, _ = log_density(model, args, kwargs, {**param_map, **latent})
            score = sum(jnp.sum(s["fn"].log_prob(s["value"]) * (s["scale"] or 1.0)) for n, s in guide_tr.items()
                        if n in latent and not s["fn"].has_rsample)
            elbo = log_p - log_q
            surrogate = stop_gradient(elbo) * score
            return elbo + surrogate - stop_gradient(surrogate)

        return -jnp.mean(jax.vmap(particle)(jax.random.split(rng_key, self.num_particles)))
