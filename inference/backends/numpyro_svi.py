"""SVI and RWS on NumPyro: ``numpyro.infer.SVI`` with an autoguide or the model's own guide.

Training runs compiled: on the full data, ``SVI.run`` (a ``fori_loop``); on minibatches,
one ``lax.scan`` over each epoch's batches, the batches gathered (and dynamically
binarized) inside the compiled function. Posterior draws come from the fitted guide, with the
model's deterministic sites and each draw's importance weight (``guide_draws``): the weights
give the guide's PSIS k-hat.
"""
from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.infer as infer
from numpyro import handlers
from numpyro.infer import SVI, autoguide
from numpyro.infer.util import log_density
from numpyro.primitives import Messenger
from tqdm.auto import tqdm

from inference.backends import AUTOGUIDES, ELBOS, autoguide_kwargs, elbo_kwargs, estimator
from inference.backends.numpyro_common import backend_context, to_backend, to_numpy, trace_sites, with_networks
from inference.backends.numpyro_objectives import ImportanceWeightedELBO, Relaxed
from inference.checkpoint import Checkpoint
from inference.convergence import (
    GAUSSIAN_GUIDES,
    MIN_STEPS,
    NUM_GRADIENT_PARTICLES,
    Snapshots,
    convergence_warnings,
    split_at,
)
from inference.importance import guide_check
from inference.library_options import to_library
from inference.methods._guides import check_no_latent
from inference.minibatch import batch_plan, check_batch_size, num_draws
from inference.optimizers import numpyro_optimizer
from inference.result import InferenceResult
from inference.sites import check_guide_matches
from ppl_models.errors import TrainingError
from ppl_models.nets.factories import flatten_state
from ppl_models.nets.modes import training
from ppl_models.spec import check_rank, redraw


def no_guide(*args, **kwargs) -> None:
    """``guide=None``: nothing latent to guide; the ELBO is then log p(x), maximized over the parameters."""


def make_guide(model, spec_guide, guide: str | None, rank, library_options: dict | None = None):
    """The model's own guide, none (``guide=None``), or the autoguide ``guide`` with the library's own
    keywords given."""
    if guide is None:
        return no_guide
    if guide == "spec":
        return spec_guide
    return getattr(autoguide, AUTOGUIDES[guide])(model, **autoguide_kwargs(guide, rank),
                                                 **to_library("numpyro", library_options or {}))


def make_elbo(method: str, opts: dict):
    which = estimator(method, opts)
    if which is not None:
        return ImportanceWeightedELBO(opts["num_particles"], which)
    return getattr(infer, ELBOS[opts["elbo"]])(**elbo_kwargs(opts["elbo"], opts["num_particles"], opts["alpha"]))


def guide_locations(params: dict, guide: str) -> tuple[dict, dict]:
    """A Gaussian autoguide's locations and sds (per latent coordinate, on the unconstrained
    space), by parameter name as NumPyro names them; ({}, {}) for a guide without both."""
    if guide == "normal":
        locs = {k: params[k] for k in params if k.endswith("_auto_loc")}
        return locs, {k: params[k[:-len("loc")] + "scale"] for k in locs}
    if guide == "mvn":
        return {"auto_loc": params["auto_loc"]}, {"auto_loc": jnp.linalg.norm(params["auto_scale_tril"], axis=-1)}
    if guide == "lowrank":  # as AutoLowRankMultivariateNormal._loc_scale
        sd = params["auto_scale"] * jnp.sqrt(jnp.square(params["auto_cov_factor"]).sum(-1) + 1)
        return {"auto_loc": params["auto_loc"]}, {"auto_loc": sd}
    return {}, {}


def exponential_decay(learning_rate: float, decay: float, num_steps: int):
    """A constant step size, or a schedule falling by ``decay`` over ``num_steps``."""
    if decay == 1.0:
        return learning_rate
    return lambda step: learning_rate * decay ** (step / num_steps)


