"""elbo="iwae" (RenyiELBO at alpha=0) is the per-data-point IWAE bound, with the right gradients, on both backends.

Ground truth: PPCA on MNIST, with the fitted guide's locations moved and scales tripled, so the bounds for
K = 1 and K = 5 differ by far more than their Monte Carlo errors. The value of each
library's loss must match the IWAE bound estimated independently from importance weights
(inference.importance.iwae_bounds), and the two libraries' expected gradients with respect
to the guide's locations must agree within Monte Carlo error.
"""
import numpy as np
import pytest

import inference
import ppl_models
from inference.importance import iwae_bounds

K, REPEATS = 5, 200


@pytest.fixture(scope="module")
def setup():
    spec = ppl_models.get_model("mnist-ppca")
    fit = inference.run(spec, method="svi", backend="numpyro", guide="spec", num_steps=2000, learning_rate=0.02,
                        lr_decay=0.05, seed=0)
    # off the optimum (locations moved by about 3 posterior sds), so that gradients are far from zero
    params = {"z_loc": np.asarray(fit.params["z_loc"]) + 0.3, "z_scale": 3 * np.asarray(fit.params["z_scale"])}
    weights = inference.run(spec, method="is", backend="numpyro", params=params, num_samples=4000, seed=3).log_weights
    return spec, params, iwae_bounds(weights, [1, K])


def numpyro_losses_and_grads(spec, params):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import RenyiELBO

    from inference.backends.numpyro_common import to_backend

    with jax.enable_x64(True):
        data = to_backend(spec.data, "float64")
        model, guide = spec.model_fn("numpyro"), spec.guide_fn("numpyro")
        elbo = RenyiELBO(alpha=0.0, num_particles=K)

        def loss(z_loc, key):
            return elbo.loss(key, {"z_loc": z_loc, "z_scale": jnp.asarray(params["z_scale"])}, model, guide, **data)

        value_and_grad = jax.jit(jax.value_and_grad(loss))
        out = [value_and_grad(jnp.asarray(params["z_loc"]), jax.random.PRNGKey(i)) for i in range(REPEATS)]
    return np.array([float(v) for v, _ in out]), np.stack([np.asarray(g) for _, g in out])


def pyro_losses_and_grads(spec, params):
    import pyro
    import torch

    from inference.backends.pyro_common import backend_context, to_backend

    with backend_context("cpu", "float64") as dev:
        data = to_backend(spec.data, dev)
        model, guide = spec.model_fn("pyro"), spec.guide_fn("pyro")
        elbo = pyro.infer.RenyiELBO(alpha=0.0, num_particles=K)
        losses, grads = [], []
        pyro.set_rng_seed(0)
        for _ in range(REPEATS):
            pyro.clear_param_store()
            z_loc = pyro.param("z_loc", torch.tensor(params["z_loc"]))
            pyro.param("z_scale", torch.tensor(params["z_scale"]), constraint=torch.distributions.constraints.positive)
            losses.append(elbo.loss_and_grads(model, guide, **data))
            grads.append(pyro.get_param_store().get_param("z_loc").unconstrained().grad.numpy().copy())
            assert z_loc.shape == grads[-1].shape
    return np.array(losses), np.stack(grads)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_iwae_loss_is_the_per_data_point_bound(setup, backend):
    spec, params, bounds = setup
    losses, _ = (numpyro_losses_and_grads if backend == "numpyro" else pyro_losses_and_grads)(spec, params)
    value, se = -losses.mean(), losses.std(ddof=1) / np.sqrt(REPEATS)
    (elbo, elbo_se), (iwae, iwae_se) = bounds[1], bounds[K]
    assert iwae - elbo > 20 * np.hypot(elbo_se, iwae_se)  # the two bounds are far apart here...
    assert abs(value - iwae) < 4 * np.hypot(se, iwae_se)  # ...and the loss is the IWAE one, per data point


def test_iwae_gradients_agree_between_backends(setup):
    spec, params, _ = setup
    _, g_numpyro = numpyro_losses_and_grads(spec, params)
    _, g_pyro = pyro_losses_and_grads(spec, params)
    diff = g_numpyro.mean(0) - g_pyro.mean(0)
    se = np.sqrt(g_numpyro.var(0, ddof=1) / REPEATS + g_pyro.var(0, ddof=1) / REPEATS)
    assert (np.abs(diff) < 4.5 * se).all(), np.max(np.abs(diff) / se)  # 100 components: 4.5 sigma each
    assert (np.abs(g_numpyro.mean(0)) > 4 * np.sqrt(g_numpyro.var(0) / REPEATS)).mean() > 0.5  # power: not ~0


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_training_with_iwae_raises_the_iwae_bound(setup, backend):
    """SVI with elbo='iwae' from the widened guide: the K=5 bound of the trained guide beats the start's."""
    spec, params, bounds = setup
    fit = inference.run(spec, method="svi", backend=backend, guide="spec", elbo="iwae", num_particles=K,
                        num_steps=300, learning_rate=0.02, seed=0, num_samples=10)
    weights = inference.run(spec, method="is", backend="numpyro", params=fit.params, num_samples=2000,
                            seed=4).log_weights
    trained, trained_se = iwae_bounds(weights, [K])[K]
    assert trained > bounds[K][0] + 4 * np.hypot(trained_se, bounds[K][1])
    assert trained < float(spec.reference.extra["log_evidence"]) + 4 * trained_se
