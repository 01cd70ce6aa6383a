"""Two-player and kernel training on NumPyro: adversarial and MMD fits of implicit models, and
adversarial variational Bayes (AVB) of a model with an implicit guide (as ``pyro_implicit``).

Every method is a ``Game``: pure losses of the model's (and guide's) parameters and of the
discriminator's. Training is compiled: each chunk of steps is one ``lax.scan``, each step
``discriminator_steps`` discriminator updates (adversarial and avb) then one update of the
model, or one step down the minibatch MMD² (mmd). Every update sees a fresh minibatch. A step
whose losses or gradients are not all finite is not applied and freezes the run there; ``run``
then raises a ``TrainingError`` holding the parameters that gave the last finite losses.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from numpyro.optim import Adam
from tqdm.auto import tqdm

from inference.backends.numpyro_common import backend_context, to_backend, to_numpy, trace_sites, with_networks
from inference.backends.numpyro_svi import exponential_decay, gather_batch, with_batch_indices
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
from inference.minibatch import batch_plan, check_batch_size
from inference.result import InferenceResult
from inference.sites import check_guide_matches
from ppl_models.errors import TrainingError
from ppl_models.nets import network_seed, param_name

B1 = 0.5  # Adam's first-moment decay, as is usual for adversarial training
CHUNK = 500  # generator updates per compiled scan


def _flat(points):
    return points.reshape(points.shape[0], -1)


def _finite(loss, grads):
    return jnp.isfinite(loss) & jnp.all(jnp.stack([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))


def _where(ok, new, old):
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def _params(trace) -> dict:
    return {name: s["value"] for name, s in trace.items() if s["type"] == "param"}


def penalty(logit, real, fake, uniform, kind: str, weight: float):
    """Gradient penalty ``kind`` (``inference.discrepancies``) of the discriminator ``logit``, a
    function of flat points (n, d) to their logits (n,). Each logit depends on its own point only,
    so the gradient of their sum is every point's own gradient, in one backward pass."""
    points = penalty_points(real, fake, uniform, kind)
    return gradient_penalty(jax.grad(lambda x: logit(x).sum())(points), kind, weight, jnp)


def _run(fn, params: dict, key, batch: dict):
    return handlers.trace(handlers.substitute(handlers.seed(fn, key), data=params)).get_trace(**batch)


class Game:
    """The two players' losses, pure functions of their parameters (the model's and guide's,
    ``g``; the discriminator's, ``d``), a key and a minibatch."""

    def __init__(self, spec, model, guide, sites, method: str, seed: int, opts: dict, dtype: str):
        num_data = int(np.shape(spec.data[spec.minibatch.keys[0]])[0])
        self.spec, self.opts, self.method = spec, opts, method
        self.site = data_site(spec, sites.observed)
        self.model, self.guide = (fn and with_batch_indices(fn, num_data) for fn in (model, guide))
        self.critic, self.d_params = None, {}
        if method in ("adversarial", "avb"):
            from ppl_models.nets.equinox_nets import named_parameters

            size = discriminator_input_size(spec, sites, self.site, method)
            factory = discriminator_factory(opts["discriminator"], size)
            self.critic = factory.build("numpyro", network_seed(seed, DISCRIMINATOR), dtype)
            self.d_params = named_parameters(self.critic)

    def logit(self, d_params, *inputs):
        from ppl_models.nets.equinox_nets import with_parameters

        return with_parameters(self.critic, d_params)(*map(_flat, inputs))[..., 0]