class PlateIndices(Messenger):
    """Sets the indices of every plate over ``size`` points subsampled to ``len(indices)``."""

    def __init__(self, size: int, indices):
        super().__init__()
        self.size, self.indices = size, indices

    def process_message(self, msg):
        if msg["type"] == "plate" and msg["args"] == (self.size, self.indices.shape[0]):
            msg["value"] = self.indices


def with_batch_indices(fn, num_data: int):
    """``fn`` taking one more keyword, ``batch_indices``: the minibatch's indices, handed to its
    subsampled plates over ``num_data`` points. Without it, NumPyro's plates would draw indices of
    their own, which neither match the batch (so a guide's per-point parameters would be taken for
    the wrong points) nor come cheap (a permutation of all the data each step)."""

    @functools.wraps(fn)
    def wrapped(*args, batch_indices=None, **kwargs):
        if batch_indices is None:
            return fn(*args, **kwargs)
        with PlateIndices(num_data, batch_indices):
            return fn(*args, **kwargs)

    return wrapped


def gather_batch(data: dict, keys: tuple, grey: dict, idx, key, dtype: str, kinds: dict) -> dict:
    """``data`` with the minibatch ``idx`` in place of each minibatch key (drawn afresh from ``grey``
    with ``key`` where the key has grey levels, as ``kinds`` says: ``ppl_models.spec.redraw``), and
    the indices for the plates."""
    out = {**data, "batch_indices": idx}
    for i, k in enumerate(keys):
        if k in grey:
            u = jax.random.uniform(jax.random.fold_in(key, i), (idx.shape[0], *grey[k].shape[1:]))
            out[k] = redraw(kinds[k], grey[k][idx], u).astype(dtype)
        else:
            out[k] = data[k][idx]
    return out


class MinibatchLoop:
    """SVI steps over minibatches: each epoch a fresh permutation, batches of ``batch_size``
    (the last incomplete one dropped), every step of an epoch inside one compiled ``lax.scan``.
    Deterministic in ``key``: replaying steps [0, n) gives the same parameters."""

    def __init__(self, svi: SVI, spec, data: dict, batch_size: int, key, dtype: str):
        self.svi, self.data, self.batch_size, self.dtype = svi, data, batch_size, dtype
        self.perm_key, self.binarize_key = jax.random.split(key)
        self.keys = spec.minibatch.keys
        self.grey = {k: jnp.asarray(v) for k, (_, v) in spec.minibatch.grey.items()}
        self.kinds = {k: kind for k, (kind, _) in spec.minibatch.grey.items()}
        self.num_data = int(np.shape(spec.data[self.keys[0]])[0])
        self.steps_per_epoch = check_batch_size(spec, batch_size)
        self._epoch = jax.jit(self._scan)
        self._order = (None, None)  # (epoch, its permutation): 47 ms to draw for 60k points on a CPU

    def batch(self, data: dict, grey: dict, idx, key) -> dict:
        return gather_batch(data, self.keys, grey, idx, key, self.dtype, self.kinds)

    def _scan(self, state, idx, steps, arrays, grey):
        # arrays are arguments, not closed over: constants would be baked into the program;
        # Python scalars (plate sizes) stay static
        data = {**self.data, **arrays}

        def step(state, batch):
            idx, t = batch  # the batch's indices and the step's number
            # No NaN guard (stable_update) here: train() replays the steps before the first
            # non-finite loss to recover the parameters that gave the last finite one, so the guard
            # would only spare the wasted steps after it, and its lax.cond over the optimizer
            # state cost 0.7 ms of a 3.3 ms VAE step (benchmarks/RESULTS.md). A step with a finite
            # loss but a non-finite gradient shows as a NaN loss one step later.
            return self.svi.update(state, **self.batch(data, grey, idx, jax.random.fold_in(self.binarize_key, t)))

        return jax.lax.scan(step, state, (idx, steps))

    def init(self, key):
        return self.svi.init(key, **self.batch(self.data, self.grey, jnp.arange(self.batch_size), self.binarize_key))

    def order(self, epoch: int):
        """The permutation of the data that ``epoch`` visits it in."""
        if self._order[0] != epoch:
            self._order = epoch, jax.random.permutation(jax.random.fold_in(self.perm_key, epoch), self.num_data)
        return self._order[1]

    def run(self, state, start: int, stop: int, progress=None):
        """Steps [start, stop) from ``state`` (which must be the state after ``start`` steps)."""
        losses = []
        for epoch, first, last in batch_plan(start, stop, self.steps_per_epoch):
            offset = epoch * self.steps_per_epoch
            idx = self.order(epoch)[(first - offset) * self.batch_size:(last - offset) * self.batch_size]
            arrays = {k: v for k, v in self.data.items() if isinstance(v, jax.Array)}
            state, loss = self._epoch(state, idx.reshape(last - first, self.batch_size), jnp.arange(first, last),
                                      arrays, self.grey)
            losses.append(np.asarray(loss))
            if progress is not None:
                progress.update(last - first)
            if not np.isfinite(losses[-1]).all():
                break  # training stops here (train raises); no point in running the other epochs
        return state, np.concatenate(losses) if losses else np.empty(0)


