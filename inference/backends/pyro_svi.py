"""SVI and RWS on Pyro: ``pyro.infer.SVI`` with an autoguide or the model's own guide.

The library ELBOs evaluate particles in a loop (``vectorize_particles=False``):
vectorizing adds a batch dimension that models indexing their own latents
(``alpha[county]``) do not expect. The importance-weighted objectives
(``elbo="iwae"``, ``method="rws"``) vectorize theirs. On minibatches, each epoch
takes a fresh permutation of the data. Posterior draws come from the fitted guide, with the
model's deterministic sites and each draw's importance weight (``guide_draws``): the weights
give the guide's PSIS k-hat.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyro
import pyro.infer as infer
import torch
from pyro import poutine
from pyro.infer import SVI, autoguide
from pyro.poutine.messenger import Messenger
from pyro.poutine.util import site_is_subsample
from tqdm.auto import tqdm

from inference.backends import AUTOGUIDES, ELBOS, autoguide_kwargs, elbo_kwargs, estimator
from inference.backends.pyro_common import (
    backend_context,
    gradients_finite,
    init_to_uniform,
    is_small,
    rng_state,
    set_rng_state,
    start,
    to_backend,
    trace_sites,
    with_networks,
)
from inference.backends.pyro_objectives import ImportanceWeightedELBO, Relaxed, sample_sites
from inference.backends.pyro_optim import JointOptimizer
from inference.checkpoint import Checkpoint
from inference.convergence import (
    GAUSSIAN_GUIDES,
    MIN_STEPS,
    NUM_GRADIENT_PARTICLES,
    Snapshots,
    convergence_warnings,
)
from inference.importance import guide_check
from inference.library_options import to_library
from inference.methods._guides import check_no_latent
from inference.minibatch import check_batch_size, num_draws
from inference.network_modes import restore_torch_buffers, torch_buffers, torch_networks
from inference.optimizers import optimizer
from inference.result import InferenceResult
from inference.sites import check_guide_matches
from ppl_models.errors import TrainingError
from ppl_models.nets.modes import training
from ppl_models.spec import check_rank, redraw


def no_guide(*args, **kwargs) -> None:
    """``guide=None``: nothing latent to guide; the ELBO is then log p(x), maximized over the parameters."""


def make_guide(model, spec_guide, guide: str | None, rank, library_options: dict | None = None):
    """The model's own guide, none (``guide=None``), or the autoguide ``guide`` (initialized as NumPyro's
    are, unless the library's own ``init_loc_fn`` is given, with the library's other keywords)."""
    if guide is None:
        return no_guide
    if guide == "spec":
        return spec_guide
    kwargs = {"init_loc_fn": init_to_uniform, **autoguide_kwargs(guide, rank),
              **to_library("pyro", library_options or {})}
    return getattr(autoguide, AUTOGUIDES[guide])(model, **kwargs)


def compiles(spec, method: str, opts: dict) -> bool:
    """Whether ``jit_compile=None`` (the default) compiles the ELBO: for a model without networks,
    trained on all its data (minibatches would be new tensors each step, each traced afresh), with a
    Pyro ELBO that has a JIT version. On eight schools a step then takes 0.9 ms, not 2.2 ms."""
    # Pyro's JIT ELBOs assert that every parameter's unconstrained tensor is the one they traced, which
    # the weights of an autoguide's own network (AutoIAFNormal's pyro.module) are not
    if opts.get("guide") == "iaf":
        if opts["jit_compile"]:
            raise ValueError("jit_compile=True cannot compile guide='iaf' on Pyro (its JIT ELBOs cannot trace the "
                             "flow's network); use jit_compile=False")
        return False
    if opts["jit_compile"] is not None:
        return opts["jit_compile"]
    return (not spec.networks and opts["batch_size"] is None and estimator(method, opts) is None
            and hasattr(infer, "Jit" + ELBOS[opts["elbo"]]))


def make_elbo(method: str, opts: dict, max_plate_nesting: int):
    which = estimator(method, opts)
    if which is not None:
        if opts.get("jit_compile"):
            raise ValueError(f"jit_compile applies to Pyro's own ELBOs, not to {which!r}; use jit_compile=False")
        return ImportanceWeightedELBO(opts["num_particles"], which, max_plate_nesting)
    elbo, num_particles, alpha, jit_compile = opts["elbo"], opts["num_particles"], opts["alpha"], opts["jit_compile"]
    name = ELBOS[elbo]
    if jit_compile:
        if not hasattr(infer, "Jit" + name):
            raise ValueError(f"Pyro has no JIT version of {name}; use jit_compile=False with elbo={elbo!r}")
        name = "Jit" + name
    extra = {"ignore_jit_warnings": True} if jit_compile else {}
    return getattr(infer, name)(**elbo_kwargs(elbo, num_particles, alpha), **extra)


def guide_locations(params: dict, guide: str) -> tuple[dict, dict]:
    """A Gaussian autoguide's locations and sds (per latent coordinate, on the unconstrained
    space), by parameter name as Pyro names them, from its constrained values (numpy or torch);
    ({}, {}) for a guide without both."""
    if guide == "normal":
        locs = {k: params[k] for k in params if k.startswith("AutoNormal.locs.")}
        return locs, {k: params["AutoNormal.scales." + k[len("AutoNormal.locs."):]] for k in locs}
    if guide == "mvn":  # the Cholesky factor is scale[:, None] * scale_tril (unit lower triangular)
        name = "AutoMultivariateNormal."
        tril = params[name + "scale"][:, None] * params[name + "scale_tril"]
        return {name + "loc": params[name + "loc"]}, {name + "loc": (tril**2).sum(-1) ** 0.5}
    if guide == "lowrank":  # as AutoLowRankMultivariateNormal._loc_scale
        name = "AutoLowRankMultivariateNormal."
        sd = params[name + "scale"] * ((params[name + "cov_factor"] ** 2).sum(-1) + 1) ** 0.5
        return {name + "loc": params[name + "loc"]}, {name + "loc": sd}
    return {}, {}


def snapshot(guide: str) -> dict:
    """The locations of the run's Gaussian autoguide, now (copies: the optimizer updates the tensors in place)."""
    prefix = AUTOGUIDES[guide] + "."
    return guide_locations({k: v.detach().cpu().numpy().copy() for k, v in pyro.get_param_store().items()
                            if k.startswith(prefix)}, guide)[0]