class Generated(Game):
    """An implicit model fitted by its samples: ``adversarial`` or ``mmd``."""

    def __init__(self, spec, model, guide, sites, method, seed, opts, dtype):
        super().__init__(spec, handlers.uncondition(model), None, sites, method, seed, opts, dtype)

    def init(self, key, batch: dict) -> dict:
        trace = handlers.trace(handlers.seed(self.model, key)).get_trace(**batch)
        fn = trace[self.site]["fn"]
        check_reparameterized(self.spec, self.site, fn, fn.has_rsample)
        return _params(trace)

    def generate(self, params: dict, key, batch: dict):
        return _run(self.model, params, key, batch)[self.site]["value"]

    def d_loss(self, d_params, g_params, key, batch):
        real, fake = _flat(batch[self.site]), _flat(jax.lax.stop_gradient(self.generate(g_params, key, batch)))
        loss = discriminator_loss(self.logit(d_params, real), self.logit(d_params, fake), jnp,
                                  self.opts["label_smoothing"], self.opts["generator_loss"])
        kind = self.opts["gradient_penalty"]
        if kind is None:
            return loss
        uniform = (jax.random.uniform(jax.random.fold_in(key, 1), (real.shape[0], 1), real.dtype)
                   if kind == "wgan_gp" else None)
        return loss + penalty(lambda x: self.logit(d_params, x), real, fake, uniform, kind,
                              penalty_weight(kind, self.opts["penalty_weight"]))

    def g_loss(self, g_params, d_params, key, batch):
        if self.method == "mmd":
            real, fake = _flat(batch[self.site]), _flat(self.generate(g_params, key, batch))
            return mmd_loss(real, fake, jax.lax.stop_gradient(fake), jnp, self.opts["kernel"], self.opts["bandwidth"])
        return generator_loss(self.logit(d_params, self.generate(g_params, key, batch)),
                              self.opts["generator_loss"], jnp)


class AdversarialVariationalBayes(Game):
    """A model with a likelihood and an implicit guide, fitted by AVB (Mescheder et al. 2017); with
    ``adaptive_contrast`` m, T(x, z~) tells standardized guide draws from N(0, I) draws
    (``inference.likelihood_free.adaptive_contrast``)."""

    def __init__(self, spec, model, guide, sites, method, seed, opts, dtype):
        super().__init__(spec, model, guide, sites, method, seed, opts, dtype)
        self.latent = latent_site(spec, sites.latent)
        self.draws = opts.get("adaptive_contrast", 0)

    def init(self, key, batch: dict) -> dict:
        guide_trace = handlers.trace(handlers.seed(self.guide, key)).get_trace(**batch)
        model_trace = handlers.trace(handlers.replay(handlers.seed(self.model, key), guide_trace)).get_trace(**batch)
        return _params(model_trace) | _params(guide_trace)

    def _tiled(self, batch):
        x = batch[self.site]
        return jnp.broadcast_to(x, (self.draws, *x.shape)).reshape(-1, *x.shape[1:])

    def d_loss(self, d_params, g_params, key, batch):
        guide_key, prior_key = jax.random.split(key)
        x = batch[self.site]
        if self.draws:
            z = jax.vmap(lambda k: _run(self.guide, g_params, k, batch)[self.latent]["value"])(
                jax.random.split(guide_key, self.draws))
            z = jax.lax.stop_gradient(adaptive_contrast(z.reshape(*z.shape[:2], -1), jnp)[0]).reshape(-1, *z.shape[2:])
            return discriminator_loss(self.logit(d_params, self._tiled(batch), z),
                                      self.logit(d_params, self._tiled(batch),
                                                 jax.random.normal(prior_key, z.shape, z.dtype)), jnp)
        z = jax.lax.stop_gradient(_run(self.guide, g_params, guide_key, batch)[self.latent]["value"])
        prior_z = jax.lax.stop_gradient(_run(self.model, g_params, prior_key, batch)[self.latent]["value"])
        return discriminator_loss(self.logit(d_params, x, z), self.logit(d_params, x, prior_z), jnp)

    def _log_joint(self, g_params, key, batch, observed_only: bool):
        """log p(x | z) (or log p(x, z)) of one guide draw, scaled to the data set; the draw and the scale."""
        guide_trace = _run(self.guide, g_params, key, batch)
        model = handlers.replay(handlers.substitute(handlers.seed(self.model, key), data=g_params), guide_trace)
        model_trace = handlers.trace(model).get_trace(**batch)
        sites = [s for s in model_trace.values() if s["type"] == "sample" and (s["is_observed"] or not observed_only)]
        log_joint = sum((s["fn"].log_prob(s["value"]) * (s["scale"] or 1.0)).sum() for s in sites)
        return log_joint, guide_trace[self.latent]["value"], model_trace[self.latent]["scale"] or 1.0

    def g_loss(self, g_params, d_params, key, batch):
        """-E_q[log p(x | z) - T(x, z)]: the negative ELBO, T standing in for log q(z | x) - log p(z);
        with adaptive contrast, -E_q[log p(x, z) - log r(z | x) - T(x, z~)] over the m draws."""
        if not self.draws:
            log_likelihood, z, scale = self._log_joint(g_params, key, batch, observed_only=True)
            return -(log_likelihood - self.logit(d_params, batch[self.site], z).sum() * scale)
        log_joint, z, scale = jax.vmap(lambda k: self._log_joint(g_params, k, batch, observed_only=False))(
            jax.random.split(key, self.draws))
        standardized, log_r = adaptive_contrast(z.reshape(*z.shape[:2], -1), jnp)
        log_ratio = self.logit(d_params, self._tiled(batch), standardized.reshape(-1, *z.shape[2:])).sum()
        return -(log_joint.mean() - scale[0] * (log_r.sum() + log_ratio) / self.draws)


