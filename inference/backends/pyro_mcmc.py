"""NUTS and HMC on Pyro: a thin wrapper of ``pyro.infer.MCMC``.

Chains run one after another, each a single-chain ``MCMC`` with its own seed
and a fresh kernel: Pyro's multi-chain mode forks worker processes, which
does not mix with a JAX runtime in the same process. Pyro's ``MCMC`` returns
only latent sites, so deterministic sites are recomputed from the draws with
``Predictive``.

With a checkpoint, each chain runs its warmup, then its draws in pieces, each a fresh ``MCMC``
that continues the chain: the adapted step size and mass matrix, the last position and the RNG
state (``ContinuedNUTS``, ``ContinuedHMC``). The state and the draws so far are saved after
warmup and after each piece. (Pyro's ``MCMC`` cannot stop after warmup, ``num_samples=0`` fails
in its diagnostics: warmup runs with one draw, discarded, the state taken at warmup's end.)
"""
from __future__ import annotations

import time

import numpy as np
import torch
from pyro.infer import HMC, MCMC, NUTS, Predictive

from inference.backends import chain_seeds, hmc_path_length
from inference.backends.pyro_common import (
    backend_context,
    init_to_uniform,
    predictive_draws,
    rng_state,
    set_rng_state,
    start,
    to_backend,
    to_numpy,
    trace_sites,
    with_networks,
)
from inference.checkpoint import Checkpoint
from inference.result import InferenceResult


def make_kernel(method: str, model, opts: dict, max_plate_nesting: int, continued: dict | None = None):
    """The kernel; with ``continued`` (``warmup``'s state), one that continues that chain, adapting nothing."""
    # max_plate_nesting given, so that Pyro need not guess it by sampling (improper priors cannot)
    common = dict(target_accept_prob=opts["target_accept_prob"], jit_compile=opts["jit_compile"],
                  ignore_jit_warnings=True, init_strategy=init_to_uniform, max_plate_nesting=max_plate_nesting)
    if continued is not None:
        common |= dict(step_size=continued["step_size"], adapt_step_size=False, adapt_mass_matrix=False)
        kernel = (ContinuedNUTS(model, max_tree_depth=opts["max_tree_depth"], **common) if method == "nuts" else
                  ContinuedHMC(model, **hmc_path_length(opts), **common))
        kernel.continued = continued
        return kernel
    if method == "nuts":
        return NUTS(model, max_tree_depth=opts["max_tree_depth"], **common)
    return HMC(model, **hmc_path_length(opts), **common)


class _Continued:
    """Once set up, takes the adapted mass matrix and the RNG state of the chain it continues
    (``self.continued``): Pyro's kernels take neither as arguments, and setting up draws random
    numbers (it traces the model)."""

    continued: dict

    def setup(self, warmup_steps, *args, **kwargs):
        super().setup(warmup_steps, *args, **kwargs)
        self.mass_matrix_adapter.inverse_mass_matrix = self.continued["inverse_mass_matrix"]
        set_rng_state(self.continued["rng"])


class ContinuedNUTS(_Continued, NUTS):
    pass


class ContinuedHMC(_Continued, HMC):
    pass


def divergences(mcmc: MCMC, num_samples: int) -> np.ndarray:
    """Which of a single-chain run's draws were divergent (Pyro reports their indices)."""
    diverging = np.zeros(num_samples, dtype=bool)
    diverging[mcmc.diagnostics()["divergences"]["chain 0"]] = True
    return diverging


def chain_state(kernel, params) -> dict:
    """What the next transition depends on: position (unconstrained), step size, mass matrix, RNG."""
    return {"z": {k: v.detach().clone() for k, v in params.items()}, "step_size": float(kernel.step_size),
            "inverse_mass_matrix": {k: v.detach().clone() for k, v in kernel.inverse_mass_matrix.items()},
            "rng": rng_state()}


def warmup(method, model, data, opts, max_plate_nesting, progress_bar: bool) -> tuple[dict, float]:
    """A chain's warmup; its state at the end, and the seconds it took."""
    kernel = make_kernel(method, model, opts, max_plate_nesting)
    state = {}

    def hook(kernel, params, stage, i):
        if stage == "Warmup" and i == opts["num_warmup"] - 1:
            state.update(chain_state(kernel, params))

    t0 = time.perf_counter()
    MCMC(kernel, num_samples=1, warmup_steps=opts["num_warmup"], num_chains=1, disable_progbar=not progress_bar,
         hook_fn=hook).run(**data)
    return state, time.perf_counter() - t0


def continue_chain(method, model, data, opts, max_plate_nesting, state: dict, num_samples: int, progress_bar: bool):
    """``num_samples`` more draws of the chain in ``state``: the draws, divergences and the state after."""
    kernel = make_kernel(method, model, opts, max_plate_nesting, continued=state)
    after = {}

    def hook(kernel, params, stage, i):
        if i == num_samples - 1:
            after.update(chain_state(kernel, params))

    mcmc = MCMC(kernel, num_samples=num_samples, warmup_steps=0, num_chains=1, disable_progbar=not progress_bar,
                hook_fn=hook, initial_params=state["z"])
    mcmc.run(**data)
    return to_numpy(mcmc.get_samples()), divergences(mcmc, num_samples), after