def guarded_step(svi: SVI, data: dict, created: dict | None = None) -> float:
    """``SVI.step``, except that the update is applied only when the loss and gradients are finite.

    Pyro's ``SVI.step`` updates the parameters before the loss can be looked at, so a NaN
    would overwrite the last good parameters; this is its body with the check in between.
    ``created``, if given, receives copies of the parameters as this step's loss saw them, before
    the update: on the first step, which creates them, the only chance to keep the initial values.
    """
    with poutine.trace(param_only=True) as capture:
        loss = float(svi.loss_and_grads(svi.model, svi.guide, **data))
    params = {site["value"].unconstrained() for site in capture.trace.nodes.values()}
    if created is not None:
        created.update({k: v.detach().clone() for k, v in pyro.get_param_store().items()})
    if np.isfinite(loss) and gradients_finite(params):
        svi.optim(params)
    for p in params:  # as torch's zero_grad(set_to_none=True): no zeros allocated, unlike Pyro's zero_grads
        p.grad = None
    return loss


class Minibatches:
    """The data with each minibatch key replaced by the next batch: a fresh permutation each
    epoch, the last incomplete batch dropped, grey levels binarized or dequantized afresh where given.

    ``plate_indices`` hands the batch's indices to the model's and guide's subsampled plates,
    which would otherwise each draw a permutation of the whole data set, unused, every step.
    ``order`` is the current epoch's permutation (a checkpoint keeps it).
    """

    def __init__(self, spec, data: dict, batch_size: int, device):
        self.data, self.batch_size, self.device = data, batch_size, device
        self.keys = spec.minibatch.keys
        self.grey = {k: (kind, torch.as_tensor(v, device=device)) for k, (kind, v) in spec.minibatch.grey.items()}
        self.num_data = int(np.shape(spec.data[self.keys[0]])[0])
        self.steps_per_epoch = check_batch_size(spec, batch_size)
        self.plate_indices = PlateIndices(self.num_data)
        self.order = None

    def __call__(self, step: int) -> dict:
        pos = step % self.steps_per_epoch
        if pos == 0 or self.order is None:
            self.order = torch.randperm(self.num_data, device=self.device)
        idx = self.order[pos * self.batch_size:(pos + 1) * self.batch_size]
        self.plate_indices.indices = idx
        out = dict(self.data)
        for k in self.keys:
            if k in self.grey:
                kind, grey = self.grey[k]
                grey = grey[idx]
                out[k] = redraw(kind, grey, torch.rand(grey.shape, device=self.device)).to(torch.get_default_dtype())
            else:
                out[k] = self.data[k][idx]
        return out


