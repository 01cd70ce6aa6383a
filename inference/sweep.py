"""Sweeps: every (model, method, seed) of a grid, run in worker processes or as Ray tasks, into
one results store.

A config is a small YAML file::

    models: [eight_schools-eight_schools_noncentered, kidiq-conjugate_regression]
    methods:
      - numpyro:nuts:num_warmup=500,num_samples=500
      - numpyro:svi:guide=normal,num_steps=2000
    seeds: [0, 1, 2]
    store: runs/my-sweep       # optional; default runs/<config name>
    executor: local            # or ray (then address: HOST:PORT, or none for a local Ray)
    workers: 2                 # local: processes at once

Everything is checked before anything runs: an unknown model, method, option or executor
is an error that names the config's line. The store holds one JSON file per run
(``runs/<run id>.json``: its config, seed, status, error if any, versions, device, and the
comparison row of ``inference.compare`` when the model has a reference), the run's result
(``results/<run id>.npz``), and ``index.csv``, one row per run for pandas. Every file is
written atomically. A restarted sweep skips the runs that have their JSON file and does the
rest. A run that raises, or whose worker dies (a crash, SIGKILL, out of memory), is recorded
with its error, and the other runs go on.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import multiprocessing
import os
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from inference.worker_cores import claim_core, claimed_core
from ppl_models.atomic import atomic_write

EXECUTORS = ("local", "ray")
RUNS_PER_WORKER = 20  # a local worker process serves this many runs, then a fresh one takes over
KEYS = ("models", "methods", "seeds", "store", "executor", "address", "workers", "timeout")


class SweepConfigError(ValueError):
    """A config that cannot run; the message names its line."""


@dataclass(frozen=True)
class Run:
    model: str
    backend: str
    method: str
    options: dict
    seed: int
    timeout: float | None = field(default=None, compare=False)  # seconds; not part of the run's identity
    pointwise: bool = field(default=True, compare=False)  # False: the saved result drops its pointwise arrays

    @property
    def run_id(self) -> str:
        from inference.compare import method_label

        text = f"{self.model}__{method_label(self.backend, self.method, self.options)}__seed{self.seed}"
        return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)

    def describe(self) -> dict:
        return {"model": self.model, "backend": self.backend, "method": self.method, "options": self.options,
                "seed": self.seed}


@dataclass
class Sweep:
    runs: list[Run]
    store: Path
    executor: str = "local"
    address: str | None = None
    workers: int = 1
    source: str = ""
    timeout: float | None = None  # set: every run's time limit (overrides the config's)
    skipped: list = field(default_factory=list)  # (model, method label, why): pairs a config left out


def _lines(text: str) -> dict:
    """Line numbers (1-based) of each top-level key and each item of a top-level list."""
    import yaml

    out = {}
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return out
    for key, value in root.value:
        out[key.value] = key.start_mark.line + 1
        if isinstance(value, yaml.SequenceNode):
            out.update({(key.value, i): item.start_mark.line + 1 for i, item in enumerate(value.value)})
    return out


POSTERIORDB = "posteriordb"  # ``models: posteriordb``: every registered posterior with its own posteriordb draws
METHOD_KEYS = ("method", "models", "max_dim")


def posteriordb_models() -> list[str]:
    """The registered models whose reference is posteriordb's draws of the same posterior."""
    from ppl_models.registry import list_model_info

    return [info.name for info in list_model_info() if info.reference == f"{POSTERIORDB} {info.name}"]


def reference_dim(spec) -> int:
    """The number of scalar parameters of a model's reference posterior (0 without one)."""
    import numpy as np

    reference = spec.reference
    if reference is None:
        return 0
    if reference.is_exact:
        return int(sum(np.size(v) for v in reference.mean.values()))
    return int(sum(np.prod(np.shape(v)[2:], dtype=int) for v in reference.draws.values()))


