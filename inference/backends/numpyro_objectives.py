"""IWAE, DReG, RWS and VIMCO (``inference.objectives``) as NumPyro ELBOs, particles vectorized with vmap.

``loss`` returns -(stop_gradient(bound) + surrogate - stop_gradient(surrogate)): the bound's
value, the surrogate's gradient. DReG's two parameter groups (model, guide) weigh the same
log weights differently, so its bound carries its gradient itself (``_dreg_bound``): one
forward pass, pulled back once per group.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.lax import stop_gradient
from jax.scipy.special import logsumexp
from numpyro.handlers import replay, seed, substitute, trace
from numpyro.infer.elbo import ELBO
from numpyro.primitives import Messenger

from inference.backends.numpyro_common import frames, reduce_log_prob
from inference.objectives import ESTIMATORS, check_particles, plate_and_scale, vimco_signals


def _sample_sites(tr: dict) -> dict:
    return {n: s for n, s in tr.items() if s["type"] == "sample"}


class ImportanceWeightedELBO(ELBO):
    """The importance-weighted bound with K particles per data point, with the ``estimator``'s
    gradient: ``"iwae"``, ``"dreg"``, ``"rws"`` or ``"vimco"``."""

    def __init__(self, num_particles: int = 1, estimator: str = "iwae"):
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; valid choices: {', '.join(ESTIMATORS)}")
        check_particles(estimator, num_particles)
        super().__init__(num_particles=num_particles)
        self.estimator = estimator

    @property
    def can_infer_discrete(self) -> bool:
        """VIMCO's score term and RWS's wake-phase gradients need no reparameterization: discrete
        latents are theirs to train (NumPyro's SVI warns otherwise)."""
        return self.estimator in ("vimco", "rws")

    def _log_densities(self, keys, params, model, guide, args, kwargs, hold_q=False, hold_z=False):
        """log p(x_b, z_kb), log q(z_kb | x_b) and the part of log q of the guide's non-reparameterized sites,
        each (K, B) (or (K,) without a data plate), and the plate's scale. ``hold_q``: q's parameters
        held fixed in log q; ``hold_z``: z held fixed."""
        found = {}

        def particle(key):
            guide_tr = trace(seed(substitute(guide, data=params), key)).get_trace(*args, **kwargs)
            latent = {n: s for n, s in _sample_sites(guide_tr).items() if not s["is_observed"]}
            if hold_z:
                guide_tr = {n: {**s, "value": stop_gradient(s["value"])} if n in latent else s
                            for n, s in guide_tr.items()}
            model_tr = _sample_sites(trace(replay(substitute(model, data=params), guide_tr)).get_trace(*args, **kwargs))
            # the model's latents locate the data plate; log q sums every guide site (an
            # autoguide's auxiliary sites included)
            plate, scale = plate_and_scale({n: frames(model_tr[n]) for n in latent if n in model_tr},
                                           {n: frames(s) for n, s in model_tr.items() if s["is_observed"]},
                                           {n: s["scale"] or 1.0 for n, s in model_tr.items()})
            found["scale"] = scale
            log_p = sum(reduce_log_prob(s, plate) for s in model_tr.values())
            log_q = log_score = 0.0
            for name in latent:
                site = guide_tr[name]
                if hold_q:
                    site = {**site, "fn": jax.tree_util.tree_map(stop_gradient, site["fn"])}
                log_q = log_q + reduce_log_prob(site, plate)
                if not site["fn"].has_rsample:
                    log_score = log_score + reduce_log_prob(site, plate)
            return log_p, log_q, log_score

        log_p, log_q, log_score = jax.vmap(particle)(keys)
        return log_p, log_q, log_score, found["scale"]

    def loss(self, rng_key, param_map, model, guide, *args, **kwargs):
        keys = jax.random.split(rng_key, self.num_particles)
        log_k = jnp.log(self.num_particles)
        if self.estimator == "iwae":
            log_p, log_q, _, scale = self._log_densities(keys, param_map, model, guide, args, kwargs)
            return -scale * jnp.sum(logsumexp(log_p - log_q, axis=0) - log_k)
        if self.estimator == "dreg":
            def log_weights(params):  # log w with q's parameters held inside log q: z carries the path
                log_p, log_q, _, scale = self._log_densities(keys, params, model, guide, args, kwargs, hold_q=True)
                return log_p - log_q, jnp.asarray(scale)

            return -_dreg_bound(log_weights, param_map, _param_names(guide, param_map, keys[0], args, kwargs), log_k)
        if self.estimator == "rws":
            log_p, log_q, _, scale = self._log_densities(keys, param_map, model, guide, args, kwargs, hold_z=True)
            log_w = log_p - log_q
            surrogate = scale * jnp.sum(stop_gradient(jax.nn.softmax(log_w, axis=0)) * (log_p + log_q))
        else:  # vimco: the weighted gradient of log w, and the score term with its baselines
            log_p, log_q, log_score, scale = self._log_densities(keys, param_map, model, guide, args, kwargs)
            log_w = log_p - log_q
            signals = vimco_signals(stop_gradient(log_w), jnp.eye, lambda a: logsumexp(a, axis=1))
            surrogate = scale * jnp.sum(stop_gradient(jax.nn.softmax(log_w, axis=0)) * log_w + signals * log_score)
        bound = scale * jnp.sum(logsumexp(log_w, axis=0) - log_k)
        return -(stop_gradient(bound) + surrogate - stop_gradient(surrogate))


def _dreg_bound(log_weights, params: dict, guide_names: set, log_k):
    """The bound sum_b log (1/K sum_k w_kb), with DReG's gradient: the model's parameters get
    sum_k wt_kb grad log w_kb and the guide's sum_k wt_kb^2 grad log w_kb, where ``log_weights(params)``
    -> (log w, the plate's scale) holds q's parameters inside log q, so the guide's gradient is the path
    through z. One forward pass of the model and guide, pulled back twice, as one writes DReG by hand
    (``benchmarks/vae_reference.py``); XLA drops the half of each pullback that is not kept."""
    @jax.custom_vjp
    def bound(params):
        log_w, scale = log_weights(params)
        return scale * jnp.sum(logsumexp(log_w, axis=0) - log_k)

    def forward(params):
        log_w, pullback, scale = jax.vjp(log_weights, params, has_aux=True)
        weights = jax.nn.softmax(log_w, axis=0)
        return scale * jnp.sum(logsumexp(log_w, axis=0) - log_k), (pullback, weights, scale)

    def backward(residuals, cotangent):
        pullback, weights, scale = residuals
        (model_grads,) = pullback(cotangent * scale * weights)
        (guide_grads,) = pullback(cotangent * scale * weights**2)
        return ({k: guide_grads[k] if k in guide_names else model_grads[k] for k in model_grads},)

    bound.defvjp(forward, backward)
    return bound(params)


def _param_names(guide, param_map, key, args, kwargs) -> set[str]:
    """Names of the parameters the guide registers."""
    tr = trace(seed(substitute(guide, data=param_map), key)).get_trace(*args, **kwargs)
    return {n for n, s in tr.items() if s["type"] == "param"}


class Relaxed(Messenger):
    """``fn`` with its Bernoulli latent sites drawn from their Concrete relaxation, RelaxedBernoulli at
    ``temperature`` (Maddison et al. 2017; Jang et al. 2017): applied to model and guide, a
    reparameterized ELBO of the relaxed model, whose gradient is biased for the discrete one."""

    def __init__(self, fn=None, temperature: float = 0.5):
        self.temperature = temperature
        super().__init__(fn)

    def process_message(self, msg):
        if msg["type"] == "sample" and not msg["is_observed"]:
            msg["fn"] = _relaxed(msg["fn"], self.temperature)


def _relaxed(fn, temperature: float):
    if isinstance(fn, dist.Independent):
        return dist.Independent(_relaxed(fn.base_dist, temperature), fn.reinterpreted_batch_ndims)
    if isinstance(fn, dist.ExpandedDistribution):
        return _relaxed(fn.base_dist, temperature).expand(fn.batch_shape)
    if isinstance(fn, (dist.BernoulliLogits, dist.BernoulliProbs)):
        return dist.RelaxedBernoulliLogits(temperature, fn.logits)
    return fn
