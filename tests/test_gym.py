"""The Inference Gym targets (``ppl_models.gym``): each model's log density is the gym's own, and its
reference is the gym's exact ground truth.

The gym's JAX substrate runs in float32 (with ``jax_enable_x64`` its float32 constants refuse
float64 points), so its log densities are compared at float32's precision; the models' are computed
in float64 (``inference.contract``), on both backends.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ppl_models
from inference.contract import BackendModel
from ppl_models.gym.targets import BANANA, FUNNEL, GAUSSIAN, gym_target

# name -> (gym class, how the gym's vector x splits into the model's sites)
TARGETS = {BANANA: ("Banana", lambda x: {"x0": x[0], "x1": x[1]}),
           FUNNEL: ("NealsFunnel", lambda x: {"v": x[0], "z": x[1:]}),
           GAUSSIAN: ("IllConditionedGaussian", lambda x: {"x": x})}


@pytest.mark.parametrize("name", list(TARGETS))
def test_log_density_is_the_gyms(name):
    cls, split = TARGETS[name]
    spec = ppl_models.get_model(name)
    with jax.enable_x64(False):
        target = gym_target(cls)
        # compiled once each: run op by op, the gym's TFP code compiles (and caches) hundreds of small programs
        sample, log_prob = jax.jit(lambda key: target.sample(seed=key)), jax.jit(target.unnormalized_log_prob)
        points = [np.asarray(sample(jax.random.PRNGKey(i)), np.float32) for i in range(3)]
        theirs = [float(log_prob(jnp.asarray(x))) for x in points]
    assert len(set(np.round(theirs, 3))) == 3  # three different values, not one constant
    for backend in ("numpyro", "pyro"):
        side = BackendModel(spec, backend, {})
        ours = [side.log_density(split(x.astype(float))) for x in points]
        np.testing.assert_allclose(ours, theirs, rtol=2e-5, err_msg=backend)


def test_references_are_the_gyms_exact_ground_truth():
    banana, funnel, gaussian = (ppl_models.get_model(n).reference for n in (BANANA, FUNNEL, GAUSSIAN))
    assert banana.is_exact and funnel.is_exact and gaussian.is_exact
    np.testing.assert_allclose([banana.sd["x0"], banana.sd["x1"]], [10.0, np.sqrt(1 + 2 * 0.03**2 * 1e4)])
    np.testing.assert_allclose(funnel.sd["v"], 3.0)
    np.testing.assert_allclose(funnel.sd["z"], np.full(9, np.exp(9 / 4)))
    assert gaussian.sd["x"].shape == (100,) and (gaussian.mean["x"] == 0).all()
    assert 5 < gaussian.sd["x"].min() < gaussian.sd["x"].max() < 80
