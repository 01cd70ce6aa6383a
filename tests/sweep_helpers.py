"""A worker target for tests/test_sweep.py: dies by SIGKILL on seed 13, otherwise works as usual.
A module of its own so that spawned worker processes can import it (Ray workers get it by value)."""
import os
import signal

from inference.sweep import execute


def dies_on_seed_13(run, store):
    if run.seed == 13:
        os.kill(os.getpid(), signal.SIGKILL)
    return execute(run, store)
