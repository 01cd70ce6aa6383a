"""Test setup: the data directory defaults to ../shared/data beside the repository, compiled
JAX programs are cached on disk across tests and workers, each
pytest-xdist worker runs single-threaded, and JAX's compiled programs are released after each test."""
import gc
import os
import sys
import tempfile
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("PPL_DATA_DIR", str(SHARED_DATA))

# JAX's persistent compilation cache, shared by the workers (and by the subprocesses tests start).
# The fixture below clears JAX's in-memory caches after every test, so without it each test would
# compile afresh the same programs, eager operations included (about 70 ms each on the CPU; a
# model's first trace compiles over a hundred). Set before JAX is imported; a run's own setting wins.
JAX_CACHE = Path(tempfile.gettempdir()) / f"ppl-tests-jax-cache-{os.getuid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(JAX_CACHE))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers share the cores: one thread each, or PyTorch's and XLA's thread pools spin against
    # each other (a small Pyro step took 3-5 times as long with two threads as with one).
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def release_compiled_programs():
    """Every program XLA compiles for the CPU keeps memory mappings of its own until it is freed.
    Over the whole suite (hundreds of compiled samplers and training loops, one process) they
    reached Linux's limit of 65530 mappings per process, and XLA's compiler crashed with a
    segmentation fault where its next allocation failed. Clearing JAX's caches after each test
    lets the programs go (the count stays near 1600 instead of growing by thousands per file)."""
    yield
    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
        gc.collect()
