"""The flow generative model (ppl_models.flows.realnvp): its log-determinant against a numerical Jacobian
on both backends, a density that integrates to one, the ring's exact entropy, maximum likelihood with
guide=None, and a blow-up stopped with TrainingError; for ``mnist-flow``, the density of data in (0, 1)
through the logit map, a flow that starts as the identity, and minibatches dequantized afresh."""
import importlib

import numpy as np
import pytest

import inference
from ppl_models.errors import DataError, TrainingError
from ppl_models.flows.mnist import bits_per_pixel, dequantized
from ppl_models.flows.realnvp import RING, flow_spec
from ppl_models.implicit.toys import RingOfGaussians
from ppl_models.nets import RealNVP, network_seed, param_name

FLOW = RealNVP(3, (8, 8), 3)


def random_params(flow, seed=2, scale=0.7):
    """Weights far enough from the initialization that every coupling scales and shifts noticeably
    (log-scales well inside Pyro's clip [-5, 3], where the clip's value and gradient are the identity's)."""
    rng = np.random.default_rng(seed)
    built = flow.build("pyro", network_seed(0, "flow"), "float64")
    return {k: scale * rng.normal(size=v.shape) for k, v in built.state_dict().items()}


def torch_flow(flow, params):
    import torch

    net = flow.build("pyro", 0, "float64")
    net.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
    return net


def jax_flow(flow, params):
    import jax.numpy as jnp

    from ppl_models.nets.equinox_nets import with_parameters

    return with_parameters(flow.build("numpyro", 0, "float64"), {k: jnp.asarray(v) for k, v in params.items()})


def test_log_determinant_matches_the_numerical_jacobian_torch():
    """Sum of the transforms' log |det| at z = log |det df/dz| from torch.autograd.functional.jacobian,
    and the inverse undoes f."""
    import torch

    net = torch_flow(FLOW, random_params(FLOW))
    for z in torch.as_tensor(np.random.default_rng(0).normal(size=(4, 3))):
        log_det, x = 0.0, z
        for t in net.transforms():
            y = t(x)
            log_det, x = log_det + t.log_abs_det_jacobian(x, y), y
        jac = torch.autograd.functional.jacobian(net, z)
        log_det = log_det.item()
        np.testing.assert_allclose(log_det, torch.linalg.slogdet(jac)[1].item(), rtol=1e-9, atol=1e-9)
        assert abs(log_det) > 0.1  # a flow that does something
        back = x
        for t in reversed(net.transforms()):
            back = t.inv(back)
        np.testing.assert_allclose(back.detach().numpy(), z.numpy(), atol=1e-10)


def test_log_determinant_matches_the_numerical_jacobian_jax():
    """The same on NumPyro's side, against jax.jacfwd, and the same values as torch's at the same weights."""
    import jax
    import jax.numpy as jnp
    import torch

    params = random_params(FLOW)
    zs = np.random.default_rng(0).normal(size=(4, 3))
    with jax.enable_x64(True):
        net = jax_flow(FLOW, params)

        def forward(z):
            log_det, x = 0.0, z
            for t in net.transforms():
                y = t(x)
                log_det, x = log_det + t.log_abs_det_jacobian(x, y), y
            return log_det, x

        log_det, xs = jax.jit(jax.vmap(forward))(jnp.asarray(zs))
        jac = jax.jit(jax.vmap(jax.jacfwd(net)))(jnp.asarray(zs))
        np.testing.assert_allclose(np.asarray(log_det), np.linalg.slogdet(np.asarray(jac))[1], rtol=1e-9, atol=1e-9)
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(xs), torch_flow(FLOW, params)(torch.as_tensor(zs)).numpy(), rtol=1e-10)


def test_density_integrates_to_one():
    """The model's exact density over a fine grid of the plane sums to 1 (a wrong sign or a missing
    log-determinant would not): NumPyro's log-likelihood of the grid points, at random weights."""
    from inference.backends.numpyro_likelihood import log_likelihood

    flow = RealNVP(2, (8,), 2)
    step = 0.05
    axis = np.arange(-10, 10, step) + step / 2
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    params = {param_name("flow", k): v for k, v in random_params(flow, scale=0.4).items()}
    spec = flow_spec("test-grid", grid, flow)
    log_p = log_likelihood(spec, params, dtype="float64", chunk_size=len(grid))
    np.testing.assert_allclose(np.exp(log_p).sum() * step**2, 1.0, atol=2e-3)


def test_the_rings_entropy_is_its_expected_negative_log_density():
    """H(p) in closed form against the mean of -log p over 20000 true draws, within 4 standard errors."""
    nll = -RING.log_density(RING.sample(20000, 5))
    assert abs(nll.mean() - RING.entropy()) < 4 * nll.std() / np.sqrt(nll.size)
    with pytest.raises(ValueError, match="overlap"):
        RingOfGaussians(sd=0.5).entropy()


