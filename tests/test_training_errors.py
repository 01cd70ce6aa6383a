"""A non-finite loss stops SVI with the step number and the last finite loss; the last good parameters are kept."""
import numpy as np
import pytest

import inference
from ppl_models import Minibatch, ModelSpec, TrainingError
from ppl_models.generic import dist, for_backends, pyro


def model(y=None):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    pyro.sample("y", dist.Normal(mu, 0.1), obs=y)


def minibatch_model(y, num_data):
    mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
    with pyro.plate("data", num_data, subsample_size=y.shape[0]):
        pyro.sample("y", dist.Normal(mu, 0.1), obs=y)


def guide(y=None, num_data=None):
    """The location is sqrt(p): the data pull it below zero, p turns negative and the loss NaN."""
    p = pyro.param("p", 1.0)
    pyro.sample("mu", dist.Normal(p**0.5, 0.1))


SPEC = ModelSpec("test-diverging", {"y": np.array(-5.0)}, model=for_backends(model), guide=for_backends(guide))
MINIBATCH_SPEC = ModelSpec("test-diverging-minibatches", {"y": np.linspace(-6.0, -4.0, 40), "num_data": 40},
                           model=for_backends(minibatch_model), guide=for_backends(guide),
                           minibatch=Minibatch(keys=("y",)))


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
@pytest.mark.parametrize("spec, batch_size", [(SPEC, None), (MINIBATCH_SPEC, 10)], ids=["full data", "minibatches"])
def test_nan_loss_stops_training_and_keeps_last_good_params(backend, spec, batch_size):
    with pytest.raises(TrainingError) as e:
        inference.run(spec, method="svi", backend=backend, guide="spec", num_steps=500, learning_rate=0.1,
                      batch_size=batch_size)
    err = e.value
    assert 0 < err.step < 500 and np.isfinite(err.last_loss)
    assert f"training stopped at step {err.step}" in str(err) and f"at step {err.step - 1}" in str(err)
    losses = err.result.losses
    assert len(losses) == err.step + 1 and np.isfinite(losses[:-1]).all() and not np.isfinite(losses[-1])
    assert err.last_loss == losses[-2]
    p = float(err.result.params["p"])
    assert 0 <= p < 1.0  # the parameters that gave the last finite loss: moved towards 0, not yet negative
    assert not err.result.samples  # no posterior draws from a failed run


def test_same_failure_step_on_both_backends():
    """Adam's trajectory is deterministic here (no randomness reaches p's gradient sign), so both stop alike."""
    steps = {}
    for backend in ("numpyro", "pyro"):
        with pytest.raises(TrainingError) as e:
            inference.run(SPEC, method="svi", backend=backend, guide="spec", num_steps=500, learning_rate=0.1)
        steps[backend] = e.value.step
    assert abs(steps["numpyro"] - steps["pyro"]) <= 2, steps
