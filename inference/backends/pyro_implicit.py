"""Two-player and kernel training on Pyro: adversarial and MMD fits of implicit models, and
adversarial variational Bayes (AVB) of a model with an implicit guide.

Every method is a ``Game``: one or two players (parameter groups, each with its Adam), and
per step the losses they descend, each on a fresh minibatch. Updates are applied only when
their loss and gradients are finite; the first that is not stops the run with a
``TrainingError`` holding the parameters that gave the last finite losses.

- ``adversarial``: the model runs under ``poutine.uncondition``, so its data site draws
  generated points with a gradient to the generator's weights. ``discriminator_steps``
  discriminator updates (their loss with its gradient penalty, if any), then one generator update.
- ``mmd``: one player, the generator, descends the minibatch MMD².
- ``avb``: the guide draws z = encoder(x, noise); the discriminator T(x, z) learns
  log q(z | x) - log p(z) by telling guide draws from prior draws (``discriminator_steps``
  updates), and the model and guide
  ascend E_q[log p(x | z) - T(x, z)], the ELBO with T in place of the intractable log ratio. With
  ``adaptive_contrast`` m, T contrasts q with the Gaussian of its own mean and sd instead
  (``inference.likelihood_free.adaptive_contrast``).
"""
from __future__ import annotations

import itertools
import time

import numpy as np
import pyro
import torch
from pyro import poutine
from tqdm.auto import tqdm

from inference.backends.pyro_common import (
    backend_context,
    gradients_finite,
    start,
    to_backend,
    to_numpy,
    trace_sites,
    with_networks,
)
from inference.backends.pyro_svi import Minibatches
from inference.discrepancies import (
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    mmd_loss,
    penalty_points,
    penalty_weight,
)
from inference.likelihood_free import (
    DISCRIMINATOR,
    LOSS_NAMES,
    adaptive_contrast,
    check_reparameterized,
    data_site,
    discriminator_factory,
    discriminator_input_size,
    latent_site,
)
from inference.result import InferenceResult
from inference.sites import check_guide_matches
from ppl_models.errors import TrainingError
from ppl_models.nets import network_seed, param_name

BETAS = (0.5, 0.999)


class ScheduledAdam:
    """torch's Adam (betas ``BETAS``) whose step size falls exponentially, by ``decay`` over
    ``num_updates`` updates (torch's ``ExponentialLR``, stepped after every update)."""

    def __init__(self, params, learning_rate: float, decay: float, num_updates: int):
        self.optimizer = torch.optim.Adam(params, lr=learning_rate, betas=BETAS)
        self.schedule = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=decay ** (1 / num_updates))

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        self.optimizer.step()
        self.schedule.step()


class NotFinite(Exception):
    """An update's loss or gradient is not finite; it was not applied."""


def update(loss: torch.Tensor, optimizer: ScheduledAdam, params: list, player: str) -> float:
    """Back-propagate ``loss`` and step ``optimizer``; ``NotFinite`` if the loss or a gradient is not finite."""
    optimizer.zero_grad()
    if not torch.isfinite(loss):
        raise NotFinite(f"the {player}'s loss is not finite")
    loss.backward()
    if not gradients_finite(params):
        raise NotFinite(f"the {player}'s gradient is not finite")
    optimizer.step()
    return float(loss.detach())


def _flat(points: torch.Tensor) -> torch.Tensor:
    return points.reshape(points.shape[0], -1)


def penalty(logit, real, fake, uniform, kind: str, weight: float) -> torch.Tensor:
    """Gradient penalty ``kind`` (``inference.discrepancies``) of the discriminator ``logit``, a
    function of flat points (n, d) to their logits (n,). Each logit depends on its own point only,
    so the gradient of their sum is every point's own gradient; the graph is kept
    (``create_graph``) for the penalty's own gradient to reach the discriminator's weights."""
    points = penalty_points(real, fake, uniform, kind).detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(logit(points).sum(), points, create_graph=True)
    return gradient_penalty(grads, kind, weight, torch)


