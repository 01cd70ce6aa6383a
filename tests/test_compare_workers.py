"""``compare(..., workers=N)``: the methods run N at a time in spawned worker processes, and the
table is the one the sequential run gives: same rows, same order, the same numbers (each run is
seeded as it would be in-process), the plug-in methods registered here found in the workers."""
import dataclasses

import numpy as np
import pytest

import inference
import ppl_models
from tests import plugin_rwm  # noqa: F401 - registers "rwm", which the workers must find

ES = "eight_schools-eight_schools_noncentered"
METHODS = [("numpyro", "nuts", dict(num_warmup=200, num_samples=200, num_chains=2)),
           ("pyro", "svi", dict(num_steps=300)),
           ("numpyro", "rwm", dict(num_warmup=200, num_samples=400, num_chains=2))]


def test_workers_give_the_sequential_table(tmp_path):
    parallel = inference.compare(ES, METHODS, seed=3, out=tmp_path / "parallel", workers=2)
    sequential = inference.compare(ES, METHODS, seed=3, out=tmp_path / "sequential")
    assert list(parallel.index) == list(sequential.index) == [
        "numpyro nuts num_chains=2 num_samples=200 num_warmup=200", "pyro svi num_steps=300",
        "numpyro rwm num_chains=2 num_samples=400 num_warmup=200"]
    for column in ("mean[mu]", "mean[tau]", "sd[tau]", "max_abs_z_mean"):
        np.testing.assert_allclose(parallel[column], sequential[column], rtol=1e-6, err_msg=column)
    assert sorted(p.name for p in (tmp_path / "parallel").glob("*.npz")) == \
        sorted(p.name for p in (tmp_path / "sequential").glob("*.npz"))


def test_a_model_that_cannot_go_to_a_worker_is_named():
    spec = ppl_models.get_model(ES)
    local = dataclasses.replace(spec, name="local-eight-schools", model={"numpyro": lambda **kw: None})
    with pytest.raises(ValueError, match="'local-eight-schools' does not pickle.*workers=1"):
        inference.compare(local, [("numpyro", "nuts", {})], workers=2)


@pytest.mark.parametrize("workers", [0, 1.5, True])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(ValueError, match="workers="):
        inference.compare(ES, METHODS[:1], workers=workers)


def test_a_run_that_fails_in_a_worker_fails_the_comparison_in_one_piece():
    """An error raised in a worker comes back to the caller (a TrainingError whole, with its step):
    the pool's result thread would otherwise die on an error it cannot rebuild, and the caller wait
    for ever. A learning rate of 1e30 makes the first steps' loss non-finite."""
    from ppl_models.errors import TrainingError

    with pytest.raises(TrainingError, match="training stopped at step") as caught:
        inference.compare(ES, [("numpyro", "svi", dict(num_steps=50, learning_rate=1e30))], workers=2)
    assert caught.value.step >= 0 and caught.value.result is not None
