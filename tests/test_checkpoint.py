"""Checkpoints: a run killed with SIGKILL and started again resumes from its last checkpoint and
ends with the same numbers as an uninterrupted run (same device).

Every run here is a process of its own, with XLA's CPU reductions single-threaded. Even so, two
processes running the same program can differ in the last bit of a float64 (a few losses in
1000, 1 ulp, measured with and without checkpoints), so "the same numbers" is checked to 1e-12
relative: far below any statistical use, far above that noise."""
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import inference
from ppl_models.errors import CheckpointError

VAE = dict(guide="spec", num_steps=600, batch_size=128, learning_rate=0.01, num_samples=0)
RUNS = {  # (model, backend, method, options, the checkpoint after which the first attempt dies)
    "numpyro svi, full batch": ("eight_schools-eight_schools_noncentered", "numpyro", "svi",
                                dict(guide="normal", num_steps=1000, learning_rate=0.05, num_samples=100), 300),
    "numpyro svi, minibatches": ("onehot4-vae", "numpyro", "svi", VAE, 300),
    "pyro svi, minibatches": ("onehot4-vae", "pyro", "svi", VAE, 300),
    "numpyro nuts, 2 chains": ("eight_schools-eight_schools_noncentered", "numpyro", "nuts",
                               dict(num_warmup=200, num_samples=300, num_chains=2), 200),
    # steps count draws over the chains, one after another: 250 is the first piece of chain 1
    "pyro nuts, 2 chains": ("eight_schools-eight_schools_noncentered", "pyro", "nuts",
                            dict(num_warmup=100, num_samples=150, num_chains=2), 250),
}
SCRIPT = """
import os, signal, sys
import numpy as np
import inference, inference.checkpoint as c
model, backend, method, options, checkpoint, kill_at, out = {args!r}
save = c.Checkpoint.save
def save_then_die(self, step, state, record):
    save(self, step, state, record)
    if step == kill_at:  # mid-run, right after a checkpoint
        os.kill(os.getpid(), signal.SIGKILL)
c.Checkpoint.save = save_then_die
r = inference.run(model, method=method, backend=backend, seed=0, progress_bar=False, checkpoint=checkpoint,
                  checkpoint_every=100, **options)
arrays = {{"losses": r.losses}} if r.losses is not None else {{}}
for prefix, tree in (("param", r.params or {{}}), ("draw", r.samples), ("stat", r.sample_stats)):
    arrays |= {{f"{{prefix}}:{{k}}": v for k, v in tree.items()}}
np.savez(out, **arrays)
"""


