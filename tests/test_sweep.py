"""Sweeps: config checks that name the line, the local executor (failures, dead workers,
restarts), the results store, and the Ray executor on a local cluster."""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from inference.cli import main
from inference.sweep import SweepConfigError, load_config, run_sweep
from tests.sweep_helpers import dies_on_seed_13

FAST_SVI = "numpyro:svi:guide=normal,num_steps=100,learning_rate=0.05,num_samples=200"


def _config(tmp_path, text: str):
    path = tmp_path / "sweep.yaml"
    path.write_text(text.replace("STORE", str(tmp_path / "store")))
    return path


@pytest.mark.parametrize("text, message", [
    ("models: [nope]\nmethods: [numpyro:nuts]\n", "line 1: unknown model 'nope'"),
    ("models: [kidiq-conjugate_regression]\nmethods:\n  - numpyro:nuts\n  - numpyro:svi:guide=normal,stepz=3\n",
     "line 4: unknown option for method 'svi' 'stepz'"),
    ("models: [kidiq-conjugate_regression]\nmethods: [numpyro:nuts]\nexecutor: slurm\n",
     "line 3: unknown executor 'slurm'; valid choices: local, ray"),
    ("models: [kidiq-conjugate_regression]\nmethods: [numpyro:nuts]\nseeds: 3\n", "line 3: seeds must be"),
    ("models: [kidiq-conjugate_regression]\nmethodz: [numpyro:nuts]\n", "line 2: unknown key 'methodz'"),
    ("models: [kidiq-conjugate_regression]\nmethods: [numpyro:bogus]\n", "line 2: unknown method 'bogus'"),
    ("models: [kidiq-conjugate_regression]\nmethods: [numpyro:svi:guide=normal,num_steps=3]\n",
     "line 2: method 'num_steps=3' must look like.*quote the method"),
])
def test_a_bad_config_is_refused_with_its_line_before_anything_runs(tmp_path, text, message):
    with pytest.raises(SweepConfigError, match=message):
        load_config(_config(tmp_path, text + "store: STORE\n"))
    assert not (tmp_path / "store").exists()


def test_a_local_sweep_records_every_run_and_a_restart_redoes_only_the_unfinished(tmp_path):
    path = _config(tmp_path, f"models: [eight_schools-eight_schools_noncentered]\nmethods:\n  - {FAST_SVI}\n"
                             "  - numpyro:svi:guide=normal,num_steps=20,learning_rate=1.0e+6\n"
                             "seeds: [0, 13]\nworkers: 2\nstore: STORE\n")
    sweep = load_config(path)
    messages = []
    index = run_sweep(sweep, progress=messages.append, target=dies_on_seed_13)
    assert len(index) == 4 and "running 4 (local, 2 workers)" in messages[0]
    by_seed = index.set_index(["seed", "options"])["status"]
    ok = index[index["status"] == "ok"]
    assert len(ok) >= 1 and (ok["seed"] == 0).all()  # seed 0 of the sane SVI runs; seed 13 dies
    died = index[index["seed"] == 13]
    assert (died["error"].str.contains("WorkerDied: the worker process ended with exit code -9")).all()
    assert any("TrainingError" in e or "finite" in e for e in index["error"])  # lr 1e6: its NaN is named
    store = tmp_path / "store"
    assert sorted(p.suffix for p in (store / "runs").iterdir()) == [".json"] * 4
    assert len(list((store / "results").glob("*.npz"))) == len(ok)
    assert pd.read_csv(store / "index.csv").shape[0] == 4 and len(by_seed) == 4
    record = json.loads((store / "runs" / f"{ok['run_id'].iloc[0]}.json").read_text())
    assert record["versions"]["numpyro"] and record["device"] and record["scores"]["energy_distance"] >= -0.1

    # a crash: one record lost; the restart redoes that run alone
    lost = store / "runs" / f"{ok['run_id'].iloc[0]}.json"
    lost.unlink()
    messages.clear()
    index = run_sweep(load_config(path), progress=messages.append)
    assert "4 runs, 3 already in" in messages[0] and "running 1" in messages[0] and len(messages) == 2
    assert len(index) == 4 and lost.exists()


