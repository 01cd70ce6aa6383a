"""Speed-up of a sweep with 2 workers against 1, for the local executor and for Ray.

Two grids (``--grid``):

- ``svi`` (the issue-6 grid): eight schools (non-centered), NumPyro SVI with a mean-field guide,
  3000 steps, seeds 0-3 (4 runs);
- ``leaderboard`` (issue 16): four small posteriordb posteriors x NumPyro NUTS and mean-field SVI
  x seeds 0-1 (16 runs), as ``ppl leaderboard`` runs them.

Each executor runs the grid with 1 worker and with 2, interleaved over ``--rounds`` (this machine
is shared and noisy); Ray runs on a local cluster of that many CPUs, started on loopback. Local
workers are processes that serve run after run, and Ray reuses its worker processes, so imports are
paid once per worker. Every worker computes on one thread, and with 2 workers each holds a core of its
own (``inference.worker_cores``), so that XLA's compiler threads stay on it. Prints seconds per sweep
and the ratio.

- ``--cache``: each sweep starts with an empty JAX persistent compilation cache of its own, shared
  by its workers (as ``ppl leaderboard`` shares ``~/.cache/ppl/jax``), so a program compiled for one
  seed is read back for the next.
- ``--core-per-worker``: each sweep runs on as many cores as it has workers (``sched_setaffinity``,
  inherited by the workers and the Ray cluster), as on a machine with a core per worker. On a
  machine with as many cores as workers, one worker already has them all, and 2 workers against 1
  measures the cores' contention, not the executor.

    python -m benchmarks.sweep_speedup --rounds 2 --grid leaderboard --cache --core-per-worker
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.entry import run_benchmark

GRIDS = {
    "svi": """models: [eight_schools-eight_schools_noncentered]
methods:
  - numpyro:svi:guide=normal,num_steps=3000,learning_rate=0.05
seeds: [0, 1, 2, 3]
""",
    "leaderboard": """models: [kidiq-kidscore_momiq, sblri-blr, earnings-earn_height, mesquite-logmesquite_logvolume]
methods:
  - numpyro:nuts
  - numpyro:svi:guide=normal
seeds: [0, 1]
""",
}
CONFIG = """store: {store}
executor: {executor}
workers: {workers}
"""


def _ray_cluster(num_cpus: int) -> tuple[str, list[str]]:
    ray = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run([ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={num_cpus}",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, capture_output=True)
    return f"127.0.0.1:{port}", [ray, "stop", "--force"]


@contextlib.contextmanager
def _cores(count: int | None):
    """This process and its children on the first ``count`` cores it may use (all of them: None)."""
    before = os.sched_getaffinity(0)
    if count is not None:
        if count > len(before):
            raise SystemExit(f"--core-per-worker: {count} workers need {count} cores; this process has {len(before)}")
        os.sched_setaffinity(0, sorted(before)[:count])
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def sweep_seconds(executor: str, workers: int, grid: str = "svi", cache: bool = False,
                  core_per_worker: bool = False) -> float:
    from inference import compilation_cache
    from inference.compare import environment
    from inference.sweep import load_config, run_sweep

    with tempfile.TemporaryDirectory() as folder, _cores(workers if core_per_worker else None), \
            environment(**({"JAX_COMPILATION_CACHE_DIR": str(Path(folder) / "jax")} if cache
                            else {"PPL_JAX_CACHE": "0"})):
        compilation_cache.enable()  # the JAX variables for the workers, which import JAX afresh
        address, stop = _ray_cluster(workers) if executor == "ray" else (None, None)
        try:
            path = Path(folder) / "sweep.yaml"
            path.write_text(GRIDS[grid]
                            + CONFIG.format(store=Path(folder) / "store", executor=executor, workers=workers)
                            + (f"address: {address}\n" if address else ""))
            sweep = load_config(path)
            t0 = time.perf_counter()
            index = run_sweep(sweep)
            seconds = time.perf_counter() - t0
            assert (index["status"] == "ok").all(), index["error"].tolist()
        finally:
            if executor == "ray":
                import ray

                ray.shutdown()
                subprocess.run(stop, capture_output=True)
    return seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--executors", nargs="+", default=["local", "ray"])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="leaderboard")
    parser.add_argument("--cache", action="store_true", help="a fresh JAX compilation cache per sweep")
    parser.add_argument("--core-per-worker", action="store_true", help="each sweep on as many cores as workers")
    args = parser.parse_args(argv)
    times = {(e, w): [] for e in args.executors for w in (1, 2)}
    for _ in range(args.rounds):
        for executor in args.executors:
            for workers in (1, 2):
                times[executor, workers].append(sweep_seconds(executor, workers, args.grid, args.cache,
                                                                    args.core_per_worker))
                print(executor, workers, round(times[executor, workers][-1], 1), flush=True)
    print("| executor | 1 worker (s) | 2 workers (s) | speed-up |\n|---|---|---|---|")
    for executor in args.executors:
        one, two = min(times[executor, 1]), min(times[executor, 2])
        print(f"| {executor} | {one:.1f} | {two:.1f} | {one / two:.2f} |")


if __name__ == "__main__":
    run_benchmark(main)