def load_config(path: str | os.PathLike, skip_missing_backends: bool = False) -> Sweep:
    """Read and check a sweep config; a ``SweepConfigError`` names the line at fault."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise SweepConfigError(f"no sweep config at {path}")
    text = path.read_text()
    try:
        config = yaml.safe_load(text)
        lines = _lines(text)
    except yaml.YAMLError as e:
        raise SweepConfigError(f"{path}: not valid YAML: {e}") from None
    return check_config(config, str(path), lambda where: f"line {lines[where]}" if where in lines else "",
                        Path("runs") / path.stem, skip_missing_backends)


def check_config(config, source: str, locate: Callable = lambda where: "", default_store: Path | None = None,
                 skip_missing_backends: bool = False) -> Sweep:
    """A ``Sweep`` from a config mapping (a YAML file's, or one built from command-line flags), every
    name and option checked; a ``SweepConfigError`` names ``source`` and, through ``locate(key)`` or
    ``locate((key, index))``, where in it the fault is.

    ``models`` is a list of names, or ``posteriordb`` for every registered posteriordb posterior. A
    method is ``backend:method[:options]``, or a mapping ``{method: ..., models: [...], max_dim: N}``
    that runs it only on those models, or only on those whose reference has at most N parameters.
    A method whose backend a model lacks is an error, or, with ``skip_missing_backends``, a pair
    left out and listed in ``Sweep.skipped``.
    """
    from inference.api import resolve_model
    from inference.cli import parse_method
    from inference.compare import method_label
    from inference.options import resolve_options

    def fail(where, message):
        place = locate(where)
        raise SweepConfigError(source + (f", {place}" if place else "") + f": {message}")

    if not isinstance(config, dict):
        fail(None, "a sweep config is a mapping with models, methods and seeds")
    for key in config:
        if key not in KEYS:
            fail(key, f"unknown key {key!r}; valid keys: {', '.join(KEYS)}")
    if config.get("models") == POSTERIORDB:
        config = config | {"models": posteriordb_models()}
    for key in ("models", "methods"):
        if not isinstance(config.get(key), list) or not config[key]:
            fail(key, f"{key} must be a non-empty list" + (f" (or {POSTERIORDB})" if key == "models" else ""))
    seeds = config.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        fail("seeds", f"seeds must be a non-empty list of integers, not {seeds!r}")
    executor = config.get("executor", "local")
    if executor not in EXECUTORS:
        fail("executor", f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    workers = config.get("workers", 1)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        fail("workers", f"workers must be an integer >= 1, not {workers!r}")
    if config.get("address") is not None and executor != "ray":
        fail("address", "address is for executor: ray")
    timeout = config.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0):
        fail("timeout", f"timeout must be a number of seconds > 0, not {timeout!r}")
    specs = {}
    for i, name in enumerate(config["models"]):
        try:
            specs[name] = resolve_model(name)
        except (ValueError, TypeError) as e:
            fail(("models", i), str(e))
    runs, skipped = [], []
    for i, entry in enumerate(config["methods"]):
        where = ("methods", i)
        entry = entry if isinstance(entry, dict) else {"method": entry}
        unknown = [k for k in entry if k not in METHOD_KEYS]
        if unknown or "method" not in entry:
            fail(where, f"a method entry is backend:method[:options] or a mapping with keys {', '.join(METHOD_KEYS)}"
                 + (f"; unknown key {unknown[0]!r}" if unknown else "; 'method' is missing"))
        text_method = str(entry["method"])
        try:
            backend, method, options = parse_method(text_method)
            resolve_options(method, backend, options)
        except (ValueError, TypeError) as e:
            hint = ("; a YAML [a, b] list splits a method's options at their commas: quote the method or give it "
                    "its own '- ' line") if ":" not in text_method and "=" in text_method else ""
            fail(where, str(e) + hint)
        only = entry.get("models", list(specs))
        if not isinstance(only, list) or any(name not in specs for name in only):
            fail(where, f"models: {only!r} must be a list of the config's models")
        max_dim = entry.get("max_dim")
        if max_dim is not None and (not isinstance(max_dim, int) or isinstance(max_dim, bool) or max_dim < 1):
            fail(where, f"max_dim must be an integer >= 1, not {max_dim!r}")
        for name in only:
            spec = specs[name]
            if max_dim is not None and reference_dim(spec) > max_dim:
                continue
            if backend not in spec.backends:
                if not skip_missing_backends:
                    fail(where, f"model {name!r} has no {backend} backend (it has {', '.join(spec.backends)})")
                skipped.append((name, method_label(backend, method, options), f"no {backend} backend"))
                continue
            runs.extend(Run(name, backend, method, options, seed, timeout) for seed in seeds)
    # seed by seed, model by model as the config lists them (a stable sort keeps the methods' order): a
    # sweep stopped early has covered every model
    order = {name: i for i, name in enumerate(specs)}
    runs.sort(key=lambda r: (seeds.index(r.seed), order[r.model]))
    store = Path(config.get("store") or default_store or Path("runs") / "sweep")
    return Sweep(runs, store, executor, config.get("address"), workers, source, skipped=skipped)


def execute(run: Run, store: str) -> dict:
    """Run one grid point and write its result and record; returns the record. Exceptions are
    recorded, not raised: a failed run is a finding."""
    import inference
    from inference.api import InferenceWarning
    from inference.compare import score_row
    from inference.held_out import held_out_scores
    from inference.memory import run_memory
    from ppl_models import get_model

    store = Path(store)
    record = {"run_id": run.run_id, **run.describe(), "status": "ok", "error": "", "pid": os.getpid(),
              "core": claimed_core()}
    _release_earlier_runs()
    started = time.time()
    timer = _watchdog(run, store, dict(record)) if run.timeout is not None else None
    warnings.simplefilter("ignore", InferenceWarning)  # they are in the record's scores (warnings)
    try:
        with run_memory(run.backend) as memory:
            result = inference.run(run.model, method=run.method, backend=run.backend, seed=run.seed,
                                   progress_bar=False, **run.options)
        saved = result if run.pointwise else dataclasses.replace(result, log_likelihood={}, posterior_predictive={})
        saved.save(store / "results" / f"{run.run_id}.npz")
        spec = get_model(run.model)
        held_out = held_out_scores(spec, result, run.seed) if spec.held_out is not None else None
        row = score_row(result, spec.reference, memory.added_mb, held_out)
        record |= {"scores": row, "versions": result.info.get("versions", {}), "device": result.info.get("device")}
    except Exception as error:  # noqa: BLE001 - recorded with its traceback, the sweep goes on
        record |= {"status": "error", "error": f"{type(error).__name__}: {error}",
                   "traceback": traceback.format_exc(limit=5)}
    record["seconds"] = time.time() - started
    if timer is not None:
        timer.cancel()
    write_record(store, record)
    return record


def _release_earlier_runs() -> None:
    """Free what the runs a worker served before left in memory, so that a worker grows less from run
    to run: JAX keeps every program it compiled (each run jits new closures, which no later run
    calls; with the persistent compilation cache a program needed again is read back from disk, not
    compiled), and cycles wait for the collector. (A run's score is the memory it added,
    ``PeakMemory.added_mb``: what the allocator keeps of earlier runs is not counted.)"""
    import gc

    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()


def _watchdog(run: Run, store: Path, record: dict):
    """After ``run.timeout`` seconds, record the run as timed out and end this process (whatever it is
    computing, compiled code included); the executor then starts a fresh worker for the next run."""
    import threading

    from ppl_models.atomic import remove_in_flight

    def expire():
        remove_in_flight()
        write_record(store, record | {"status": "error", "seconds": run.timeout,
                                      "error": f"Timeout: the run took longer than {run.timeout:g} s"})
        os._exit(124)

    timer = threading.Timer(run.timeout, expire)
    timer.daemon = True
    timer.start()
    return timer


def write_record(store: Path, record: dict) -> None:
    with atomic_write(Path(store) / "runs" / f"{record['run_id']}.json", "w") as f:
        json.dump(record, f, indent=1, default=_jsonable)


def _jsonable(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def finished(store: Path) -> set[str]:
    folder = Path(store) / "runs"
    return {p.stem for p in folder.glob("*.json")} if folder.exists() else set()


def write_index(store: Path) -> pd.DataFrame:
    """``index.csv``: one row per run record in the store (scores flattened into columns)."""
    rows = []
    for path in sorted((Path(store) / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        scores = record.pop("scores", {}) or {}
        record.pop("traceback", None)
        record["options"] = json.dumps(record.get("options", {}), sort_keys=True)
        record["versions"] = json.dumps(record.get("versions", {}), sort_keys=True)
        rows.append(record | {k: v for k, v in scores.items() if k not in record})
    table = pd.DataFrame(rows)
    with atomic_write(Path(store) / "index.csv", "w") as f:
        table.to_csv(f, index=False)
    return table


def _worker(run: Run, store: str) -> dict:
    return execute(run, store)


def _serve(connection, target, pin: bool) -> None:
    """A local worker process: runs each ``(run, store)`` the parent sends with ``target`` and answers
    with the run's id, until it is sent None; on a core of its own if ``pin`` (``worker_cores``).
    Ctrl-C is the parent's to handle: it ends the workers with SIGTERM, whose default action ends a
    worker at once, even inside compiled code (a Python handler would wait for XLA to return), and
    removes what their writes under way left."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if pin:
        claim_core()
    while (task := connection.recv()) is not None:
        run, store = task
        target(run, store)
        connection.send(run.run_id)


def _run_local(todo: list[Run], sweep: Sweep, report: Callable[[Run, dict], None], target=_worker) -> None:
    """``sweep.workers`` worker processes (spawned, computing on one thread each), each handed one run
    at a time, calling ``target(run, store)``. A worker serves run after run, so the imports (several
    seconds of PyTorch and JAX) are paid once per worker, not once per run; every run starts from a
    clean state all the same (``inference.run`` clears Pyro's parameter store and seeds everything).
    A worker that dies (a crash, SIGKILL, out of memory) has its run recorded with the error, and a
    new worker takes its place. With more than one worker, each holds a core of its own while there are
    enough (``inference.worker_cores``)."""
    from multiprocessing.connection import wait

    from inference.compare import single_threaded_children

    context = multiprocessing.get_context("spawn")
    pending, idle, busy = list(todo), [], {}  # busy: connection -> (process, run)
    served = {}  # process -> runs it has served

    def start():
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, target, sweep.workers > 1), daemon=True)
        with single_threaded_children():
            process.start()
        child.close()
        return process, parent

    try:
        while pending or busy:
            while pending and (idle or len(busy) < sweep.workers):
                process, connection = idle.pop() if idle else start()
                run = pending.pop(0)
                connection.send((run, str(sweep.store)))
                busy[connection] = (process, run)
            for connection in wait(list(busy), timeout=1.0):
                process, run = busy.pop(connection)
                try:
                    connection.recv()
                    served[process] = served.get(process, 0) + 1
                    if served[process] < RUNS_PER_WORKER:
                        idle.append((process, connection))
                    else:  # retired, with whatever its runs left in memory that the collector could not free
                        connection.send(None)
                        process.join(timeout=5)
                except (EOFError, OSError):  # the worker died: its run gets a record saying how
                    process.join()
                    code = process.exitcode
                    record_path = sweep.store / "runs" / f"{run.run_id}.json"
                    if not record_path.exists():
                        write_record(sweep.store, died(run, f"the worker process ended with exit code {code}" + (
                            f" (killed by signal {-code})" if code is not None and code < 0 else "")))
                report(run, json.loads((sweep.store / "runs" / f"{run.run_id}.json").read_text()))
    finally:
        for process, _ in busy.values():  # only after an interrupt: their runs are left unrecorded
            process.terminate()
        for _, connection in idle:
            with contextlib.suppress(OSError):
                connection.send(None)
        for process, _ in [*idle, *busy.values()]:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
        if busy:  # the temporary files of the writes the ended workers had under way (ppl_models.atomic)
            for partial in sweep.store.glob("*/.*.tmp"):
                partial.unlink(missing_ok=True)