class PlateIndices(Messenger):
    """Sets the indices of every plate over ``size`` points subsampled to the current batch."""

    def __init__(self, size: int):
        super().__init__()
        self.size, self.indices = size, None

    def _process_message(self, msg):
        if (site_is_subsample(msg) and self.indices is not None and msg["fn"].size == self.size
                and msg["fn"].subsample_size == len(self.indices)):
            msg["value"] = self.indices


def prepare(spec, model, method: str, seed: int, device, opts: dict):
    """The ``SVI`` object of a run, its optimizer, its data (a function of the step) and the
    model's sites. Call inside ``backend_context``."""
    data = to_backend(spec.data, device)
    start(seed)
    model, spec_guide = with_networks(spec, seed, device, model, spec.own_guide("pyro"))
    networks = torch_networks(model, spec_guide)
    sites = trace_sites(model, data)
    if opts["guide"] == "lowrank":
        check_rank(sites.latent, opts["rank"], spec.name)
    if opts["guide"] is None:
        check_no_latent(sites.latent, spec.name)
    guide = make_guide(model, spec_guide, opts["guide"], opts["rank"], opts["library_options"])
    if opts["guide"] == "spec":
        check_guide_matches(sites, trace_sites(guide, data), f"of {spec.name!r}")
    start(seed)
    batches = Minibatches(spec, data, opts["batch_size"], device) if opts["batch_size"] else (lambda step: data)
    if opts["batch_size"]:
        model, guide = batches.plate_indices(model), batches.plate_indices(guide)
    if opts.get("temperature") is not None:  # the relaxed estimator
        model, guide = Relaxed(opts["temperature"])(model), Relaxed(opts["temperature"])(guide)
    optim = JointOptimizer(opts["learning_rate"], opts["lr_decay"], opts["num_steps"],
                           optimizer("pyro", opts["optimizer"]), opts["optimizer_options"])
    svi = SVI(model, guide, optim, make_elbo(method, opts, sites.max_plate_nesting))
    svi.networks = networks  # their buffers (running statistics) are saved with the parameters
    return svi, batches, data, sites


def train(svi: SVI, batches, num_steps: int, progress_bar: bool = False, method: str = "svi", name: str = "",
          first: int = 0, history: np.ndarray | None = None, snapshots: Snapshots | None = None) -> np.ndarray:
    """Steps [first, first + num_steps): the loss of each; a ``TrainingError`` at the first non-finite
    loss, holding the parameters that gave the last finite one and the losses so far (``history``:
    those of the steps before ``first``). ``snapshots`` (``inference.convergence.Snapshots``)
    records the guide's locations at its steps."""
    history = np.empty(0) if history is None else np.asarray(history)
    losses = np.empty(num_steps)
    store, last_good = pyro.get_param_store(), None
    for i in tqdm(range(num_steps), disable=not progress_bar, desc=method.upper(), initial=first,
                  total=first + num_steps):
        before = {k: v.detach().clone() for k, v in store.items()}  # the parameters this step's loss is of
        try:
            # the first step creates the parameters: keep their initial values (a failure at the
            # next step keeps those)
            losses[i] = guarded_step(svi, batches(first + i), before if not before else None)
            cause = "the loss is not finite"
        except (ValueError, RuntimeError) as e:  # e.g. distribution validation on a NaN parameter
            losses[i], cause = np.nan, f"{type(e).__name__}: {str(e).splitlines()[0]}"
        if not np.isfinite(losses[i]):
            good = last_good if last_good is not None else dict(store.items())
            params = {k: v.detach().cpu().numpy() for k, v in good.items()}
            so_far = np.concatenate([history, losses[:i + 1]])
            partial = InferenceResult(model=name, backend="pyro", method=method, samples={}, losses=so_far,
                                      params=params)
            step = first + i
            raise TrainingError(step, float(so_far[step - 1]) if step else None, partial, cause)
        last_good = before
        svi.optim.step()  # the step-size schedule
        if snapshots is not None:
            snapshots.after(first + i + 1)
    return losses


def location_gradients(svi: SVI, data: dict, guide: str) -> dict:
    """``NUM_GRADIENT_PARTICLES`` independent estimates of the objective's gradient with respect to
    the guide's locations at the last parameters (``inference.convergence``): ``{location: (particles, ...)}``."""
    prefix = AUTOGUIDES[guide] + "."
    live = {k: v for k, v in pyro.get_param_store().items() if k.startswith(prefix)}
    names = list(guide_locations(live, guide)[0])
    out = {n: [] for n in names}
    for _ in range(NUM_GRADIENT_PARTICLES):
        with poutine.trace(param_only=True) as capture:
            svi.loss_and_grads(svi.model, svi.guide, **data)
        params = {site["value"].unconstrained() for site in capture.trace.nodes.values()}
        for n in names:
            out[n].append(pyro.get_param_store()[n].unconstrained().grad.detach().cpu().numpy().copy())
        for p in params:
            p.grad = None
    return {n: np.stack(v) for n, v in out.items()}


