"""Adversarial and MMD training of implicit models on NumPyro.

The model runs under ``handlers.uncondition``: its data site draws generated points, a
differentiable function of the generator's weights (the ``numpyro.param`` sites its networks
register). Training is compiled: each chunk of generator updates is one ``lax.scan``, each
update ``discriminator_steps`` discriminator updates (adversarial) then one generator update,
or one step down the minibatch MMD² (mmd). Every update sees a fresh minibatch of the data.
An update whose loss or gradients are not finite is not applied and freezes the run there;
``run`` then raises a ``TrainingError`` holding the parameters that gave the last finite losses.
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
from inference.backends.numpyro_svi import gather_batch, with_batch_indices
from inference.discrepancies import discriminator_loss, generator_loss, mmd_loss
from inference.likelihood_free import (
    DISCRIMINATOR,
    LOSS_NAMES,
    check_reparameterized,
    data_site,
    discriminator_factory,
)
from inference.minibatch import batch_plan, check_batch_size
from inference.result import InferenceResult
from ppl_models.errors import TrainingError
from ppl_models.nets import network_seed, param_name

B1 = 0.5  # Adam's first-moment decay, as is usual for adversarial training
CHUNK = 500  # generator updates per compiled scan


class Generator:
    """Generated points of the model's data site, one per point of a minibatch, as a pure
    function of the generator's parameters and a key."""

    def __init__(self, spec, model, site: str):
        num_data = int(np.shape(spec.data[spec.minibatch.keys[0]])[0])
        self.model, self.site = with_batch_indices(handlers.uncondition(model), num_data), site
        self.spec = spec

    def init(self, key, batch: dict) -> dict:
        trace = handlers.trace(handlers.seed(self.model, key)).get_trace(**batch)
        fn = trace[self.site]["fn"]
        check_reparameterized(self.spec, self.site, fn, fn.has_rsample)
        return {name: s["value"] for name, s in trace.items() if s["type"] == "param"}

    def __call__(self, params: dict, key, batch: dict):
        model = handlers.substitute(handlers.seed(self.model, key), data=params)
        return handlers.trace(model).get_trace(**batch)[self.site]["value"]


def _flat(points):
    return points.reshape(points.shape[0], -1)


def _finite(loss, grads):
    return jnp.isfinite(loss) & jnp.all(jnp.stack([jnp.isfinite(g).all() for g in jax.tree.leaves(grads)]))


def _where(ok, new, old):
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