class Game:
    """What the methods share: the data site, the model's own parameters (registered on a first
    run), and the discriminator when there is one."""

    def __init__(self, spec, model, guide, batches: Minibatches, method: str, seed: int, opts: dict, dtype: str,
                 device):
        self.opts = opts
        self.sites = trace_sites(model, batches.data)
        self.site = data_site(spec, self.sites.observed)
        self.model, self.guide = batches.plate_indices(model), guide and batches.plate_indices(guide)
        self.critic = None
        if method in ("adversarial", "avb"):
            size = discriminator_input_size(spec, self.sites, self.site, method)
            factory = discriminator_factory(opts["discriminator"], size)
            self.critic = factory.build("pyro", network_seed(seed, DISCRIMINATOR), dtype).to(device)
            learning_rate = opts.get("discriminator_learning_rate") or opts["learning_rate"]
            # each player's schedule counts its own updates: the discriminator makes discriminator_steps a step
            self.d_optim = ScheduledAdam(self.critic.parameters(), learning_rate, opts["lr_decay"],
                                         opts["num_steps"] * opts["discriminator_steps"])

    def start_players(self):
        """Adam for the parameters the model (and guide) registered on their first runs."""
        self.params = [p.unconstrained() for p in pyro.get_param_store().values()]
        self.optim = ScheduledAdam(self.params, self.opts["learning_rate"], self.opts["lr_decay"],
                                   self.opts["num_steps"])

    def logit(self, *inputs) -> torch.Tensor:
        return self.critic(*map(_flat, inputs))[..., 0]

    def snapshot(self) -> dict:
        """Copies of every parameter, named as in the result (in-place updates leave them be)."""
        params = {k: v.detach().clone() for k, v in pyro.get_param_store().items()}
        if self.critic is not None:
            params |= {param_name(DISCRIMINATOR, k): v.detach().clone() for k, v in self.critic.state_dict().items()}
        return params