def training_state(svi: SVI, batches) -> dict:
    """Everything the next step depends on, on the host: parameters (unconstrained), optimizer
    (and step-size schedule) state, RNG states, and the epoch's order of the data."""
    order = getattr(batches, "order", None)  # full data: no order
    return {"params": {k: v.detach().cpu() for k, v in pyro.get_param_store().get_state()["params"].items()},
            "optim": svi.optim.get_state(), "rng": rng_state(), "order": order.cpu() if order is not None else None,
            "buffers": torch_buffers(svi.networks)}


def restore_training_state(svi: SVI, batches, state: dict, step: int) -> None:
    """Continue from ``training_state`` at ``step``. One loss evaluation first creates what the model and
    guide create lazily (autoguide prototypes, parameters, network registrations) and draws what it
    draws; the saved values are then copied into the live parameters in place (``pyro.module`` keeps
    the network's own tensors), and the RNG states restored last."""
    svi.evaluate_loss(**batches(step))
    live = pyro.get_param_store().get_state()["params"]
    if set(live) != set(state["params"]):
        raise ValueError(f"the checkpoint's parameters {sorted(state['params'])} are not this run's {sorted(live)}")
    with torch.no_grad():
        for k, v in state["params"].items():
            live[k].copy_(v)
    restore_torch_buffers(svi.networks, state.get("buffers", {}))
    svi.optim.set_state(state["optim"])
    if state["order"] is not None:
        batches.order = state["order"].to(batches.device)
    set_rng_state(state["rng"])


def train_in_pieces(svi: SVI, batches, num_steps: int, checkpoint: Checkpoint, progress_bar: bool, method: str,
                    name: str, snapshots: Snapshots | None = None) -> np.ndarray:
    """``train`` in pieces of ``checkpoint.every`` steps, the training state saved after each; resumed
    from the checkpoint's if there is one."""
    saved = checkpoint.load()
    done, losses = 0, np.empty(0)
    if saved is not None:
        done, state, losses = saved[0], saved[1], np.asarray(saved[2])
        restore_training_state(svi, batches, state, done)
    for first, last in checkpoint.segments(done, num_steps):
        losses = np.concatenate([losses, train(svi, batches, last - first, progress_bar, method, name, first,
                                               losses, snapshots)])
        checkpoint.save(last, training_state(svi, batches), losses)
    return losses


DRAW_CHUNK = 250  # guide draws traced at once: bounds the memory of a model with much data


def _one_draw(model, guide, data: dict, shapes: dict, given=None) -> tuple[dict, float]:
    """One draw of the guide (replaying the trace ``given``, if given), the model's sites in
    ``shapes`` at it, and its log importance weight."""
    q = poutine.trace(poutine.replay(guide, trace=given) if given else guide).get_trace(**data)
    p = poutine.trace(poutine.replay(model, trace=q)).get_trace(**data)
    values = {k: p.nodes[k]["value"].detach().reshape(shape) for k, shape in shapes.items()}
    return values, float(p.log_prob_sum() - q.log_prob_sum())


def _draws_at_once(model, guide, data: dict, num: int, shapes: dict, max_plate_nesting: int):
    """``num`` draws in one trace of guide and model, inside a plate over draws left of the model's
    own plates (as ``Predictive(..., parallel=True)`` runs them). None where that is not the same
    as drawing one at a time: the first draw's values and weight, run alone, must come out equal."""
    draws = pyro.plate("_guide_draws", num, dim=-(max_plate_nesting + 1))
    q = poutine.trace(draws(guide)).get_trace(**data)
    p = poutine.trace(poutine.replay(draws(model), trace=q)).get_trace(**data)
    log_w = _per_draw_log_prob(p, num) - _per_draw_log_prob(q, num)
    values = {k: p.nodes[k]["value"].reshape(num, *shape) for k, shape in shapes.items()}
    first = poutine.trace(guide).get_trace(**data)  # one draw, its values then set to the first of the plate's
    for name, site in sample_sites(first).items():
        site["value"] = q.nodes[name]["value"].reshape(num, *site["value"].shape)[0]
    alone, alone_w = _one_draw(model, guide, data, shapes, first)
    same = math.isclose(float(log_w[0]), alone_w, rel_tol=1e-5, abs_tol=1e-6) and all(
        torch.allclose(values[k][0], v) for k, v in alone.items())
    return (values, log_w) if same else None


