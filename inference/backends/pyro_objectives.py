"""IWAE, DReG, RWS and VIMCO (``inference.objectives``) as Pyro ELBOs, particles vectorized in a plate.

The K particles run at once in a plate left of the model's own plates, so networks see
inputs with one more leading dimension. DReG takes the model's and the guide's gradients
from two backward passes through one forward pass.
"""
from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.util import detach
from pyro.infer import ELBO
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample

from inference.backends.pyro_common import frames, reduce_log_prob
from inference.objectives import ESTIMATORS, check_particles, plate_and_scale, vimco_signals

PARTICLES = "_particles"


def sample_sites(tr) -> dict:
    return {n: s for n, s in tr.nodes.items() if s["type"] == "sample" and not site_is_subsample(s)}


def _params(tr) -> set:
    return {s["value"].unconstrained() for s in tr.nodes.values() if s["type"] == "param"}


class ImportanceWeightedELBO(ELBO):
    """The importance-weighted bound with K particles per data point, with the ``estimator``'s
    gradient: ``"iwae"``, ``"dreg"``, ``"rws"`` or ``"vimco"``. ``max_plate_nesting``: the model's."""

    def __init__(self, num_particles: int = 1, estimator: str = "iwae", max_plate_nesting: int = 1):
        if estimator not in ESTIMATORS:
            raise ValueError(f"unknown estimator {estimator!r}; valid choices: {', '.join(ESTIMATORS)}")
        check_particles(estimator, num_particles)
        super().__init__(num_particles=num_particles, max_plate_nesting=max_plate_nesting)
        self.estimator = estimator

    def _get_trace(self, model, guide, args, kwargs):
        """Model and guide traces of all K particles at once; for RWS, z held fixed in the model's."""
        particles = pyro.plate(PARTICLES, self.num_particles, dim=-(self.max_plate_nesting + 1))
        guide_tr = poutine.trace(particles(guide)).get_trace(*args, **kwargs)
        if self.estimator == "rws":
            for site in sample_sites(guide_tr).values():
                site["value"] = site["value"].detach()
        model_tr = poutine.trace(poutine.replay(particles(model), trace=guide_tr)).get_trace(*args, **kwargs)
        return model_tr, guide_tr

    def _log_densities(self, model, guide, args, kwargs):
        """log p(x_b, z_kb), log q(z_kb | x_b) and the part of log q of the guide's non-reparameterized
        sites, each (K, B) (or (K,) without a data plate), the plate's scale, and the model's and the
        guide's parameters. DReG holds q's parameters fixed inside log q."""
        model_tr, guide_tr = self._get_trace(model, guide, args, kwargs)
        latent = {n: s for n, s in sample_sites(guide_tr).items() if not s["is_observed"]}
        sites = sample_sites(model_tr)
        own = {n: tuple(f for f in frames(s) if f[0] != PARTICLES) for n, s in sites.items()}
        # the model's latents locate the data plate; log q sums every guide site (an autoguide's
        # auxiliary sites included, which carry the density of the model's latents)
        plate, scale = plate_and_scale({n: own[n] for n in latent if n in sites},
                                       {n: own[n] for n, s in sites.items() if s["is_observed"]},
                                       {n: float(s["scale"]) for n, s in sites.items()})
        log_p = sum(reduce_log_prob(s, plate, lead=1) for s in sites.values())
        log_q = log_score = 0.0
        for site in latent.values():
            if self.estimator == "dreg":
                site = {**site, "fn": detach(site["fn"])}
            log_q = log_q + reduce_log_prob(site, plate, lead=1)
            if not site["fn"].has_rsample:
                log_score = log_score + reduce_log_prob(site, plate, lead=1)
        return log_p, log_q, log_score, scale, _params(model_tr), _params(guide_tr)

    def _bound(self, log_w, scale):
        return scale * (torch.logsumexp(log_w, dim=0) - math.log(self.num_particles)).sum()

    def loss(self, model, guide, *args, **kwargs) -> float:
        with torch.no_grad():
            log_p, log_q, _, scale, _, _ = self._log_densities(model, guide, args, kwargs)
            return -float(self._bound(log_p - log_q, scale))

    def loss_and_grads(self, model, guide, *args, **kwargs) -> float:
        log_p, log_q, log_score, scale, theta, phi = self._log_densities(model, guide, args, kwargs)
        log_w = log_p - log_q
        bound = self._bound(log_w, scale)
        weights = torch.softmax(log_w.detach(), dim=0)
        if self.estimator == "iwae":
            (-bound).backward()
        elif self.estimator == "rws":  # z held fixed: wake-theta through log p, wake-phi through log q
            (-scale * (weights * (log_p + log_q)).sum()).backward()
        elif self.estimator == "vimco":  # the weighted gradient of log w, and the score term with its baselines
            signals = vimco_signals(log_w.detach(), lambda k: torch.eye(k, dtype=log_w.dtype, device=log_w.device),
                                    lambda a: torch.logsumexp(a, dim=1))
            (-scale * (weights * log_w + signals * log_score).sum()).backward()
        else:  # dreg: the model's gradient weighs by w, the guide's (a path gradient) by w^2
            for params, power in ((theta, 1), (phi, 2)):
                params = [p for p in params if p.requires_grad]
                if not params:
                    continue
                grads = torch.autograd.grad(-scale * (weights**power * log_w).sum(), params, retain_graph=True,
                                            allow_unused=True)
                for p, g in zip(params, grads, strict=True):
                    if g is not None:
                        p.grad = g if p.grad is None else p.grad + g
        return -float(bound.detach())


class Relaxed(Messenger):
    """``fn`` with its Bernoulli latent sites drawn from their Concrete relaxation, RelaxedBernoulli at
    ``temperature`` (Maddison et al. 2017; Jang et al. 2017): applied to model and guide, a
    reparameterized ELBO of the relaxed model, whose gradient is biased for the discrete one."""

    def __init__(self, temperature: float = 0.5):
        super().__init__()
        self.temperature = temperature

    def _pyro_sample(self, msg):
        if not msg["is_observed"]:
            msg["fn"] = _relaxed(msg["fn"], self.temperature)


def _relaxed(fn, temperature: float):
    if isinstance(fn, dist.Independent):
        return dist.Independent(_relaxed(fn.base_dist, temperature), fn.reinterpreted_batch_ndims)
    if isinstance(fn, dist.Bernoulli):
        return dist.RelaxedBernoulli(torch.as_tensor(temperature, dtype=fn.logits.dtype), logits=fn.logits)
    return fn
