"""The VAE on MNIST: injected networks, minibatch training, held-out likelihoods, bad input.

Training runs are short (a few hundred steps on 1000 images); the held-out checks compare
importance-sampling estimates by their own standard errors.
"""
import dataclasses

import numpy as np
import pytest

import inference
from inference.importance import iwae_bounds
from ppl_models.errors import DataError
from ppl_models.latent_gaussian.vae import vae, vae_guide, vae_spec
from ppl_models.nets import MLP, ConvDecoder

BACKENDS = ["numpyro", "pyro"]
# a constant step size (lr_decay=1.0), the schedule these bounds were set with; the default now decays 100-fold
TRAIN = dict(method="svi", guide="spec", batch_size=20, learning_rate=3e-3, lr_decay=1.0)


@pytest.fixture(scope="module")
def train_spec():
    return vae_spec("binarized_mnist", num_images=1000, latent_dim=10)


@pytest.fixture(scope="module")
def test_spec():
    return vae_spec("binarized_mnist", "test", num_images=100, latent_dim=10)


@pytest.fixture(scope="module")
def trained(train_spec):
    return {b: inference.run(train_spec, backend=b, num_steps=500, seed=0, **TRAIN) for b in BACKENDS}


def held_out(test_spec, backend, params, num_samples=200, seed=1):
    return inference.run(test_spec, method="is", backend=backend, params=params, num_samples=num_samples, seed=seed)


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_lowers_the_held_out_negative_log_likelihood(train_spec, test_spec, trained, backend):
    untrained = inference.run(train_spec, backend=backend, num_steps=1, seed=0, **TRAIN).params
    before, after = held_out(test_spec, backend, untrained), held_out(test_spec, backend, trained[backend].params)
    gain = after.log_evidence - before.log_evidence
    assert gain > 4 * np.hypot(before.log_evidence_se, after.log_evidence_se)
    assert gain / 100 > 50  # nats per image: from about 540 (pixels at random) to under 250


@pytest.mark.parametrize("backend", BACKENDS)
def test_iwae_50_is_above_the_elbo_on_held_out_data(test_spec, trained, backend):
    r = held_out(test_spec, backend, trained[backend].params, num_samples=1000)
    bounds = iwae_bounds(r.log_weights, ks=[1, 50])
    (elbo, elbo_se), (iwae, iwae_se) = bounds[1], bounds[50]
    assert iwae - elbo > 3 * np.hypot(elbo_se, iwae_se)
    assert iwae <= r.log_evidence + 3 * r.log_evidence_se  # and still a lower bound


def test_weights_fitted_on_one_backend_load_into_the_other(test_spec, trained):
    """Networks name and shape their parameters alike on both backends."""
    assert set(trained["pyro"].params) == set(trained["numpyro"].params)
    params = trained["pyro"].params
    on_pyro, on_numpyro = held_out(test_spec, "pyro", params), held_out(test_spec, "numpyro", params)
    se = np.hypot(on_pyro.log_evidence_se, on_numpyro.log_evidence_se)
    assert abs(on_pyro.log_evidence - on_numpyro.log_evidence) < 4 * se


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("objective", [dict(elbo="iwae", num_particles=5), dict(elbo="iwae", num_particles=5,
                                                                              dreg=True), dict(method="rws")])
def test_importance_weighted_training_improves_the_bound(train_spec, backend, objective):
    r = inference.run(train_spec, backend=backend, num_steps=300, seed=0, **{**TRAIN, **objective})
    first, last = r.losses[:30], r.losses[-30:]
    assert last.mean() < first.mean() - 4 * np.hypot(first.std(), last.std()) / np.sqrt(30)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_convolutional_decoder_changes_no_line_of_the_model(backend):
    """The same model and guide functions train with an MLP or a convolutional decoder."""
    mlp, conv = (vae_spec("binarized_mnist", num_images=200, latent_dim=10, decoder=d) for d in ("mlp", "conv"))
    for spec in (mlp, conv):
        assert spec.model[backend].__wrapped__ is vae and spec.guide[backend].__wrapped__ is vae_guide
    r = inference.run(conv, backend=backend, num_steps=100, seed=0, **TRAIN)
    assert any(k.startswith("decoder$$$conv1.") for k in r.params)
    assert r.losses[-10:].max() < r.losses[:10].min()  # every late step beats every early one