def _run(run, checkpoint, out, kill_at=None):
    model, backend, method, options, _ = run
    env = {**os.environ, "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
    code = SCRIPT.format(args=(model, backend, method, options, str(checkpoint), kill_at, str(out)))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.parametrize("name", ["numpyro svi, minibatches", "pyro svi, minibatches", "numpyro nuts, 2 chains"])
def test_a_run_killed_with_sigkill_resumes_and_ends_as_an_uninterrupted_run(tmp_path, name):
    """SVI: parameters, optimizer state, RNG state and the epoch's data order; NUTS: the sampler
    state after warmup (step size, mass matrix, position, keys) and the draws so far."""
    run = RUNS[name]
    path = tmp_path / "run.ckpt"
    killed = _run(run, path, tmp_path / "never.npz", kill_at=run[4])
    assert killed.returncode == -9 and not (tmp_path / "never.npz").exists(), killed.stderr[-2000:]
    with path.open("rb") as f:
        saved = pickle.load(f)
    assert saved["step"] == run[4] and saved["run"]["model"] == run[0]

    for label, checkpoint in [("resumed", path), ("whole", tmp_path / "whole.ckpt")]:
        done = _run(run, checkpoint, tmp_path / f"{label}.npz")
        assert done.returncode == 0, done.stderr[-2000:]
    resumed, whole = (np.load(tmp_path / f"{label}.npz") for label in ("resumed", "whole"))
    assert sorted(resumed.files) == sorted(whole.files)
    length = run[3]["num_steps"] if run[2] == "svi" else run[3]["num_samples"]
    assert len(whole["losses"] if run[2] == "svi" else whole["draw:mu"][0]) == length
    for name in whole.files:
        np.testing.assert_allclose(resumed[name], whole[name], rtol=1e-12, atol=0, err_msg=name)


@pytest.mark.parametrize("name", ["numpyro svi, full batch", "pyro nuts, 2 chains"])
def test_a_run_that_crashed_resumes_where_it_stopped(tmp_path, monkeypatch, name):
    """In one process: a crash right after a checkpoint, then the same call again. NumPyro's full-batch
    SVI loop from a saved state; Pyro's NUTS, whose chains run one after another, in the second chain."""
    import inference.checkpoint as checkpoint

    model, backend, method, options, crash_at = RUNS[name]
    save = checkpoint.Checkpoint.save

    def save_then_crash(self, step, state, record):
        save(self, step, state, record)
        if step == crash_at:
            raise KeyboardInterrupt

    def fit(path):
        return inference.run(model, method=method, backend=backend, seed=0, progress_bar=False, checkpoint=path,
                             checkpoint_every=100, **options)

    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.Checkpoint, "save", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path / "run.ckpt")
    resumed, whole = fit(tmp_path / "run.ckpt"), fit(tmp_path / "whole.ckpt")
    for part in ("params", "samples", "sample_stats"):
        theirs = getattr(whole, part) or {}
        assert sorted(getattr(resumed, part) or {}) == sorted(theirs)
        for key, value in theirs.items():
            np.testing.assert_allclose(getattr(resumed, part)[key], value, rtol=1e-12, atol=0, err_msg=key)
    if method == "svi":
        np.testing.assert_allclose(resumed.losses, whole.losses, rtol=1e-12, atol=0)


def test_a_checkpoint_of_another_run_is_refused_by_what_differs(tmp_path):
    model, _, _, options, _ = RUNS["numpyro svi, full batch"]
    path = tmp_path / "run.ckpt"
    inference.run(model, method="svi", backend="numpyro", checkpoint=path, checkpoint_every=500, **options)
    with pytest.raises(ValueError, match=r"written by another run.*learning_rate"):
        inference.run(model, method="svi", backend="numpyro", checkpoint=path, checkpoint_every=500,
                      **(options | {"learning_rate": 0.01}))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read.*delete it to start afresh"):
        inference.run(model, method="svi", backend="numpyro", checkpoint=path, **options)
    with pytest.raises(ValueError, match="unknown option for method 'is' 'checkpoint'"):
        inference.run(model, method="is", backend="numpyro", checkpoint=path)


HOLD = """
import fcntl, os, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.truncate(0); f.write(str(os.getpid())); f.flush()
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the lock is a Unix flock")
def test_a_checkpoint_in_use_by_another_process_is_refused_and_free_once_that_process_ends(tmp_path):
    model, _, _, options, _ = RUNS["numpyro svi, full batch"]
    path = tmp_path / "run.ckpt"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path) + ".lock"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointError, match=rf"run.ckpt is in use by another run \(process {holder.pid}\)"):
            inference.run(model, method="svi", backend="numpyro", checkpoint=path, checkpoint_every=500, **options)
        assert not path.exists()  # refused before anything was written
    finally:
        holder.kill()
        holder.wait()
    r = inference.run(model, method="svi", backend="numpyro", checkpoint=path, checkpoint_every=500, **options)
    assert path.exists() and len(r.losses) == options["num_steps"]
    # finished, the run gives the lock back: this process may return its saved result, and so may another
    again = inference.run(model, method="svi", backend="numpyro", checkpoint=path, checkpoint_every=500, **options)
    np.testing.assert_array_equal(again.losses, r.losses)
    out = _run(RUNS["numpyro svi, full batch"], path, tmp_path / "again.npz")
    assert out.returncode == 0 and "holds a finished run" in out.stderr, out.stderr