class Trainer:
    """The compiled update of one method: ``state -> state`` for a chunk of generator updates."""

    def __init__(self, method: str, opts: dict, generate: Generator, critic, gather):
        self.method, self.opts, self.generate, self.critic, self.gather = method, opts, generate, critic, gather
        self.optim = Adam(opts["learning_rate"], b1=B1)
        self.batches_per_step = opts["discriminator_steps"] + 1 if method == "adversarial" else 1
        self.chunk = jax.jit(self._chunk)

    def logits(self, d_params, points):
        from ppl_models.nets.equinox_nets import with_parameters

        return with_parameters(self.critic, d_params)(_flat(points))[..., 0]

    def d_loss(self, d_params, g_params, key, batch):
        fake = jax.lax.stop_gradient(self.generate(g_params, key, batch))
        site = self.generate.site
        return discriminator_loss(self.logits(d_params, batch[site]), self.logits(d_params, fake), jnp,
                                  self.opts["label_smoothing"])

    def g_loss(self, g_params, d_params, key, batch):
        if self.method == "mmd":
            real, fake = _flat(batch[self.generate.site]), _flat(self.generate(g_params, key, batch))
            return mmd_loss(real, fake, jax.lax.stop_gradient(fake), jnp, self.opts["kernel"], self.opts["bandwidth"])
        return generator_loss(self.logits(d_params, self.generate(g_params, key, batch)),
                              self.opts["generator_loss"], jnp)

    def _update(self, opt_state, loss_fn, *args):
        loss, grads = jax.value_and_grad(loss_fn)(self.optim.get_params(opt_state), *args)
        return self.optim.update(grads, opt_state), _finite(loss, grads), loss

    def _step(self, carry, inputs):
        """One generator update (after the discriminator's), applied only if every loss and gradient
        in it is finite; the first that is not freezes the state and ``previous``, the state
        before the last finite step."""
        (g_state, d_state), previous, ok = carry
        idx, keys, data = inputs
        new_d, new_g, finite, losses = d_state, g_state, jnp.array(True), []
        for i in range(self.batches_per_step - 1):  # the discriminator's updates
            new_d, good, loss = self._update(new_d, self.d_loss, self.optim.get_params(g_state), keys[i, 0],
                                             self.gather(data, idx[i], keys[i, 1]))
            finite, losses = finite & good, [*losses, loss]
        new_g, good, loss = self._update(g_state, self.g_loss, self.optim.get_params(new_d), keys[-1, 0],
                                         self.gather(data, idx[-1], keys[-1, 1]))
        ok_now = ok & finite & good
        state = (g_state, d_state)
        carry = (_where(ok_now, (new_g, new_d), state), _where(ok_now, state, previous), ok_now)
        row = [jnp.mean(jnp.stack(losses)), loss] if losses else [loss]
        return carry, (jnp.stack(row), ok_now)

    def _chunk(self, state, idx, keys, data):
        return jax.lax.scan(lambda s, x: self._step(s, (*x, data)), state, (idx, keys))


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    init_key, train_key, perm_key, draw_key = jax.random.split(jax.random.PRNGKey(seed), 4)
    with backend_context(device, dtype):
        data = to_backend(spec.data, dtype)
        (model,) = with_networks(spec, seed, dtype, model)
        sites = trace_sites(model, data, seed)
        site = data_site(spec, sites.observed)
        batch_size, keys_ = opts["batch_size"], spec.minibatch.keys
        steps_per_epoch = check_batch_size(spec, batch_size, method)
        num_data = int(np.shape(spec.data[keys_[0]])[0])
        grey = {k: jnp.asarray(v) for k, v in spec.minibatch.binarize.items()}
        arrays = {k: v for k, v in data.items() if isinstance(v, jax.Array)}

        def gather(arrays, idx, key):
            return gather_batch({**data, **arrays}, keys_, grey, idx, key, dtype)

        generate = Generator(spec, model, site)
        g_params = generate.init(init_key, gather(arrays, jnp.arange(batch_size), init_key))
        critic, d_params = None, {}
        if method == "adversarial":
            from ppl_models.nets.equinox_nets import named_parameters

            factory = discriminator_factory(opts["discriminator"], int(np.prod(sites.observed[site].shape[1:])))
            critic = factory.build("numpyro", network_seed(seed, DISCRIMINATOR), dtype)
            d_params = named_parameters(critic)
        trainer = Trainer(method, opts, generate, critic, gather)
        per = trainer.batches_per_step

        def indices(first: int, last: int):
            """Minibatch indices of generator updates [first, last): (updates, per, batch_size)."""
            parts = []
            for epoch, a, b in batch_plan(first * per, last * per, steps_per_epoch):
                perm = jax.random.permutation(jax.random.fold_in(perm_key, epoch), num_data)
                offset = epoch * steps_per_epoch
                parts.append(perm[(a - offset) * batch_size:(b - offset) * batch_size])
            return jnp.concatenate(parts).reshape(last - first, per, batch_size)

        start = (trainer.optim.init(g_params), trainer.optim.init(d_params))
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
        shaped = (lambda a: a) if method == "adversarial" else (lambda a: a[:, 0])

        def params_of_state(players) -> dict:
            g, d = (to_numpy(trainer.optim.get_params(s)) for s in players)
            return g | {param_name(DISCRIMINATOR, k): v for k, v in d.items()}

        if not bool(state[2]):
            partial = InferenceResult(model=spec.name, backend="numpyro", method=method, samples={},
                                      losses=shaped(losses[:failed + 1]), params=params_of_state(state[1]))
            last = float(losses[failed - 1, -1]) if failed else None
            raise TrainingError(failed, last, partial, "a loss or gradient is not finite")
        g_params = trainer.optim.get_params(state[0][0])
        batch = gather(arrays, jnp.arange(batch_size), draw_key)  # its values go unused: the data site is drawn
        draw = jax.jit(lambda params, key: generate(params, key, batch))
        points = [draw(g_params, jax.random.fold_in(draw_key, i)) for i in range(-(-opts["num_samples"] // batch_size))]
        predictive = {site: np.concatenate([np.asarray(p) for p in points])[:opts["num_samples"]][None]} if points \
            else {}
        t2 = time.perf_counter()
        params = params_of_state(state[0])
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method, samples={}, posterior_predictive=predictive,
        losses=shaped(losses), params=params, timing={"optimization": t1 - t0, "sampling": t2 - t1},
        info={"loss_names": list(LOSS_NAMES[method]), "data_site": site},
    )