def test_maximum_likelihood_fits_a_gaussian():
    """SVI with guide=None on points of a correlated Gaussian: the fitted flow's exact held-out NLL per
    point comes within 0.05 nats of the true cross-entropy (the Gaussian's entropy), and not below it
    by more than the test points' spread allows."""
    from inference.held_out import held_out_scores

    rng = np.random.default_rng(0)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    chol = np.linalg.cholesky(cov)
    train, test = rng.normal(size=(2000, 2)) @ chol.T, rng.normal(size=(2000, 2)) @ chol.T
    entropy = 0.5 * np.log(np.linalg.det(2 * np.pi * np.e * cov))
    flow = RealNVP(2, (16,), 4)
    spec = flow_spec("test-gaussian_flow", train, flow, held_out=test)
    fit = inference.run(spec, method="svi", backend="numpyro", guide=None, num_steps=400, learning_rate=0.01,
                        batch_size=500)
    scores = held_out_scores(spec, fit)
    assert scores["heldout_nll_se"] == 0.0
    assert -4 * scores["heldout_nll_test_se"] < scores["heldout_nll"] - entropy < 0.05, (scores, entropy)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_a_flow_that_blows_up_stops_with_the_last_good_parameters(backend):
    """A step size of 1e6 sends the couplings' weights to where the shifts overflow: the log-density turns
    non-finite at step 1, training stops with TrainingError(1), and the parameters kept are the initial
    ones (finite), not the blown-up ones."""
    spec = flow_spec("test-ring_flow", RING.sample(512, 0), RealNVP(2, (16,), 2))
    with pytest.raises(TrainingError) as e:
        inference.run(spec, method="svi", backend=backend, guide=None, num_steps=50, learning_rate=1e6)
    assert e.value.step == 1 and np.isfinite(e.value.last_loss)
    initial = flow_spec("test-ring_flow", RING.sample(512, 0), RealNVP(2, (16,), 2)).networks["flow"].build(
        "pyro", network_seed(0, "flow"), "float32").state_dict()
    kept = e.value.result.params
    for name, value in initial.items():
        key = param_name("flow", name)
        if backend == "pyro":
            np.testing.assert_allclose(kept[key], value.numpy(), rtol=1e-6)
        assert np.isfinite(kept[key]).all()


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_data_in_the_unit_interval_have_the_flows_density_at_their_logits_times_the_maps_jacobian(backend):
    """With ``alpha``, log p(x) = log p_f(s) + sum_d log ds_d/dx_d, s = logit(y), y = alpha + (1 - 2 alpha) x,
    ds/dx = (1 - 2 alpha) / (y (1 - y)): the model's exact density of points in (0, 1)^3 against the same
    flow's (alpha 0) at their logits, at random weights; 1e-5 relative is float32 data's rounding."""
    log_likelihood = importlib.import_module(f"inference.backends.{backend}_likelihood").log_likelihood
    alpha = 0.05
    x = np.random.default_rng(3).uniform(size=(50, 3)).astype(np.float32).astype(float)
    y = alpha + (1 - 2 * alpha) * x
    params = {param_name("flow", k): v for k, v in random_params(FLOW).items()}
    in_unit = log_likelihood(flow_spec("test-unit", x, FLOW, alpha=alpha), params, dtype="float64")
    in_logit = log_likelihood(flow_spec("test-logit", np.log(y / (1 - y)), FLOW), params, dtype="float64")
    np.testing.assert_allclose(in_unit, in_logit + np.log((1 - 2 * alpha) / (y * (1 - y))).sum(-1), rtol=1e-5)
    # a density of 1 on (0, 1)^784 is 8 bits per grey level; each nat less is 1 / (784 log 2) bits more
    assert bits_per_pixel(0.0) == pytest.approx(8.0)
    assert bits_per_pixel(-784 * np.log(2)) == pytest.approx(7.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 0.5\)"):
        flow_spec("test-unit", x, FLOW, alpha=0.5)
    with pytest.raises(DataError, match=r"'test-unit': with alpha the data must lie in \[0, 1\].*range over \[1.0"):
        flow_spec("test-unit", x + 1.0, FLOW, alpha=alpha)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_a_zero_initialized_flow_starts_as_the_identity(backend):
    """Every coupling starts as exp(0) * z + 0, so four couplings and their four reversals are the identity."""
    z = np.random.default_rng(4).normal(size=(5, 6)).astype(np.float32)

    def out(zero_init):
        net = RealNVP(6, (8,), 4, zero_init=zero_init).build(backend, 0, "float32")
        if backend == "pyro":
            import torch

            return net(torch.as_tensor(z)).detach().numpy()
        return np.asarray(net(z))

    np.testing.assert_array_equal(out(True), z)
    assert np.abs(out(False) - z).max() > 0.1


def test_minibatches_are_dequantized_afresh_on_both_backends():
    """Each minibatch of a dequantized key is (grey + u) / 256 with fresh u: within its grey level's cell
    [g / 256, (g + 1) / 256), and different from one draw to the next."""
    import jax
    import jax.numpy as jnp
    import torch

    from inference.backends.numpyro_svi import gather_batch
    from inference.backends.pyro_svi import Minibatches

    grey = np.random.default_rng(5).integers(0, 256, (40, 3)).astype(np.uint8)
    spec = flow_spec("test-dequantized", dequantized(grey, 0), FLOW, grey=grey)
    idx = np.arange(40)
    draws = [np.asarray(gather_batch(spec.data, ("x",), {"x": jnp.asarray(grey)}, jnp.asarray(idx),
                                     jax.random.PRNGKey(k), "float32", {"x": "dequantize"})["x"]) for k in (0, 1)]
    batches = Minibatches(spec, {**spec.data, "x": torch.as_tensor(spec.data["x"])}, 40, "cpu")
    for _ in range(2):
        x = batches(0)["x"].numpy()
        order = np.argsort(batches.plate_indices.indices.numpy())
        draws.append(x[order])
    for a, b in zip(draws[::2], draws[1::2], strict=True):  # numpyro's two draws, then pyro's
        for x in (a, b):
            assert ((grey / 256 <= x) & (x < (grey.astype(int) + 1) / 256)).all()
        assert (a != b).mean() > 0.99
    with pytest.raises(DataError, match=r"\['x'\] of 'test-both' are both binarized and dequantized"):
        from ppl_models.spec import Minibatch

        Minibatch(keys=("x",), binarize={"x": grey}, dequantize={"x": grey}).check(spec.data, "test-both")
