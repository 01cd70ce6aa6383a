"""Test setup: the data directory defaults to ../shared/data beside the repository, each
pytest-xdist worker runs single-threaded, and JAX's compiled programs are released after each test."""
import gc
import os
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
os.environ.setdefault("PPL_DATA_DIR", str(SHARED_DATA))

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
