"""Pyro NUTS chains in worker processes: the same draws as one after another, the default
chain method, errors raised in the parent, and Ctrl-C that stops every worker quietly."""
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import inference
import ppl_models
from inference.backends import chain_seeds, pyro_mcmc
from ppl_models.hierarchical.eight_schools import eight_schools_noncentered
from ppl_models.spec import ModelSpec

ES = "eight_schools-eight_schools_noncentered"


def test_parallel_chains_give_the_sequential_draws():
    kw = dict(method="nuts", backend="pyro", seed=5, num_warmup=60, num_samples=40, num_chains=3)
    par = inference.run(ES, chain_method="parallel", **kw)
    seq = inference.run(ES, chain_method="sequential", **kw)
    assert par.info["chain_method"] == "parallel" and seq.info["chain_method"] == "sequential"
    assert set(par.samples) == set(seq.samples) == {"mu", "tau", "theta_trans", "theta"}
    for name in seq.samples:
        assert par.samples[name].shape == seq.samples[name].shape
        np.testing.assert_array_equal(par.samples[name], seq.samples[name], err_msg=name)
    for name in ("diverging", "step_size"):
        np.testing.assert_array_equal(par.sample_stats[name], seq.sample_stats[name], err_msg=name)
    # and the chains differ from one another (each has its own seed)
    assert not np.array_equal(par.samples["mu"][0], par.samples["mu"][1])


def test_default_chain_method(monkeypatch, tmp_path):
    spec = ppl_models.get_model(ES)
    payload, why = pyro_mcmc.parallel_payload(spec, spec.model_fn("pyro"), "nuts", 0, "cpu", "float64", {}, 1)
    assert payload is not None and why == ""
    monkeypatch.setattr(pyro_mcmc, "usable_cpus", lambda: 2)
    assert pyro_mcmc.chain_method_of(None, 4, None, payload, why) == "parallel"
    assert pyro_mcmc.chain_method_of(None, 1, None, payload, why) == "sequential"
    assert pyro_mcmc.chain_method_of("sequential", 4, None, payload, why) == "sequential"
    assert pyro_mcmc.chain_method_of(None, 4, object(), payload, why) == "sequential"  # checkpointed
    with pytest.raises(ValueError, match="checkpointed"):
        pyro_mcmc.chain_method_of("parallel", 4, object(), payload, why)
    # short chains stay in this process (a worker's imports would cost more than they save), unless asked
    assert pyro_mcmc.chain_method_of(None, 4, None, payload, why, iterations=100) == "sequential"
    assert pyro_mcmc.chain_method_of("parallel", 4, None, payload, why, iterations=100) == "parallel"
    with monkeypatch.context() as patch:  # in a sweep's worker process, which spreads runs over the cores
        patch.setattr(pyro_mcmc.multiprocessing, "current_process", lambda: type("P", (), {"daemon": True})())
        assert pyro_mcmc.chain_method_of(None, 4, None, payload, why) == "sequential"
    monkeypatch.setattr(pyro_mcmc, "usable_cpus", lambda: 1)
    assert pyro_mcmc.chain_method_of(None, 4, None, payload, why) == "sequential"
    # a model pickle cannot take runs its chains in this process, or says why it cannot run in workers
    closure = ModelSpec("closure", spec.data, {"pyro": lambda J, sigma, y=None: eight_schools_noncentered(J, sigma, y)})
    payload, why = pyro_mcmc.parallel_payload(closure, closure.model["pyro"], "nuts", 0, "cpu", "float64", {}, 1)
    assert payload is None and "pickle cannot take the model" in why
    assert pyro_mcmc.chain_method_of(None, 4, None, payload, why) == "sequential"
    with pytest.raises(ValueError, match="pickle cannot take the model.*chain_method='sequential'"):
        pyro_mcmc.chain_method_of("parallel", 4, None, payload, why)


def test_an_error_in_a_worker_is_raised_in_the_parent():
    spec = ppl_models.get_model(ES)
    # no options at all: the worker's kernel fails on the first one it reads
    payload = pickle.dumps({"model": ("bind", eight_schools_noncentered, "pyro"), "networks": {}, "data": spec.data,
                            "method": "nuts", "seed": 0, "device": "cpu", "dtype": "float64", "opts": {},
                            "max_plate_nesting": 1})
    with pytest.raises(KeyError, match="target_accept_prob") as info:
        pyro_mcmc.run_chains_in_workers(payload, chain_seeds(0, 1), {"num_warmup": 1, "num_samples": 1}, False)
    assert any("in a chain worker process" in note for note in info.value.__notes__)


# The child starts with Python's own SIGINT handler, as a program started at a terminal does: a shell
# without job control starts a background job (``pytest ... &``) with SIGINT ignored, and a child
# inherits that, so that the signal would never reach it.
CTRL_C = """
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
import subprocess, sys
popen = subprocess.Popen
class Recorded(popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        print("worker", self.pid, flush=True)
subprocess.Popen = Recorded
import inference
try:
    inference.run("eight_schools-eight_schools_noncentered", method="nuts", backend="pyro", num_chains=2,
                  num_warmup=5000, num_samples=5000, chain_method="parallel")
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_stops_every_worker_without_tracebacks():
    # the process group gets SIGINT, as from a terminal; workers sit in sessions of their own
    child = subprocess.Popen([sys.executable, "-c", CTRL_C], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    workers = [int(child.stdout.readline().split()[1]) for _ in range(2)]
    time.sleep(3)  # let them get into their chains (or not: either way they must go)
    os.killpg(child.pid, signal.SIGINT)
    try:
        out, err = child.communicate(timeout=60)
    except subprocess.TimeoutExpired:  # fail without leaving the child and its workers running
        for pid in (child.pid, *workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        raise
    assert "interrupted" in out and "Traceback" not in err, err
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
