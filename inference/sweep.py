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

import itertools
import json
import multiprocessing
import os
import re
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ppl_models.atomic import atomic_write

EXECUTORS = ("local", "ray")
KEYS = ("models", "methods", "seeds", "store", "executor", "address", "workers")


class SweepConfigError(ValueError):
    """A config that cannot run; the message names its line."""


@dataclass(frozen=True)
class Run:
    model: str
    backend: str
    method: str
    options: dict
    seed: int

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


def load_config(path: str | os.PathLike) -> Sweep:
    """Read and check a sweep config; a ``SweepConfigError`` names the line at fault."""
    import yaml

    from inference.api import resolve_model
    from inference.cli import parse_method
    from inference.options import resolve_options

    path = Path(path)
    if not path.exists():
        raise SweepConfigError(f"no sweep config at {path}")
    text = path.read_text()
    try:
        config = yaml.safe_load(text)
        lines = _lines(text)
    except yaml.YAMLError as e:
        raise SweepConfigError(f"{path}: not valid YAML: {e}") from None

    def fail(where, message):
        line = lines.get(where)
        raise SweepConfigError(f"{path}" + (f", line {line}" if line else "") + f": {message}")

    if not isinstance(config, dict):
        fail(None, "a sweep config is a mapping with models, methods and seeds")
    for key in config:
        if key not in KEYS:
            fail(key, f"unknown key {key!r}; valid keys: {', '.join(KEYS)}")
    for key in ("models", "methods"):
        if not isinstance(config.get(key), list) or not config[key]:
            fail(key, f"{key} must be a non-empty list")
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
    specs = {}
    for i, name in enumerate(config["models"]):
        try:
            specs[name] = resolve_model(name)
        except (ValueError, TypeError) as e:
            fail(("models", i), str(e))
    methods = []
    for i, text_method in enumerate(config["methods"]):
        try:
            backend, method, options = parse_method(str(text_method))
            resolve_options(method, backend, options)
        except (ValueError, TypeError) as e:
            hint = ("; a YAML [a, b] list splits a method's options at their commas: quote the method or give it "
                    "its own '- ' line") if ":" not in str(text_method) and "=" in str(text_method) else ""
            fail(("methods", i), str(e) + hint)
        for name, spec in specs.items():
            if backend not in spec.backends:
                fail(("methods", i), f"model {name!r} has no {backend} backend (it has {', '.join(spec.backends)})")
        methods.append((backend, method, options))
    runs = [Run(m, b, meth, o, s) for m, (b, meth, o), s in itertools.product(specs, methods, seeds)]
    store = Path(config.get("store") or Path("runs") / path.stem)
    return Sweep(runs, store, executor, config.get("address"), workers, str(path))


def execute(run: Run, store: str) -> dict:
    """Run one grid point and write its result and record; returns the record. Exceptions are
    recorded, not raised: a failed run is a finding."""
    import inference
    from inference.api import InferenceWarning
    from inference.compare import score_row
    from inference.held_out import held_out_scores
    from inference.memory import PeakMemory
    from ppl_models import get_model

    store = Path(store)
    record = {"run_id": run.run_id, **run.describe(), "status": "ok", "error": "", "pid": os.getpid()}
    started = time.time()
    warnings.simplefilter("ignore", InferenceWarning)  # they are in the record's scores (warnings)
    try:
        with PeakMemory() as memory:
            result = inference.run(run.model, method=run.method, backend=run.backend, seed=run.seed,
                                   progress_bar=False, **run.options)
        result.save(store / "results" / f"{run.run_id}.npz")
        spec = get_model(run.model)
        held_out = held_out_scores(spec, result, run.seed) if spec.held_out is not None else None
        row = score_row(result, spec.reference, memory.peak_mb, held_out)
        record |= {"scores": row, "versions": result.info.get("versions", {}), "device": result.info.get("device")}
    except Exception as error:  # noqa: BLE001 - recorded with its traceback, the sweep goes on
        record |= {"status": "error", "error": f"{type(error).__name__}: {error}",
                   "traceback": traceback.format_exc(limit=5)}
    record["seconds"] = time.time() - started
    write_record(store, record)
    return record


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


def _run_local(todo: list[Run], sweep: Sweep, report: Callable[[Run, dict], None], target=_worker) -> None:
    """At most ``sweep.workers`` processes at once, one per run (spawned: no state leaks between
    runs), each calling ``target(run, store)``. A process that ends without writing its record
    died; that is recorded."""
    context = multiprocessing.get_context("spawn")
    pending, active = list(todo), {}
    while pending or active:
        while pending and len(active) < sweep.workers:
            run = pending.pop(0)
            process = context.Process(target=target, args=(run, str(sweep.store)), daemon=True)
            process.start()
            active[run.run_id] = (run, process)
        time.sleep(0.1)
        for run_id, (run, process) in list(active.items()):
            if process.is_alive():
                continue
            process.join()
            del active[run_id]
            record_path = sweep.store / "runs" / f"{run.run_id}.json"
            if not record_path.exists():
                record = died(run, f"the worker process ended with exit code {process.exitcode}"
                              + (" (killed by signal " + str(-process.exitcode) + ")" if process.exitcode < 0 else ""))
                write_record(sweep.store, record)
            report(run, json.loads(record_path.read_text()))


def died(run: Run, message: str) -> dict:
    return {"run_id": run.run_id, **run.describe(), "status": "error", "error": f"WorkerDied: {message}"}


def _run_ray(todo: list[Run], sweep: Sweep, report: Callable[[Run, dict], None], target=_worker) -> None:
    """One Ray task per run on the cluster at ``sweep.address`` (a local one when None), each
    calling ``target(run, store)`` and returning its record; a run on CUDA asks for a GPU. A task
    whose worker died (Ray raises instead of returning) is recorded with Ray's error."""
    import ray

    from inference.registry import PLUGINS_ENV

    plugins = {PLUGINS_ENV: os.environ[PLUGINS_ENV]} if PLUGINS_ENV in os.environ else {}
    ray.init(address=sweep.address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             **({"runtime_env": {"env_vars": plugins}} if plugins else {}))
    remote = ray.remote(max_retries=0)(target)
    tasks = {}  # Ray object ref -> run
    for run in todo:
        gpus = 1 if str(run.options.get("device", "cpu")).startswith("cuda") else 0
        tasks[remote.options(num_gpus=gpus).remote(run, str(sweep.store.resolve()))] = run
    while tasks:
        done, _ = ray.wait(list(tasks), num_returns=1)
        run = tasks.pop(done[0])
        try:
            record = ray.get(done[0])
        except Exception as error:  # noqa: BLE001 - the worker died: recorded, the others go on
            record = died(run, f"{type(error).__name__}: {str(error).splitlines()[0]}")
            write_record(sweep.store, record)
        report(run, record)


def run_sweep(sweep: Sweep, progress: Callable[[str], None] | None = None, target=_worker) -> pd.DataFrame:
    """Run the runs of ``sweep`` not yet in its store, then write and return the index.
    ``target`` is what a worker (a local process or a Ray task) calls; tests inject failures through it."""
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