def equal_lengths(pieces: list[tuple[int, int]], marks: list[int]) -> list[tuple[int, int]]:
    """``pieces`` cut further, where ``marks`` are evenly spaced, into pieces of that spacing (and
    what is left over): the compiled loop takes its length as a static argument, so each distinct
    length is one more compilation (about a second on a CPU), and the snapshots' spacing divides
    the default run into pieces of one length."""
    if len(marks) < 2:
        return pieces
    length = marks[1] - marks[0]
    return [(a, min(a + length, last)) for first, last in pieces for a in range(first, last, length)]


def train(svi, spec, data, opts, key, dtype, progress_bar, method="svi", checkpoint=None, snapshots=None):
    """Fitted parameters and the loss of every step; a ``TrainingError`` at the first non-finite
    loss. With a ``checkpoint`` (``inference.checkpoint``), the state is saved every so many steps
    and a run that finds one resumes from it. ``snapshots`` (``inference.convergence.Snapshots``)
    records the guide's locations at its steps, given the training state."""
    init_key, data_key = jax.random.split(key)
    num_steps = opts["num_steps"]
    marks = snapshots.steps if snapshots is not None else []
    if opts["batch_size"] is None:
        # the data's arrays are arguments, so that every segment between checkpoints runs one
        # compiled program (SVI.run would compile each afresh); Python scalars (plate sizes) stay static
        arrays = {k: v for k, v in data.items() if isinstance(v, jax.Array)}
        statics = {k: v for k, v in data.items() if k not in arrays}

        @functools.partial(jax.jit, static_argnums=2)
        def steps(state, arrays, n):
            # stable_update: a step whose loss or gradient is not finite leaves the parameters as they were
            return jax.lax.scan(lambda s, _: svi.stable_update(s, **statics, **arrays), state, None, length=n)

        def advance(state, start, stop, bar=None):
            state, losses = steps(state, arrays, stop - start)
            if bar is not None:
                bar.update(stop - start)
            return state, np.asarray(losses)

        def initial():  # the state before the first step (SVI.run, the path without checkpoints, makes its own)
            return svi.init(key, **data)

        def replay(n):  # the state after n steps
            return svi.run(key, n, progress_bar=False, stable_update=True, **data).state if n else initial()
    else:
        loop = MinibatchLoop(svi, spec, data, opts["batch_size"], data_key, dtype)
        advance = loop.run

        def initial():
            return loop.init(init_key)

        def replay(n):
            return loop.run(initial(), 0, n)[0]
    if checkpoint is None and opts["batch_size"] is None and not marks:
        fit = svi.run(key, num_steps, progress_bar=progress_bar, stable_update=True, **data)
        state, losses = fit.state, np.asarray(fit.losses)
    else:
        state, losses, start = initial(), np.empty(0), 0
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None:
            start, state, losses = saved[0], jax.tree.map(jnp.asarray, saved[1]), np.asarray(saved[2])
        pieces = list(checkpoint.segments(start, num_steps)) if checkpoint is not None else [(start, num_steps)]
        ends = {last for _, last in pieces}  # where checkpoints are saved (split_at adds the snapshots' steps)
        with tqdm(total=num_steps, initial=start, disable=not progress_bar, desc=method.upper()) as bar:
            for first, last in equal_lengths(split_at(pieces, marks), marks):
                state, new = advance(state, first, last, bar)
                losses = np.concatenate([losses, new])
                if not np.isfinite(new).all():
                    break
                if marks:
                    snapshots.after(last, state)
                if checkpoint is not None and last in ends:
                    checkpoint.save(last, jax.device_get(state), losses)
    bad = np.flatnonzero(~np.isfinite(losses))
    if bad.size:
        # The compiled loop cannot stop early. The parameters that gave the last finite loss
        # (step - 1) are those after step - 1 updates: replay them (same keys, same trajectory).
        step = int(bad[0])
        partial = InferenceResult(model=spec.name, backend="numpyro", method=method, samples={},
                                  losses=losses[:step + 1], params=to_numpy(svi.get_params(replay(max(step - 1, 0)))))
        raise TrainingError(step, float(losses[step - 1]) if step else None, partial)
    # the networks' running statistics (mutable sites), which guide draws substitute like the parameters
    return {**svi.get_params(state), **(state.mutable_state or {})}, losses


