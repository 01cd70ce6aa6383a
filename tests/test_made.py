"""MADE (ppl_models.autoregressive.made): an exact, normalized likelihood, the autoregressive property
by gradients, maximum likelihood by SVI with guide=None, and the bad input it refuses."""
import itertools

import numpy as np
import pytest

import inference
from inference.held_out import held_out_scores
from ppl_models import ModelSpec
from ppl_models.autoregressive.made import made_model, made_spec
from ppl_models.errors import OptionError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.nets import MADE, network_seed, param_name
from ppl_models.spec import HeldOut, Minibatch

ALL_BINARY = np.array(list(itertools.product([0.0, 1.0], repeat=5)))  # every point of {0, 1}^5


def toy_spec(x, network, held_out=None):
    return ModelSpec("toy-made", data={"x": np.asarray(x, dtype=np.float64), "num_data": len(x)},
                     model=for_backends(made_model), networks={"made": network}, minibatch=Minibatch(keys=("x",)),
                     dtype="float64", held_out=held_out)


def random_params(network, seed=3):
    """Weights far from the initialization (so that every logit depends on what it may depend on)."""
    rng = np.random.default_rng(seed)
    built = network.build("pyro", network_seed(0, "made"), "float64")
    return {param_name("made", k): rng.normal(0.0, 1.0, v.shape) for k, v in built.state_dict().items()}


@pytest.mark.parametrize("backend, network", [
    ("numpyro", MADE(5, (7, 9), num_masks=3, order="random", mask_seed=4)),
    ("pyro", MADE(5, (7, 9), num_masks=3, order="random", mask_seed=4)),
    ("pyro", MADE(5, (12,)))], ids=["numpyro, three masks", "pyro, three masks", "pyro, one mask"])
def test_exact_likelihood_is_a_normalized_density(backend, network):
    """Summed over all 2^5 binary images the probabilities are 1, whatever the weights: the masks make the
    product of the conditionals a density (a network without them would not sum to 1). Each value is the
    product of the Bernoulli conditionals (the mixture over masks) computed here by hand."""
    from inference.backends.numpyro_likelihood import log_likelihood as numpyro_ll
    from inference.backends.pyro_likelihood import log_likelihood as pyro_ll

    params = random_params(network)
    log_p = {"numpyro": numpyro_ll, "pyro": pyro_ll}[backend](toy_spec(ALL_BINARY, network), params)
    assert log_p.shape == (32,)
    np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-10)
    # by hand: logits from the same weights and masks, Bernoulli log-probabilities, log-mean-exp over masks
    weights = [(params[param_name("made", f"layers.{i}.weight")], params[param_name("made", f"layers.{i}.bias")])
               for i in range(len(network.hidden) + 1)]
    per_mask = []
    for masks in network.masks():
        h = ALL_BINARY
        for i, ((w, b), m) in enumerate(zip(weights, masks, strict=True)):
            h = h @ (w * m).T + b
            h = np.maximum(h, 0) if i < len(weights) - 1 else h
        per_mask.append((ALL_BINARY * h - np.logaddexp(0, h)).sum(-1))
    by_hand = np.logaddexp.reduce(np.stack(per_mask), axis=0) - np.log(network.num_masks)
    np.testing.assert_allclose(log_p, by_hand, rtol=1e-10)


def _jacobians(network):
    """d logits / d x at one random binary image, (masks, D, D), from each backend's autodiff."""
    import jax
    import jax.numpy as jnp
    import torch

    from ppl_models.nets.equinox_nets import with_parameters

    params = {k.split("$$$")[1]: v for k, v in random_params(network).items()}
    x = np.random.default_rng(0).integers(0, 2, network.dim).astype(np.float64)
    net = network.build("pyro", 0, "float64")
    net.load_state_dict({k: torch.as_tensor(v) for k, v in params.items()})
    torch_jac = torch.autograd.functional.jacobian(net, torch.as_tensor(x)).numpy()
    with jax.enable_x64(True):
        eqx_net = with_parameters(network.build("numpyro", 0, "float64"),
                                  {k: jnp.asarray(v) for k, v in params.items()})
        jax_jac = np.asarray(jax.jacfwd(eqx_net)(jnp.asarray(x)))
    shape = (network.num_masks, network.dim, network.dim)
    return torch_jac.reshape(shape), jax_jac.reshape(shape)