class Generated(Game):
    """An implicit model fitted by its samples: ``adversarial`` or ``mmd``."""

    def __init__(self, spec, model, guide, batches, method, seed, opts, dtype, device):
        super().__init__(spec, model, None, batches, method, seed, opts, dtype, device)
        self.method, self.generator = method, poutine.uncondition(self.model)
        node = poutine.trace(self.generator).get_trace(**batches(0)).nodes[self.site]
        check_reparameterized(spec, self.site, node["fn"], node["fn"].has_rsample)
        self.start_players()
        self.decay = opts.get("generator_average", 0.0)
        self.average = [p.detach().clone() for p in self.params]

    def average_step(self) -> None:
        """One step of the exponential moving average of the generator's weights (Yazıcı et al.
        2019): decay * average + (1 - decay) * params."""
        with torch.no_grad():
            for average, param in zip(self.average, self.params, strict=True):
                average.mul_(self.decay).add_(param, alpha=1.0 - self.decay)

    def take_average(self) -> None:
        """The generator takes its averaged weights, once training is over (no average: the last iterate)."""
        if self.decay:
            with torch.no_grad():
                for average, param in zip(self.average, self.params, strict=True):
                    param.copy_(average)

    def generate(self, batch: dict) -> torch.Tensor:
        return poutine.trace(self.generator).get_trace(**batch).nodes[self.site]["value"]

    def step(self, next_batch) -> list[float]:
        if self.method == "mmd":
            batch = next_batch()
            real, fake = _flat(batch[self.site]), _flat(self.generate(batch))
            loss = mmd_loss(real, fake, fake.detach(), torch, self.opts["kernel"], self.opts["bandwidth"])
            return [update(loss, self.optim, self.params, "generator")]
        d_losses = []
        for _ in range(self.opts["discriminator_steps"]):
            d_losses.append(update(self.d_loss(next_batch()), self.d_optim, list(self.critic.parameters()),
                                   "discriminator"))
        loss = generator_loss(self.logit(self.generate(next_batch())), self.opts["generator_loss"], torch)
        losses = [float(np.mean(d_losses)), update(loss, self.optim, self.params, "generator")]
        if self.decay:
            self.average_step()
        return losses

    def d_loss(self, batch: dict) -> torch.Tensor:
        """The discriminator's loss on one minibatch, with its gradient penalty if it has one."""
        with torch.no_grad():
            fake = _flat(self.generate(batch))
        real = _flat(batch[self.site])
        loss = discriminator_loss(self.logit(real), self.logit(fake), torch, self.opts["label_smoothing"],
                                  self.opts["generator_loss"])
        kind = self.opts["gradient_penalty"]
        if kind is None:
            return loss
        uniform = torch.rand(real.shape[0], 1, dtype=real.dtype, device=real.device) if kind == "wgan_gp" else None
        return loss + penalty(self.logit, real, fake, uniform, kind, penalty_weight(kind, self.opts["penalty_weight"]))

    def draw(self, next_batch, num: int) -> dict:
        with torch.no_grad():
            points = [self.generate(next_batch()) for _ in range(-(-num // self.opts["batch_size"]))]
        return {self.site: torch.cat(points)[:num].cpu().numpy()[None]} if points else {}


class AdversarialVariationalBayes(Game):
    """A model with a likelihood and an implicit guide, fitted by AVB (Mescheder et al. 2017); with
    ``adaptive_contrast`` m, T(x, z~) tells standardized guide draws from N(0, I) draws
    (``inference.likelihood_free.adaptive_contrast``)."""

    def __init__(self, spec, model, guide, batches, method, seed, opts, dtype, device):
        super().__init__(spec, model, guide, batches, method, seed, opts, dtype, device)
        check_guide_matches(self.sites, trace_sites(guide, batches.data), f"of {spec.name!r}", density_needed=False)
        self.latent = latent_site(spec, self.sites.latent)
        self.draws = opts.get("adaptive_contrast", 0)
        poutine.trace(self.guide).get_trace(**batches(0))
        self.start_players()

    def _draw(self, batch, observed_only: bool):
        """One guide draw z and log p(x | z) (or log p(x, z)), scaled to the data set; and the scale."""
        guide_trace = poutine.trace(self.guide).get_trace(**batch)
        model_trace = poutine.trace(poutine.replay(self.model, trace=guide_trace)).get_trace(**batch)
        log_joint = model_trace.log_prob_sum(lambda name, site: site["is_observed"] or not observed_only)
        return guide_trace.nodes[self.latent]["value"], log_joint, model_trace.nodes[self.latent]["scale"]

    def _contrasted(self, z):
        """m draws z (m, B, ...): standardized, flat as (m * B, ...), and log r per draw (m, B)."""
        standardized, log_r = adaptive_contrast(z.reshape(*z.shape[:2], -1), torch)
        return standardized.reshape(-1, *z.shape[2:]), log_r

    def _tiled(self, batch):
        x = batch[self.site]
        return x.expand(self.draws, *x.shape).reshape(-1, *x.shape[1:])

    def step(self, next_batch) -> list[float]:
        d_losses = []
        for _ in range(self.opts["discriminator_steps"]):
            batch = next_batch()
            with torch.no_grad():
                if self.draws:
                    z = torch.stack([poutine.trace(self.guide).get_trace(**batch).nodes[self.latent]["value"]
                                     for _ in range(self.draws)])
                    z, x = self._contrasted(z)[0], self._tiled(batch)
                    prior_z = torch.randn_like(z)
                else:
                    z = poutine.trace(self.guide).get_trace(**batch).nodes[self.latent]["value"]
                    prior_z = poutine.trace(self.model).get_trace(**batch).nodes[self.latent]["value"]
                    x = batch[self.site]
            loss = discriminator_loss(self.logit(x, z), self.logit(x, prior_z), torch)
            d_losses.append(update(loss, self.d_optim, list(self.critic.parameters()), "discriminator"))
        batch = next_batch()
        if self.draws:  # E_q[log p(x, z) - log r(z | x) - T(x, z~)]
            z, log_joint, scale = zip(*(self._draw(batch, observed_only=False) for _ in range(self.draws)),
                                      strict=True)
            standardized, log_r = self._contrasted(torch.stack(z))
            log_ratio = (log_r.sum() + self.logit(self._tiled(batch), standardized).sum()) / self.draws
            elbo = torch.stack(log_joint).mean() - log_ratio * scale[0]
        else:  # T(x, z) stands in for log q(z | x) - log p(z), scaled up to the data set as the likelihood is
            z, log_likelihood, scale = self._draw(batch, observed_only=True)
            elbo = log_likelihood - self.logit(batch[self.site], z).sum() * scale
        return [float(np.mean(d_losses)), update(-elbo, self.optim, self.params, "model and guide")]

    def draw(self, next_batch, num: int) -> dict:
        return {}

    def take_average(self) -> None:
        pass


GAMES = {"adversarial": Generated, "mmd": Generated, "avb": AdversarialVariationalBayes}


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    with backend_context(device, dtype) as dev:
        data = to_backend(spec.data, dev)
        start(seed)
        guide = spec.guide_fn("pyro") if method == "avb" else None
        model, guide = with_networks(spec, seed, dev, model, guide)
        batches = Minibatches(spec, data, opts["batch_size"], dev)
        game = GAMES[method](spec, model, guide, batches, method, seed, opts, dtype, dev)
        counter = itertools.count()  # every update takes the next minibatch

        def next_batch() -> dict:
            return batches(next(counter))

        losses = np.full((opts["num_steps"], len(LOSS_NAMES[method])), np.nan)
        shaped = (lambda a: a) if losses.shape[1] > 1 else (lambda a: a[:, 0])
        t0 = time.perf_counter()
        previous, before = None, None  # the parameters at the start of the last step and of this one
        for step in tqdm(range(opts["num_steps"]), disable=not progress_bar, desc=method.upper()):
            previous, before = before, game.snapshot()
            try:
                losses[step] = game.step(next_batch)
            except NotFinite as e:
                params = to_numpy(previous if previous is not None else before)
                partial = InferenceResult(model=spec.name, backend="pyro", method=method, samples={},
                                          losses=shaped(losses[:step + 1]), params=params)
                raise TrainingError(step, float(losses[step - 1, -1]) if step else None, partial, str(e)) from None
        t1 = time.perf_counter()
        game.take_average()
        predictive = game.draw(next_batch, opts.get("num_samples", 0))
        t2 = time.perf_counter()
        params = to_numpy(game.snapshot())
    return InferenceResult(
        model=spec.name, backend="pyro", method=method, samples={}, posterior_predictive=predictive,
        losses=shaped(losses), params=params, timing={"optimization": t1 - t0, "sampling": t2 - t1},
        info={"loss_names": list(LOSS_NAMES[method]), "data_site": game.site},
    )