GAMES = {"adversarial": Generated, "mmd": Generated, "avb": AdversarialVariationalBayes}


def moving_average(average: dict, params: dict, decay: float) -> dict:
    """One step of the exponential moving average of the generator's weights (Yazıcı et al. 2019):
    decay * average + (1 - decay) * params; with decay 0, the params themselves."""
    return jax.tree.map(lambda a, p: decay * a + (1.0 - decay) * p, average, params)


class Trainer:
    """The compiled update of one game: ``state -> state`` for a chunk of steps, each step the
    discriminator's updates (if any) then the model's (and guide's), whose moving average
    (``generator_average``; the last iterate without one) is the third player state."""

    def __init__(self, game: Game, opts: dict, gather):
        self.game, self.gather = game, gather
        self.batches_per_step = 1 + (game.critic is not None) * opts.get("discriminator_steps", 1)
        # each player's schedule counts its own updates: the discriminator makes discriminator_steps a step
        decay, num_steps = opts["lr_decay"], opts["num_steps"]
        self.optim = Adam(exponential_decay(opts["learning_rate"], decay, num_steps), b1=B1)
        self.d_optim = Adam(exponential_decay(opts.get("discriminator_learning_rate") or opts["learning_rate"], decay,
                                              num_steps * opts.get("discriminator_steps", 1)), b1=B1)
        self.decay = opts.get("generator_average", 0.0)
        self.chunk = jax.jit(self._chunk)

    def _update(self, optim, opt_state, loss_fn, *args):
        loss, grads = jax.value_and_grad(loss_fn)(optim.get_params(opt_state), *args)
        return optim.update(grads, opt_state), _finite(loss, grads), loss

    def _step(self, carry, inputs):
        """One step, applied only if every loss and gradient in it is finite; the first that is not
        freezes the state and ``previous``, the state before the last finite step."""
        (g_state, d_state, average), previous, ok = carry
        idx, keys, data = inputs
        new_d, finite, losses = d_state, jnp.array(True), []
        for i in range(self.batches_per_step - 1):  # the discriminator's updates
            new_d, good, loss = self._update(self.d_optim, new_d, self.game.d_loss, self.optim.get_params(g_state),
                                             keys[i, 0], self.gather(data, idx[i], keys[i, 1]))
            finite, losses = finite & good, [*losses, loss]
        new_g, good, loss = self._update(self.optim, g_state, self.game.g_loss, self.d_optim.get_params(new_d),
                                         keys[-1, 0], self.gather(data, idx[-1], keys[-1, 1]))
        ok_now = ok & finite & good
        state = (g_state, d_state, average)
        new = (new_g, new_d, moving_average(average, self.optim.get_params(new_g), self.decay))
        carry = (_where(ok_now, new, state), _where(ok_now, state, previous), ok_now)
        row = [jnp.mean(jnp.stack(losses)), loss] if losses else [loss]
        return carry, (jnp.stack(row), ok_now)

    def _chunk(self, state, idx, keys, data):
        return jax.lax.scan(lambda s, x: self._step(s, (*x, data)), state, (idx, keys))