def guide_draws(model, guide, params: dict, data: dict, key, num_samples: int, return_sites) -> tuple[dict, np.ndarray]:
    """Draws of the fitted guide, with the model's sites ``return_sites`` at each, and each draw's
    log importance weight log p(x, z) - log q(z). As ``Predictive(model, guide=guide)`` draws them
    (one at a time, in a compiled loop), plus the weights, which ``Predictive`` does not give."""

    def one(key):
        log_q, q = log_density(handlers.seed(guide, key), (), data, params)
        values = {n: s["value"] for n, s in q.items() if s["type"] == "sample"}
        log_p, p = log_density(handlers.seed(model, key), (), data, {**params, **values})
        return {n: p[n]["value"] for n in return_sites}, log_p - log_q

    draws, log_weights = jax.lax.map(one, jax.random.split(key, num_samples))
    return to_numpy(draws), np.asarray(log_weights)


def location_gradients(svi, params: dict, guide: str, data: dict, key) -> dict:
    """``NUM_GRADIENT_PARTICLES`` independent estimates of the objective's gradient with respect to
    the guide's locations at ``params`` (``inference.convergence``): ``{location: (particles, ...)}``."""
    locs = guide_locations(params, guide)[0]

    def loss(at, key):
        return svi.loss.loss(key, {**params, **at}, svi.model, svi.guide, **data)

    keys = jax.random.split(key, NUM_GRADIENT_PARTICLES)
    return to_numpy(jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))(locs, keys))


# NumPyro's ELBOs with a score-function term for the guide's discrete draws
SCORE_FUNCTION_ELBOS = ("graph", "vimco")


def check_score_function(guide, data: dict, seed: int, opts: dict) -> None:
    """Refuse an objective whose gradient would be silently wrong: NumPyro's Trace_ELBO (and the
    Renyi/IWAE bounds) differentiate only through reparameterized draws, so for a guide's discrete
    (Bernoulli, categorical) sites they drop the score-function term and miss the guide's gradient
    (99% of it on a small sigmoid belief network: ``benchmarks/gradient_estimators.py``)."""
    if opts.get("elbo", "graph") in SCORE_FUNCTION_ELBOS or opts.get("temperature") is not None:
        return  # (RWS has no elbo option: its wake-phi update needs no reparameterization)
    trace = handlers.trace(handlers.seed(guide, seed)).get_trace(**data)
    discrete = [name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]
                and not site["fn"].has_rsample and site["fn"].support.is_discrete]
    if discrete:
        raise ValueError(f"elbo={opts['elbo']!r} on NumPyro has no score-function term, so its gradient for the "
                         f"guide's discrete site(s) {discrete} would be wrong; use elbo='graph' or elbo='vimco', "
                         "or temperature=0.5 (the relaxed estimator, biased)")