def died(run: Run, message: str) -> dict:
    return {"run_id": run.run_id, **run.describe(), "status": "error", "error": f"WorkerDied: {message}"}


def _ray_task(target, run: Run, store: str, pin: bool) -> dict:
    """A run in a Ray worker process, held to a core of its own if ``pin`` (the first task a worker
    process runs claims it, before JAX starts its threads; later tasks keep it)."""
    if pin:
        claim_core()
    return target(run, store)


def _run_ray(todo: list[Run], sweep: Sweep, report: Callable[[Run, dict], None], target=_worker) -> None:
    """One Ray task per run on the cluster at ``sweep.address`` (a local one when None), each
    calling ``target(run, store)`` and returning its record; a run on CUDA asks for a GPU. On a
    cluster of several CPUs each worker process holds a core of its own while there are enough
    (``inference.worker_cores``). A task whose worker died (Ray raises instead of returning) is
    recorded with Ray's error."""
    import ray

    from inference.compare import single_threaded_environment
    from inference.registry import PLUGINS_ENV

    plugins = {PLUGINS_ENV: os.environ[PLUGINS_ENV]} if PLUGINS_ENV in os.environ else {}
    # each task computes on one thread, as the local workers do: a cluster runs one task per CPU
    ray.init(address=sweep.address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": plugins | single_threaded_environment()})
    remote = ray.remote(max_retries=0)(_ray_task)
    pin = ray.cluster_resources().get("CPU", 0) >= 2
    tasks = {}  # Ray object ref -> run
    for run in todo:
        gpus = 1 if str(run.options.get("device", "cpu")).startswith("cuda") else 0
        tasks[remote.options(num_gpus=gpus).remote(target, run, str(sweep.store.resolve()), pin)] = run
    while tasks:
        done, _ = ray.wait(list(tasks), num_returns=1)
        run = tasks.pop(done[0])
        try:
            record = ray.get(done[0])
        except Exception as error:  # noqa: BLE001 - the worker died: recorded, the others go on
            path = sweep.store / "runs" / f"{run.run_id}.json"
            if path.exists():  # it ended itself after writing its record (a timeout)
                record = json.loads(path.read_text())
            else:
                record = died(run, f"{type(error).__name__}: {str(error).splitlines()[0]}")
                write_record(sweep.store, record)
        report(run, record)


def run_sweep(sweep: Sweep, progress: Callable[[str], None] | None = None, target=_worker) -> pd.DataFrame:
    """Run the runs of ``sweep`` not yet in its store, then write and return the index.
    ``target`` is what a worker (a local process or a Ray task) calls; tests inject failures through it."""
    if sweep.timeout is not None:
        sweep.runs = [dataclasses.replace(r, timeout=sweep.timeout) for r in sweep.runs]
    if not isinstance(sweep.workers, int) or sweep.workers < 1:
        raise ValueError(f"workers={sweep.workers!r}: expected an integer >= 1")
    done = finished(sweep.store)
    todo = [r for r in sweep.runs if r.run_id not in done]
    sweep.store.mkdir(parents=True, exist_ok=True)
    with atomic_write(sweep.store / "sweep.json", "w") as f:
        json.dump({"source": sweep.source, "executor": sweep.executor, "workers": sweep.workers,
                   "runs": [r.run_id for r in sweep.runs]}, f, indent=1)
    if progress:
        progress(f"{len(sweep.runs)} runs, {len(sweep.runs) - len(todo)} already in {sweep.store}; "
                 f"running {len(todo)} ({sweep.executor}"
                 + (f", {sweep.workers} workers)" if sweep.executor == "local" else ")"))
    count = itertools.count(1)

    def report(run: Run, record: dict) -> None:
        if progress:
            status = "ok" if record["status"] == "ok" else f"FAILED: {record['error']}"
            progress(f"[{next(count)}/{len(todo)}] {run.run_id}: {status}")

    if todo:
        from inference.registry import plugin_environment

        with plugin_environment():  # the workers find the plug-in methods registered here
            if sweep.executor == "ray":
                _run_ray(todo, sweep, report, target)
            else:
                _run_local(todo, sweep, report, target)
    return write_index(sweep.store)