def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    init_key, train_key, perm_key, draw_key = jax.random.split(jax.random.PRNGKey(seed), 4)
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        guide = spec.guide_fn("numpyro") if method == "avb" else None
        model, guide = with_networks(spec, seed, dtype, model, guide)
        sites = trace_sites(model, data, seed)
        if guide is not None:
            check_guide_matches(sites, trace_sites(guide, data, seed), f"of {spec.name!r}", density_needed=False)
        batch_size, keys_ = opts["batch_size"], spec.minibatch.keys
        steps_per_epoch = check_batch_size(spec, batch_size, method)
        num_data = int(np.shape(spec.data[keys_[0]])[0])
        grey = {k: jnp.asarray(v) for k, (_, v) in spec.minibatch.grey.items()}
        kinds = {k: kind for k, (kind, _) in spec.minibatch.grey.items()}
        arrays = {k: v for k, v in data.items() if isinstance(v, jax.Array)}

        def gather(arrays, idx, key):
            return gather_batch({**data, **arrays}, keys_, grey, idx, key, dtype, kinds)

        game = GAMES[method](spec, model, guide, sites, method, seed, opts, dtype)
        g_params = game.init(init_key, gather(arrays, jnp.arange(batch_size), init_key))
        trainer = Trainer(game, opts, gather)
        per = trainer.batches_per_step

        def indices(first: int, last: int):
            """Minibatch indices of steps [first, last): (steps, minibatches per step, batch_size)."""
            parts = []
            for epoch, a, b in batch_plan(first * per, last * per, steps_per_epoch):
                perm = jax.random.permutation(jax.random.fold_in(perm_key, epoch), num_data)
                offset = epoch * steps_per_epoch
                parts.append(perm[(a - offset) * batch_size:(b - offset) * batch_size])
            return jnp.concatenate(parts).reshape(last - first, per, batch_size)

        start = (trainer.optim.init(g_params), trainer.d_optim.init(game.d_params), g_params)
        state = (start, start, jnp.array(True))
        losses, num_steps = [], opts["num_steps"]
        t0 = time.perf_counter()
        with tqdm(total=num_steps, disable=not progress_bar, desc=method.upper()) as bar:
            for first in range(0, num_steps, CHUNK):
                last = min(first + CHUNK, num_steps)
                keys = jax.vmap(lambda s: jax.random.split(jax.random.fold_in(train_key, s), per * 2))(
                    jnp.arange(first, last)).reshape(last - first, per, 2, 2)
                state, (chunk_losses, ok) = trainer.chunk(state, indices(first, last), keys, arrays)
                losses.append(np.asarray(chunk_losses))
                bar.update(last - first)
                if not bool(state[2]):
                    failed = first + int(np.argmin(np.asarray(ok)))
                    break
        t1 = time.perf_counter()
        losses = np.concatenate(losses)
        shaped = (lambda a: a) if losses.shape[1] > 1 else (lambda a: a[:, 0])

        def params_of_state(players) -> dict:
            """The generator's averaged parameters (its last iterate without an average) and the discriminator's."""
            g, d = to_numpy(players[2]), to_numpy(trainer.d_optim.get_params(players[1]))
            return g | {param_name(DISCRIMINATOR, k): v for k, v in d.items()}

        if not bool(state[2]):
            partial = InferenceResult(model=spec.name, backend="numpyro", method=method, samples={},
                                      losses=shaped(losses[:failed + 1]), params=params_of_state(state[1]))
            last = float(losses[failed - 1, -1]) if failed else None
            raise TrainingError(failed, last, partial, "a loss or gradient is not finite")
        predictive = {}
        if opts.get("num_samples"):
            g_params = state[0][2]
            batch = gather(arrays, jnp.arange(batch_size), draw_key)  # its values go unused: the site is drawn
            draw = jax.jit(lambda params, key: game.generate(params, key, batch))
            points = [np.asarray(draw(g_params, jax.random.fold_in(draw_key, i)))
                      for i in range(-(-opts["num_samples"] // batch_size))]
            predictive = {game.site: np.concatenate(points)[:opts["num_samples"]][None]}
        t2 = time.perf_counter()
        params = params_of_state(state[0])
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method, samples={}, posterior_predictive=predictive,
        losses=shaped(losses), params=params, timing={"optimization": t1 - t0, "sampling": t2 - t1},
        info={"loss_names": list(LOSS_NAMES[method]), "data_site": game.site},
    )
