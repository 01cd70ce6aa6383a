"""NUTS and HMC on Pyro: a thin wrapper of ``pyro.infer.MCMC``.

Each chain is a single-chain ``MCMC`` with its own seed (derived from the run's) and a fresh
kernel. With ``chain_method="parallel"`` (the default when there are several chains, more than
one core and no checkpoint) the chains run in ``min(chains, cores)`` worker processes, fresh
interpreters (Pyro's own multi-chain mode forks, which does not mix with a JAX runtime in the
same process; multiprocessing's spawn runs the user's main module again, which fails in a
script without a ``__main__`` guard), one torch thread each; a chain computes the same numbers
in a worker as in the sequential loop. The model goes to the workers by reference (its module
and name), the data as numpy; a model pickle cannot take (a lambda, a closure, a function of the
script being run) runs its chains sequentially. Workers run in a session of their own, so a
Ctrl-C reaches only the parent, which kills them and raises ``KeyboardInterrupt``.
Pyro's ``MCMC`` returns only latent sites, so deterministic sites are recomputed from the
draws with ``Predictive``.

With a checkpoint, each chain runs its warmup, then its draws in pieces, each a fresh ``MCMC``
that continues the chain: the adapted step size and mass matrix, the last position and the RNG
state (``ContinuedNUTS``, ``ContinuedHMC``). The state and the draws so far are saved after
warmup and after each piece. (Pyro's ``MCMC`` cannot stop after warmup, ``num_samples=0`` fails
in its diagnostics: warmup runs with one draw, discarded, the state taken at warmup's end.)
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
import traceback
import types

import numpy as np
import torch
from pyro.infer import HMC, MCMC, NUTS, Predictive
from pyro.infer.autoguide.initialization import InitMessenger

from inference.backends import chain_seeds, hmc_path_length
from inference.backends.pyro_common import (
    backend_context,
    init_to_uniform,
    is_small,
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
from inference.library_options import to_library
from inference.result import InferenceResult
from ppl_models.generic import bind


def make_kernel(method: str, model, opts: dict, max_plate_nesting: int, continued: dict | None = None):
    """The kernel; with ``continued`` (``warmup``'s state), one that continues that chain, adapting nothing."""
    # max_plate_nesting given, so that Pyro need not guess it by sampling (improper priors cannot)
    common = dict(target_accept_prob=opts["target_accept_prob"], jit_compile=opts["jit_compile"],
                  ignore_jit_warnings=True, init_strategy=init_to_uniform, max_plate_nesting=max_plate_nesting,
                  full_mass=opts["dense_mass"]) | to_library("pyro", opts["library_options"])  # the library's own
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


def _run_chain(method, model, data, opts, progress_bar, max_plate_nesting, on_step=None):
    """One chain; returns latent draws, per-draw divergences, step size and (warmup, sampling) seconds.
    ``on_step(stage, i)``, if given, is called after every iteration."""
    kernel = make_kernel(method, model, opts, max_plate_nesting)
    marks = {}

    def hook(kernel, params, stage, i):
        marks.setdefault(stage, time.perf_counter())
        if on_step is not None:
            on_step(stage, i)

    t0 = time.perf_counter()
    mcmc = MCMC(kernel, num_samples=opts["num_samples"], warmup_steps=opts["num_warmup"], num_chains=1,
                disable_progbar=not progress_bar, hook_fn=hook)
    mcmc.run(**data)
    t1 = time.perf_counter()
    diverging = divergences(mcmc, opts["num_samples"])
    sample_start = marks.get("Sample", t1)
    return to_numpy(mcmc.get_samples()), diverging, float(kernel.step_size), (sample_start - t0, t1 - sample_start)


# ---- chains in worker processes ---------------------------------------------------------------
# A worker is a fresh ``python -c`` (so nothing of the parent runs again in it: not its main
# module, not its JAX runtime) in a session of its own (so a Ctrl-C at the terminal reaches the
# parent only; the parent kills the workers). It reads the parent's sys.path, then the run, then
# its chains from stdin, and writes pickled messages to a pipe of its own: progress, each
# chain's output, or the exception that stopped it.

def usable_cpus() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _portable(model):
    """``model`` in a form pickle takes, or None. A model bound to its backend by
    ``ppl_models.generic.for_backends`` goes as its generic function and the backend's name."""
    candidates = [model]
    if getattr(model, "backend", None) and hasattr(model, "__wrapped__"):
        candidates.append(("bind", model.__wrapped__, model.backend))
    for candidate in candidates:
        try:
            pickle.dumps(candidate)
        except Exception:  # noqa: BLE001 - whatever pickle refuses, the chains run in this process
            continue
        return candidate
    return None


def parallel_payload(spec, model, method, seed, device, dtype, opts, max_plate_nesting) -> tuple[bytes | None, str]:
    """Everything a worker needs to run a chain, pickled, or None and why not."""
    portable = _portable(model)
    if portable is None:
        return None, "pickle cannot take the model (a lambda or a closure?)"
    try:
        payload = pickle.dumps({"model": portable, "networks": dict(spec.networks), "data": dict(spec.data),
                                "method": method, "seed": seed, "device": device, "dtype": dtype, "opts": opts,
                                "max_plate_nesting": max_plate_nesting})
    except Exception as e:  # noqa: BLE001
        return None, f"pickle cannot take the model's networks or data ({type(e).__name__}: {e})"
    if b"__main__" in payload:
        return None, "the model is defined in the script being run (__main__), which a worker does not import"
    return payload, ""


# The worker's bootstrap: the parent's sys.path first; then the ``inference`` package without running
# its __init__ (ArviZ and the API, 1.5-2.5 s of imports a chain does not need; run on first use of
# a package attribute, should a user's model want one).
_WORKER = """\
import importlib.util, pickle, sys, types
sys.path[:] = pickle.load(sys.stdin.buffer)
spec = importlib.util.find_spec("inference")
package = types.ModuleType("inference")
package.__path__, package.__spec__, package.__file__ = list(spec.submodule_search_locations), spec, spec.origin
def __getattr__(name, loaded=[]):
    if name.startswith("__") or loaded:
        raise AttributeError(name)
    loaded.append(True)
    exec(compile(open(spec.origin).read(), spec.origin, "exec"), package.__dict__)
    return getattr(package, name)
package.__getattr__ = __getattr__
sys.modules["inference"] = package
from inference.backends.pyro_mcmc import chain_worker_main
chain_worker_main()
"""


def chain_worker_main() -> None:
    """A worker process's body: ``python -c`` with the pipe's descriptor as its one argument."""
    torch.set_num_threads(1)
    out = os.fdopen(int(sys.argv[1]), "wb")
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()

    def send(message) -> None:
        pickle.dump(message, out)
        out.flush()

    try:
        p = pickle.load(sys.stdin.buffer)
        tasks, progress = pickle.load(sys.stdin.buffer)
        model = p["model"]
        if isinstance(model, tuple):
            model = bind(model[1], model[2])
        with backend_context(p["device"], p["dtype"]) as dev:
            data = to_backend(p["data"], dev)
            (model,) = with_networks(types.SimpleNamespace(networks=p["networks"]), p["seed"], dev, model)
            for chain, chain_seed in tasks:
                on_step = _progress_sender(send, chain, p["opts"]) if progress else None
                start(chain_seed)
                send(("done", chain, _run_chain(p["method"], model, data, p["opts"], False, p["max_plate_nesting"],
                                                on_step)))
    except Exception as e:  # noqa: BLE001 - every error goes to the parent, which raises it
        try:
            error = pickle.loads(pickle.dumps(e))
        except Exception:  # noqa: BLE001
            error = RuntimeError(f"{type(e).__name__}: {e}")
        send(("error", error, traceback.format_exc()))


def _exit_with_parent(parent: int) -> None:
    """A worker's watch: its parent killed outright (SIGKILL, say) cannot kill it, so it goes itself."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _progress_sender(send, chain: int, opts: dict):
    last = [0.0]

    def on_step(stage, i):
        now = time.perf_counter()
        end = i == (opts["num_warmup"] if stage == "Warmup" else opts["num_samples"]) - 1
        if end or now - last[0] > 0.2:
            last[0] = now
            send(("progress", chain, stage, i))

    return on_step


class _ChainBars:
    """A progress bar per chain on stderr, fed by the workers' (chain, stage, iteration) messages."""

    def __init__(self, num_chains: int, opts: dict):
        from tqdm.auto import tqdm

        self.warmup, total = opts["num_warmup"], opts["num_warmup"] + opts["num_samples"]
        self.bars = [tqdm(total=total, desc=f"chain {c + 1} warmup", position=c, file=sys.stderr, leave=True,
                          dynamic_ncols=True) for c in range(num_chains)]
        self.started = set()

    def update(self, chain: int, stage: str, i: int) -> None:
        bar = self.bars[chain]
        if chain not in self.started:  # the clock starts with the chain, not with its worker's imports
            self.started.add(chain)
            bar.reset()
        if stage == "Sample" and bar.desc.endswith("warmup"):
            bar.set_description(f"chain {chain + 1} sample", refresh=False)
        bar.update(i + 1 + (self.warmup if stage == "Sample" else 0) - bar.n)

    def close(self) -> None:
        for bar in self.bars:
            bar.close()


def _read_messages(pipe, worker: int, inbox: queue.Queue) -> None:
    """A reader thread: a worker's messages into ``inbox``, then ("eof", worker)."""
    with os.fdopen(pipe, "rb") as f:
        while True:
            try:
                inbox.put(pickle.load(f))
            except EOFError:
                break
            except Exception as e:  # noqa: BLE001 - a message that does not unpickle is the worker's error
                inbox.put(("error", RuntimeError(f"a chain worker's message could not be read: {e}"), ""))
                break
    inbox.put(("eof", worker))


def run_chains_in_workers(payload: bytes, seeds: list[int], opts: dict, progress_bar: bool) -> list:
    """The chains' outputs, in order, from ``min(chains, cores)`` worker processes, each running
    its share of the chains one after another."""
    num_workers = min(len(seeds), usable_cpus())
    shares = [[(c, s) for c, s in enumerate(seeds) if c % num_workers == w] for w in range(num_workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    inbox: queue.Queue = queue.Queue()
    workers, bars = [], _ChainBars(len(seeds), opts) if progress_bar else None
    try:
        for w, share in enumerate(shares):
            read, write = os.pipe()
            try:
                proc = subprocess.Popen([sys.executable, "-c", _WORKER, str(write)], stdin=subprocess.PIPE,
                                        pass_fds=(write,), env=env, start_new_session=True)
            finally:
                os.close(write)
            workers.append(proc)
            threading.Thread(target=_read_messages, args=(read, w, inbox), daemon=True).start()
            for part in (sys.path, payload, (share, progress_bar)):
                proc.stdin.write(part if isinstance(part, bytes) else pickle.dumps(part))
            proc.stdin.close()
        outputs, running = {}, num_workers
        while running:
            message = _get(inbox)
            if message[0] == "progress":
                bars.update(*message[1:])
            elif message[0] == "done":
                outputs[message[1]] = message[2]
            elif message[0] == "error":
                error, remote = message[1], message[2]
                if remote:
                    error.add_note(f"in a chain worker process:\n{remote}")
                raise error
            else:  # eof
                running -= 1
                proc = workers[message[1]]
                if proc.wait() != 0 or any(c not in outputs for c, _ in shares[message[1]]):
                    raise RuntimeError(f"a chain worker process (chains {[c + 1 for c, _ in shares[message[1]]]}) "
                                       f"ended with status {proc.returncode} before its chains were done")
        return [outputs[c] for c in range(len(seeds))]
    finally:  # on an error or KeyboardInterrupt, no worker outlives the run
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if bars is not None:
            bars.close()


def _get(inbox: queue.Queue):
    """The next message; waits in short slices, so that a Ctrl-C is seen at once."""
    while True:
        try:
            return inbox.get(timeout=0.2)
        except queue.Empty:
            continue


# A worker's imports take about 2 s of a core: below this many iterations per chain, chains stay in
# the parent unless parallel is asked for.
PARALLEL_MIN_ITERATIONS = 500


def chain_method_of(requested: str | None, num_chains: int, checkpoint, payload: bytes | None, why: str,
                    iterations: int = PARALLEL_MIN_ITERATIONS) -> str:
    """The chain method a run uses: ``requested``, else parallel when it can help and can run: several
    chains of at least ``PARALLEL_MIN_ITERATIONS`` iterations (warmup and draws), more than one core, no
    checkpoint, a model that can go to a worker, and not already in a pool's worker process (a sweep's,
    which spreads its runs over the cores)."""
    if requested == "parallel":
        if checkpoint is not None:
            raise ValueError("a checkpointed Pyro MCMC run runs its chains one after another: "
                             "pass chain_method='sequential' (or leave it unset) with a checkpoint")
        if payload is None and num_chains > 1:
            raise ValueError(f"chain_method='parallel' sends the model to worker processes, but {why}: define "
                             "the model at the top level of an importable module, or pass chain_method='sequential'")
        return "parallel" if num_chains > 1 else "sequential"
    if (requested is None and num_chains > 1 and iterations >= PARALLEL_MIN_ITERATIONS and usable_cpus() > 1
            and checkpoint is None and payload is not None and not multiprocessing.current_process().daemon):
        return "parallel"
    return "sequential"


def run(spec, model, *, method, seed, device, dtype, progress_bar, **opts) -> InferenceResult:
    chains, diverging, step_size, warmup_s, sampling_s = [], [], [], 0.0, 0.0
    shape = (opts["num_chains"], opts["num_samples"])
    checkpoint = Checkpoint.of_run(spec.name, "pyro", method, seed, opts,  # chains one after the other
                                    total=opts["num_chains"] * opts["num_samples"], unit="draw")
    with backend_context(device, dtype, small=is_small(spec)) as dev:
        data = to_backend(spec.data, dev)
        start(seed)
        spec_model = model
        (model,) = with_networks(spec, seed, dev, model)  # networks, if any, at their initial weights
        sites = trace_sites(model, data)
        seeds = chain_seeds(seed, opts["num_chains"])
        requested, iterations = opts.get("chain_method"), opts["num_warmup"] + opts["num_samples"]
        # the payload (the data pickled) is made only for a run that may go to workers
        may_go = requested == "parallel" or (requested is None and chain_method_of(
            None, opts["num_chains"], checkpoint, b"", "", iterations) == "parallel")
        payload, why = (parallel_payload(spec, spec_model, method, seed, device, dtype, opts, sites.max_plate_nesting)
                        if may_go else (None, ""))
        chain_method = chain_method_of(requested, opts["num_chains"], checkpoint, payload, why, iterations)
        saved = checkpoint.load() if checkpoint is not None else None
        finished = saved[2]["chains"] if saved is not None else []
        if chain_method == "parallel":
            finished = run_chains_in_workers(payload, seeds, opts, progress_bar)
        for chain, chain_seed in enumerate(seeds):
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
            # Predictive first runs the model unconditioned to guess its plates, drawing each latent from
            # its prior, which an improper one (garch11's ImproperUniform mu) cannot give: init_to_uniform
            # draws those; the posterior draws then condition every latent as before
            predictive = Predictive(InitMessenger(init_to_uniform)(model), posterior_samples=flat,
                                    return_sites=list(sites.deterministic))
            samples |= predictive_draws(predictive, data, sites.deterministic, shape)
    return InferenceResult(
        model=spec.name, backend="pyro", method=method, samples=samples, observed_data=sites.observed,
        sample_stats={"diverging": np.stack(diverging),
                      "step_size": np.broadcast_to(np.array(step_size)[:, None], shape).copy()},
        timing={"warmup": warmup_s, "sampling": sampling_s},
        info={"chain_method": chain_method},
    )