def prepare(spec, model, method: str, seed: int, dtype: str, opts: dict):
    """The ``SVI`` object of a run, its data on the backend, model, guide and the model's sites.
    Call inside ``backend_context``."""
    data = to_backend(spec.data, dtype)
    model, spec_guide = with_networks(spec, seed, dtype, model, spec.own_guide("numpyro"))
    sites = trace_sites(model, data, seed)
    if opts["guide"] == "lowrank":
        check_rank(sites.latent, opts["rank"], spec.name)
    if opts["guide"] is None:
        check_no_latent(sites.latent, spec.name)
    guide = make_guide(model, spec_guide, opts["guide"], opts["rank"], opts["library_options"])
    if opts["guide"] == "spec":
        check_guide_matches(sites, trace_sites(guide, data, seed), f"of {spec.name!r}")
        check_score_function(guide, data, seed, opts)
    if opts["batch_size"] is not None:
        num_data = int(np.shape(spec.data[spec.minibatch.keys[0]])[0])
        model, guide = with_batch_indices(model, num_data), with_batch_indices(guide, num_data)
    if opts.get("temperature") is not None:  # the relaxed estimator
        model, guide = Relaxed(model, opts["temperature"]), Relaxed(guide, opts["temperature"])
    step_size = exponential_decay(opts["learning_rate"], opts["lr_decay"], opts["num_steps"])
    optim = numpyro_optimizer(opts["optimizer"], step_size, opts["optimizer_options"])
    return SVI(model, guide, optim, make_elbo(method, opts)), data, sites


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    train_key, draw_key = jax.random.split(jax.random.PRNGKey(seed))
    with backend_context(device, dtype):
        svi, data, sites = prepare(spec, model, method, seed, dtype, opts)
        t0 = time.perf_counter()
        checkpoint = Checkpoint.of_run(spec.name, "numpyro", method, seed, opts, total=opts["num_steps"])
        guide = opts["guide"]
        locations = lambda state: to_numpy(guide_locations(svi.get_params(state), guide)[0])  # noqa: E731
        snapshots = Snapshots(opts["num_steps"], locations if guide in GAUSSIAN_GUIDES else None)
        with training():  # networks in train mode (batch normalization, dropout) for these steps only
            params, losses = train(svi, spec, data, opts, train_key, dtype, progress_bar, method, checkpoint,
                                   snapshots)
        t1 = time.perf_counter()
        draws, log_weights, diagnostics, warnings = {}, None, {}, []
        if num_draws(spec, opts) and guide is not None:  # no guide: nothing latent to draw
            draws, log_weights = guide_draws(svi.model, svi.guide, params, data, draw_key, num_draws(spec, opts),
                                             [*sites.latent, *sites.deterministic])
            draws = {k: v[None] for k, v in draws.items()}
            diagnostics, warnings = guide_check(log_weights)
        gradients = (location_gradients(svi, params, guide, data, jax.random.fold_in(draw_key, 1))
                     if guide in GAUSSIAN_GUIDES and opts["batch_size"] is None and len(losses) >= MIN_STEPS else None)
        warnings += convergence_warnings(losses, snapshots, to_numpy(guide_locations(params, guide)[1]), gradients)
        t2 = time.perf_counter()
    return InferenceResult(
        model=spec.name, backend="numpyro", method=method,
        samples=draws, observed_data=sites.observed,
        losses=losses, params=to_numpy(flatten_state(params)), log_weights=log_weights, diagnostics=diagnostics,
        warnings=warnings,
        timing={"optimization": t1 - t0, "sampling": t2 - t1},
        info={"objective": "IWAE bound" if estimator(method, opts) else "log-likelihood" if guide is None else "ELBO"},
    )