def _per_draw_log_prob(trace, num: int) -> torch.Tensor:
    """The log density of a trace run inside a plate of ``num`` draws (the leading batch dim), per draw:
    each site's ``Trace.compute_log_prob`` (scaled and masked), summed over all but that dim."""
    trace.compute_log_prob()
    return sum(lp.expand(num, *lp.shape[1:]).reshape(num, -1).sum(-1)
               for lp in (site["log_prob"] for site in sample_sites(trace).values()))


def guide_draws(model, guide, data: dict, num_samples: int, shapes: dict,
                max_plate_nesting: int) -> tuple[dict, np.ndarray]:
    """Draws of the fitted guide, with the model's sites named in ``shapes`` at each (shaped so),
    and each draw's log importance weight log p(x, z) - log q(z): what ``Predictive(model,
    guide=guide)`` draws, plus the weights, which ``Predictive`` does not give. In chunks of
    ``DRAW_CHUNK`` draws traced at once where the model's and guide's shapes allow it (1000 draws
    on eight schools: 0.1 s, against 4 s one at a time), else one draw at a time (a model written
    for one draw, ``X @ beta``, say)."""
    with torch.no_grad():
        try:
            chunks = [_draws_at_once(model, guide, data, min(DRAW_CHUNK, num_samples - i), shapes, max_plate_nesting)
                      for i in range(0, num_samples, DRAW_CHUNK)]
        except (RuntimeError, ValueError, IndexError, NotImplementedError):
            chunks = [None]  # shapes that do not broadcast over a plate of draws
        if all(c is not None for c in chunks):
            return ({k: torch.cat([c[0][k] for c in chunks]).cpu().numpy() for k in shapes},
                    torch.cat([c[1] for c in chunks]).cpu().numpy().astype(float))
        one = [_one_draw(model, guide, data, shapes) for _ in range(num_samples)]
    return {k: torch.stack([d[k] for d, _ in one]).cpu().numpy() for k in shapes}, np.array([w for _, w in one])


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    if "jit_compile" in opts:  # SVI (RWS has its own objective, never compiled)
        opts["jit_compile"] = compiles(spec, method, opts)
    with backend_context(device, dtype, small=is_small(spec)) as dev:
        svi, batches, data, sites = prepare(spec, model, method, seed, dev, opts)
        t0 = time.perf_counter()
        checkpoint = Checkpoint.of_run(spec.name, "pyro", method, seed, opts, total=opts["num_steps"])
        guide = opts["guide"]
        snapshots = Snapshots(opts["num_steps"], (lambda: snapshot(guide)) if guide in GAUSSIAN_GUIDES else None)
        with training():  # networks in train mode (batch normalization, dropout) for these steps only
            if checkpoint is not None:
                losses = train_in_pieces(svi, batches, opts["num_steps"], checkpoint, progress_bar, method, spec.name,
                                         snapshots)
            else:
                losses = train(svi, batches, opts["num_steps"], progress_bar, method, spec.name, snapshots=snapshots)
        t1 = time.perf_counter()
        draws, log_weights, diagnostics, warnings = {}, None, {}, []
        if num_draws(spec, opts) and guide is not None:  # no guide: nothing latent to draw
            draws, log_weights = guide_draws(svi.model, svi.guide, data, num_draws(spec, opts),
                                             sites.latent | sites.deterministic, sites.max_plate_nesting)
            draws = {k: v[None] for k, v in draws.items()}
            diagnostics, warnings = guide_check(log_weights)
        t2 = time.perf_counter()
        params = {k: v.detach().cpu().numpy() for k, v in pyro.get_param_store().items()}
        params.update({k: v.numpy() for k, v in torch_buffers(svi.networks).items()})
        gradients = (location_gradients(svi, data, guide) if guide in GAUSSIAN_GUIDES and not opts["batch_size"]
                     and len(losses) >= MIN_STEPS else None)
        warnings += convergence_warnings(losses, snapshots, guide_locations(params, guide)[1], gradients)
    return InferenceResult(
        model=spec.name, backend="pyro", method=method,
        samples=draws, observed_data=sites.observed,
        losses=losses, params=params, log_weights=log_weights, diagnostics=diagnostics, warnings=warnings,
        timing={"optimization": t1 - t0, "sampling": t2 - t1},
        info={"objective": "IWAE bound" if estimator(method, opts) else "log-likelihood" if guide is None else "ELBO",
              **({"resolved_options": {"jit_compile": opts["jit_compile"]}} if "jit_compile" in opts else {})},
    )