def _run_chain_in_pieces(method, model, data, opts, max_plate_nesting, checkpoint: Checkpoint, chain: int,
                         chain_seed: int, saved, finished: list, progress_bar: bool):
    """One chain, checkpointed (see the module's docstring). ``saved`` is the checkpoint's
    ``(step, state, record)`` if it is of this chain; ``finished``, the outputs of the chains
    before it, go into every checkpoint."""
    seconds = {"warmup": 0.0, "sampling": 0.0}
    if saved is None:
        start(chain_seed)
        state, seconds["warmup"] = warmup(method, model, data, opts, max_plate_nesting, progress_bar)
        done, draws, diverging = 0, {}, np.zeros(0, dtype=bool)
        checkpoint.save(chain * opts["num_samples"], {"chain": chain, "done": 0, "chain_state": state},
                        {"chains": finished, "draws": draws, "diverging": diverging})
    else:
        state, done = saved[1]["chain_state"], saved[1]["done"]
        draws, diverging = saved[2]["draws"], saved[2]["diverging"]
    for first, last in checkpoint.segments(done, opts["num_samples"]):
        t0 = time.perf_counter()
        new, div, state = continue_chain(method, model, data, opts, max_plate_nesting, state, last - first,
                                         progress_bar)
        seconds["sampling"] += time.perf_counter() - t0
        draws = {k: np.concatenate([draws[k], v]) if k in draws else v for k, v in new.items()}
        diverging = np.concatenate([diverging, div])
        checkpoint.save(chain * opts["num_samples"] + last, {"chain": chain, "done": last, "chain_state": state},
                        {"chains": finished, "draws": draws, "diverging": diverging})
    return draws, diverging, state["step_size"], (seconds["warmup"], seconds["sampling"])


def _run_chain(method, model, data, opts, progress_bar, max_plate_nesting):
    """One chain; returns latent draws, per-draw divergences, step size and (warmup, sampling) seconds."""
    kernel = make_kernel(method, model, opts, max_plate_nesting)
    marks = {}

    def hook(kernel, params, stage, i):
        marks.setdefault(stage, time.perf_counter())

    t0 = time.perf_counter()
    mcmc = MCMC(kernel, num_samples=opts["num_samples"], warmup_steps=opts["num_warmup"], num_chains=1,
                disable_progbar=not progress_bar, hook_fn=hook)
    mcmc.run(**data)
    t1 = time.perf_counter()
    diverging = divergences(mcmc, opts["num_samples"])
    sample_start = marks.get("Sample", t1)
    return to_numpy(mcmc.get_samples()), diverging, float(kernel.step_size), (sample_start - t0, t1 - sample_start)


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    chains, diverging, step_size, warmup_s, sampling_s = [], [], [], 0.0, 0.0
    shape = (opts["num_chains"], opts["num_samples"])
    checkpoint = Checkpoint.of_run(spec.name, "pyro", method, seed, opts,  # chains one after the other
                                    total=opts["num_chains"] * opts["num_samples"], unit="draw")
    with backend_context(device, dtype) as dev:
        data = to_backend(spec.data, dev)
        start(seed)
        (model,) = with_networks(spec, seed, dev, model)  # networks, if any, at their initial weights
        sites = trace_sites(model, data)
        saved = checkpoint.load() if checkpoint is not None else None
        finished = saved[2]["chains"] if saved is not None else []
        for chain, chain_seed in enumerate(chain_seeds(seed, opts["num_chains"])):
            if chain < len(finished):
                out = finished[chain]
            elif checkpoint is not None:
                ours = saved if saved is not None and saved[1]["chain"] == chain else None
                out = _run_chain_in_pieces(method, model, data, opts, sites.max_plate_nesting, checkpoint, chain,
                                           chain_seed, ours, finished, progress_bar)
                finished = [*finished, out]
            else:
                start(chain_seed)
                out = _run_chain(method, model, data, opts, progress_bar, sites.max_plate_nesting)
            draws, div, eps, (t_warm, t_samp) = out
            chains.append(draws), diverging.append(div), step_size.append(eps)
            warmup_s, sampling_s = warmup_s + t_warm, sampling_s + t_samp
        samples = {k: np.stack([c[k] for c in chains]) for k in sites.latent}
        if sites.deterministic:
            flat = {k: torch.as_tensor(v.reshape(-1, *v.shape[2:]), device=dev) for k, v in samples.items()}
            predictive = Predictive(model, posterior_samples=flat, return_sites=list(sites.deterministic))
            samples |= predictive_draws(predictive, data, sites.deterministic, shape)
    return InferenceResult(
        model=spec.name, backend="pyro", method=method, samples=samples, observed_data=sites.observed,
        sample_stats={"diverging": np.stack(diverging),
                      "step_size": np.broadcast_to(np.array(step_size)[:, None], shape).copy()},
        timing={"warmup": warmup_s, "sampling": sampling_s},
        info={"chain_method": "sequential"},
    )