def test_dynamic_binarization_draws_fresh_pixels_per_batch():
    """Each minibatch of mnist-vae is 0/1, drawn afresh as Bernoulli(grey / 255)."""
    import torch

    from inference.backends.pyro_svi import Minibatches

    spec = vae_spec("mnist", num_images=40, latent_dim=2)
    grey = spec.minibatch.binarize["x"].astype(float) / 255
    batches = Minibatches(spec, {"x": torch.as_tensor(spec.data["x"])}, batch_size=40, device=torch.device("cpu"))
    torch.manual_seed(0)
    draws = np.stack([batches(step)["x"].numpy() for step in range(400)])  # one batch per epoch: all 40 images
    assert set(np.unique(draws)) == {0.0, 1.0}
    # every epoch permutes the images, so compare the pixel sums per epoch
    mean = draws.sum(1).mean(0)
    expected = grey.sum(0)
    sd = np.sqrt((grey * (1 - grey)).sum(0) / 400)
    assert (np.abs(mean - expected) <= 4 * sd + 1e-9).all()
    assert not np.array_equal(draws[0], draws[1])


def test_non_binary_images_are_refused_for_the_bernoulli_likelihood():
    spec = vae_spec("binarized_mnist", num_images=10, latent_dim=2)
    x = spec.data["x"].copy()
    x[3, 100] = 0.5
    with pytest.raises(DataError, match=r"data\['x'\].*0.5 at index \(3, 100\).*needs values 0 or 1"):
        dataclasses.replace(spec, data={**spec.data, "x": x})


def test_a_decoder_of_the_wrong_size_is_refused():
    with pytest.raises(ValueError, match="the decoder maps 10 -> 100 values, but this VAE needs 10 -> 784"):
        vae_spec("binarized_mnist", num_images=10, latent_dim=10, decoder=MLP((10, 20, 100)))
    with pytest.raises(ValueError, match="the decoder maps 3 -> 784 values, but this VAE needs 10 -> 784"):
        vae_spec("binarized_mnist", num_images=10, latent_dim=10, decoder=ConvDecoder(3))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_network_output_that_does_not_fit_the_data_is_named(backend):
    """A factory that does not state its sizes is caught when the model runs."""

    class Unsized:
        def build(self, backend, seed, dtype):
            return MLP((10, 20, 100)).build(backend, seed, dtype)

    spec = vae_spec("binarized_mnist", num_images=40, latent_dim=10, decoder=Unsized())
    with pytest.raises(ValueError, match=r"the decoder returned shape .*100\), but the data need 784 values"):
        inference.run(spec, backend=backend, num_steps=1, **TRAIN)


@pytest.mark.parametrize("options,match", [
    (dict(num_particles=0, elbo="iwae"), "num_particles=0 .* expected an integer >= 1"),
    (dict(batch_size=5000), "batch_size=5000 exceeds the 10 data points"),
    (dict(dreg=True), "dreg goes with elbo='iwae' only"),
])
def test_bad_training_options_are_named(options, match):
    spec = vae_spec("binarized_mnist", num_images=10, latent_dim=2)
    with pytest.raises(ValueError, match=match):
        inference.run(spec, backend="numpyro", **{**TRAIN, "num_steps": 1, **options})


def test_a_network_no_function_takes_is_refused():
    spec = vae_spec("binarized_mnist", num_images=40, latent_dim=2)
    renamed = dataclasses.replace(spec, networks={"decodr": spec.networks["decoder"], **spec.networks})
    with pytest.raises(DataError, match=r"network\(s\) \['decodr'\] of 'binarized_mnist-vae' are taken by neither"):
        inference.run(renamed, backend="pyro", **{**TRAIN, "num_steps": 1})


def test_batch_size_needs_a_minibatched_model():
    with pytest.raises(ValueError, match="batch_size of method 'svi' needs a model that declares minibatch keys"):
        inference.run("mnist-ppca", method="svi", backend="numpyro", guide="spec", batch_size=5, num_steps=1)