def test_ppl_sweep_prints_the_index_and_exits_1_when_a_run_failed(tmp_path, capsys):
    path = _config(tmp_path, f"models: [kidiq-conjugate_regression]\nmethods:\n  - {FAST_SVI}\n"
                             "  - numpyro:svi:guide=normal,num_steps=20,learning_rate=1.0e+6\nseeds: [0]\n"
                             "store: STORE\n")
    assert main(["sweep", str(path), "--workers", "2"]) == 1
    out, err = capsys.readouterr()
    assert "2 runs (1 failed)" in out and "[2/2]" in err and "FAILED: " in err
    assert main(["sweep", str(path), "--address", "127.0.0.1:1"]) == 2
    assert "--address is for --executor ray" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray")
    ray_cli = shutil.which("ray") or str(__import__("pathlib").Path(sys.executable).with_name("ray"))
    port = _free_port()
    start = [ray_cli, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start, check=True, capture_output=True, timeout=120)
    yield f"127.0.0.1:{port}"
    import ray

    ray.shutdown()
    subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120)


def test_a_sweep_runs_as_ray_tasks_on_a_local_cluster_and_records_a_dead_worker(tmp_path, ray_cluster):
    import ray.cloudpickle

    import tests.sweep_helpers

    # Ray workers cannot import the tests package: the injected target travels by value
    ray.cloudpickle.register_pickle_by_value(tests.sweep_helpers)
    path = _config(tmp_path, f"models: [kidiq-conjugate_regression]\nmethods:\n  - {FAST_SVI}\nseeds: [0, 13]\n"
                             f"executor: ray\naddress: {ray_cluster}\nstore: STORE\n")
    index = run_sweep(load_config(path), target=dies_on_seed_13).set_index("seed")
    assert index.loc[0, "status"] == "ok" and (tmp_path / "store" / "index.csv").exists()
    assert index.loc[0, "pid"] > 0 and np.isfinite(index.loc[0, "max_abs_z_mean"])
    assert index.loc[13, "status"] == "error" and index.loc[13, "error"].startswith("WorkerDied: ")
    assert "WorkerCrashedError: The worker died" in index.loc[13, "error"]


def test_a_run_past_its_timeout_is_a_recorded_failure_and_the_next_run_gets_a_fresh_worker(tmp_path):
    path = _config(tmp_path, "models: [kidiq-conjugate_regression]\nmethods: [numpyro:nuts]\nseeds: [0, 1]\n"
                             "timeout: 1\nstore: STORE\n")
    index = run_sweep(load_config(path))
    assert (index["status"] == "error").all() and index["error"].str.startswith("Timeout: ").all()
    assert index["pid"].nunique() == 2  # the first worker ended itself; another ran seed 1
    assert not list((tmp_path / "store").glob("results/*"))  # no result, whole or partial


HOLD_A_CORE = """
import importlib.util, os, sys
from pathlib import Path
os.sched_setaffinity(0, [int(c) for c in sys.argv[3:]])  # the cores a sweep's workers may use
spec = importlib.util.spec_from_file_location("worker_cores", sys.argv[1])
worker_cores = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker_cores)
core = worker_cores.claim_core(Path(sys.argv[2]))
print(core, *sorted(os.sched_getaffinity(0)), flush=True)
sys.stdin.read()  # holds its core until its stdin closes
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs a platform that pins processes to cores, and 2 cores")
def test_each_worker_holds_a_core_of_its_own_and_a_dead_workers_core_goes_to_the_next(tmp_path):
    import inference.worker_cores

    cores = sorted(os.sched_getaffinity(0))[:2]
    started = []

    def worker():
        process = subprocess.Popen([sys.executable, "-c", HOLD_A_CORE, inference.worker_cores.__file__,
                                    str(tmp_path), *map(str, cores)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   text=True)
        started.append(process)
        claimed, *affinity = process.stdout.readline().split()
        return process, claimed, [int(c) for c in affinity]

    first, second, third = worker(), worker(), worker()
    try:
        assert sorted(int(w[1]) for w in (first, second)) == cores  # one core each...
        assert all(w[2] == [int(w[1])] for w in (first, second))  # ...and held to it
        assert third[1:] == ("None", cores)  # none left: it runs unpinned
        first[0].kill()
        first[0].wait()
        fourth = worker()
        assert fourth[1:] == (first[1], [int(first[1])])  # the lock died with its holder
    finally:
        for process in started:
            process.kill()
            process.wait()