@pytest.mark.parametrize("network", [MADE(6, (20,)), MADE(6, (16, 16), num_masks=2, order="random", mask_seed=1)],
                         ids=["natural order", "two masks, random orders"])
def test_autoregressive_property_by_gradients(network):
    """d logit_d / d x_j = 0 wherever x_j does not come before x_d in the mask's ordering (j >= d in the
    natural order), on both backends, and not zero everywhere: the gradients do reach the logits."""
    for jac in _jacobians(network):
        for k, order in enumerate(network.orders()):
            allowed = order[None, :] < order[:, None]  # [d, j]: x_j before x_d
            assert np.all(jac[k][~allowed] == 0.0), f"mask {k}: a logit depends on a later or its own input"
            assert np.count_nonzero(jac[k][allowed]) > allowed.sum() / 2


def test_an_unmasked_network_fails_the_gradient_check():
    """The check above can fail: the same weights with every mask set to one break the property."""
    import torch

    network = MADE(6, (20,))
    net = network.build("pyro", 0, "float64")
    net._masks["cpu"] = [[torch.ones_like(m) for m in masks] for masks in net._masks["cpu"]]
    jac = torch.autograd.functional.jacobian(net, torch.rand(6, dtype=torch.float64)).numpy()
    assert np.any(jac[np.triu_indices(6)] != 0.0)


def test_maximum_likelihood_reaches_the_empirical_entropy():
    """SVI with guide=None maximizes log p(x). No density has a lower NLL on the training points than
    their empirical distribution's entropy, and a MADE that can express any conditional should reach it:
    the fitted NLL lies in [H_emp, H_emp + 0.02]. The held-out score on the same points is exact (se 0)."""
    rng = np.random.default_rng(0)
    x1 = rng.random(2000) < 0.3
    x2 = np.where(x1, rng.random(2000) < 0.9, rng.random(2000) < 0.2)
    x3 = x1 ^ x2  # a function of both: an MLP's hidden units are needed
    x = np.stack([x1, x2, x3], axis=1).astype(np.float64)
    _, counts = np.unique(x, axis=0, return_counts=True)
    entropy = -(counts / len(x) * np.log(counts / len(x))).sum()
    network = MADE(3, (32,))
    spec = toy_spec(x, network, held_out=HeldOut("exact_likelihood", lambda: toy_spec(x, network)))
    fit = inference.run(spec, method="svi", backend="numpyro", guide=None, num_steps=600, learning_rate=0.05)
    scores = held_out_scores(spec, fit)
    assert scores["heldout_nll_se"] == 0.0
    assert entropy - 1e-9 <= scores["heldout_nll"] <= entropy + 0.02, (scores, entropy)
    np.testing.assert_allclose(fit.losses[-1] / len(x), scores["heldout_nll"], rtol=1e-3)


@pytest.mark.parametrize("backend", ["numpyro", "pyro"])
def test_no_guide_for_a_model_with_latents_is_refused(backend):
    def model(y=None):
        mu = pyro.sample("mu", dist.Normal(0.0, 1.0))
        pyro.sample("y", dist.Normal(mu, 1.0), obs=y)

    spec = ModelSpec("test-latent", {"y": np.array(0.3)}, model=for_backends(model))
    with pytest.raises(OptionError, match=r"guide=None .* latent site\(s\) \['mu'\]"):
        inference.run(spec, method="svi", backend=backend, guide=None, num_steps=5)


def test_masks_for_another_dimension_are_refused():
    with pytest.raises(ValueError, match="masks are for 100 inputs and 100 outputs, but the data have 784 values"):
        made_spec(num_images=10, network=MADE(100))


def test_masks_follow_the_factory_not_the_seed():
    """Masks are part of the model: the same from the factory, whatever the build's seed and backend."""
    a, b = MADE(8, (10,), num_masks=2, order="random").masks(), MADE(8, (10,), num_masks=2, order="random").masks()
    assert all(np.array_equal(p, q) for ma, mb in zip(a, b, strict=True) for p, q in zip(ma, mb, strict=True))
    orders = MADE(8, (10,), num_masks=2, order="random").orders()
    assert not np.array_equal(orders[0], orders[1]) and all(sorted(o) == list(range(1, 9)) for o in orders)
