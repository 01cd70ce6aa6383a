"""Networks with state: batch normalization and dropout in train and eval mode on both backends,
their running statistics carried through SVI, saved in checkpoints and results, and used (in eval
mode) wherever a fitted network is scored."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import inference
from inference.networks import fitted_network
from inference.topic_scores import predict_heldout, prodlda_topics
from ppl_models.lda.prodlda import prodlda_spec
from ppl_models.nets import MLP, ProductOfExperts, params_of
from ppl_models.nets.equinox_nets import named_buffers, named_parameters, with_parameters

EPS = 1e-5  # both libraries' batch-normalization epsilon
X = np.random.default_rng(0).normal(size=(16, 5)).astype(np.float32) * 2 + 1


def _last_layer(net, x):
    """The raw output of an MLP's last layer (before batch normalization), in numpy."""
    with torch.no_grad():
        h = torch.as_tensor(x)
        for layer in net.layers[:-1]:
            h = torch.tanh(layer(h))
        return net.layers[-1](h).numpy()


def _torch_mlp(**kwargs):
    return MLP((5, 8, 4), "tanh", **kwargs).build("pyro", seed=0, dtype="float32")


def _eqx_from(net):
    """The Equinox build of the same factory with ``net``'s weights and running statistics."""
    factory = MLP((5, 8, 4), "tanh", batch_norm=True)
    return with_parameters(factory.build("numpyro", seed=1, dtype="float32"),
                           {k: v.numpy() for k, v in net.state_dict().items()})


def test_batch_norm_normalizes_by_the_batch_in_train_mode_and_by_running_statistics_in_eval_mode():
    net = _torch_mlp(batch_norm=True)
    raw = _last_layer(net, X)
    assert not net.training  # built in eval mode
    with torch.no_grad():
        np.testing.assert_allclose(net(torch.as_tensor(X)).numpy(), raw / np.sqrt(1 + EPS), rtol=1e-5, atol=1e-6)
        net.train()
        out = net(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(out, (raw - raw.mean(0)) / np.sqrt(raw.var(0) + EPS), rtol=1e-4, atol=1e-5)
    # PyTorch: running statistics move 0.1 of the way from (0, 1) to the batch's (unbiased variance)
    np.testing.assert_allclose(net.norm.running_mean.numpy(), 0.1 * raw.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(net.norm.running_var.numpy(), 0.9 + 0.1 * raw.var(0, ddof=1), rtol=1e-5)
    # Equinox, same weights: the same train-mode output; its debiased statistics after one batch are the batch's
    eqx_net = _eqx_from(_torch_mlp(batch_norm=True))
    eqx_out, buffers = jax.jit(lambda b, x: eqx_net.apply(b, (x,), train=True))(eqx_net.buffers, jnp.asarray(X))
    np.testing.assert_allclose(np.asarray(eqx_out), out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(buffers["norm.running_mean"], raw.mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(buffers["norm.running_var"], raw.var(0), rtol=1e-4)
    assert int(buffers["norm.num_batches_tracked"]) == 1 and int(net.norm.num_batches_tracked) == 1


def test_running_statistics_load_into_either_backend_and_give_the_same_eval_output():
    net = _torch_mlp(batch_norm=True)
    with torch.no_grad():
        net.norm.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        net.norm.running_var.copy_(torch.tensor([4.0, 0.25, 1.0, 9.0]))
        net.norm.num_batches_tracked.fill_(37)
        want = net(torch.as_tensor(X)).numpy()
    eqx_net = _eqx_from(net)
    assert sorted(named_parameters(eqx_net)) == sorted(k for k, _ in net.named_parameters())
    assert sorted(named_buffers(eqx_net)) == sorted(k for k, _ in net.named_buffers())
    np.testing.assert_allclose(np.asarray(jax.jit(lambda x: eqx_net(x))(jnp.asarray(X))), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(want, (_last_layer(net, X) - [0.5, -1.0, 2.0, 0.0]) / np.sqrt(
        np.array([4.0, 0.25, 1.0, 9.0]) + EPS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["pyro", "numpyro"])
def test_dropout_draws_masks_in_train_mode_only(backend):
    factory = ProductOfExperts(4, 50, dropout=0.5)
    net = factory.build(backend, seed=0, dtype="float32")
    h = np.random.default_rng(1).normal(size=(8, 4)).astype(np.float32)
    if backend == "pyro":
        with torch.no_grad():
            eval1, eval2 = net(torch.as_tensor(h)).numpy(), net(torch.as_tensor(h)).numpy()
            net.train()
            train1, train2 = net(torch.as_tensor(h)).numpy(), net(torch.as_tensor(h)).numpy()
    else:
        eval1, eval2 = np.asarray(net(jnp.asarray(h))), np.asarray(net(jnp.asarray(h)))
        train1, train2 = (np.asarray(net.apply({}, (jnp.asarray(h),), True, jax.random.PRNGKey(k))[0]) for k in (0, 1))
    np.testing.assert_array_equal(eval1, eval2)
    assert not np.allclose(train1, train2) and not np.allclose(train1, eval1)


def test_bad_dropout_is_refused():
    with pytest.raises(ValueError, match="ProductOfExperts dropout must be a probability in"):
        ProductOfExperts(3, 10, dropout=1.0)
    with pytest.raises(ValueError, match="MLP dropout acts on the last hidden layer"):
        MLP((5, 2), dropout=0.2)
    with pytest.raises(ValueError, match="MLP: affine=True is batch normalization's scale and shift, and batch_norm"):
        MLP((5, 4, 2), affine=True)
    with pytest.raises(ValueError, match=r"ProductOfExperts: affine='scale' is not one of \(False, True, 'shift'\)"):
        ProductOfExperts(3, 10, batch_norm=True, affine="scale")


def test_a_shift_without_a_scale_after_batch_norm_on_both_backends():
    """``affine="shift"`` (the ProdLDA paper's TensorFlow layer): standardized logits plus a learned
    shift per word, no scale; the same parameters, names and outputs on both backends."""
    factory = ProductOfExperts(4, 6, batch_norm=True, affine="shift")
    net = factory.build("pyro", seed=0, dtype="float32")
    assert sorted(k for k, _ in net.named_parameters()) == ["norm.bias", "topics.bias", "topics.weight"]
    h = np.random.default_rng(3).normal(size=(16, 4)).astype(np.float32)
    shift = np.linspace(-1, 1, 6).astype(np.float32)
    with torch.no_grad():
        net.norm.bias.copy_(torch.as_tensor(shift))
        logits = net.topics(torch.softmax(torch.as_tensor(h), -1)).numpy()
        net.train()
        out = net(torch.as_tensor(h)).numpy()
        net.eval()
        eval_out = net(torch.as_tensor(h)).numpy()
    np.testing.assert_allclose(out, (logits - logits.mean(0)) / np.sqrt(logits.var(0) + EPS) + shift, rtol=1e-4,
                               atol=1e-5)
    eqx_net = with_parameters(factory.build("numpyro", seed=1, dtype="float32"),
                              {k: v.numpy() for k, v in net.state_dict().items()})
    assert sorted(named_parameters(eqx_net)) == ["norm.bias", "topics.bias", "topics.weight"]
    eqx_out, _ = eqx_net.apply(eqx_net.buffers, (jnp.asarray(h),), train=True)
    np.testing.assert_allclose(np.asarray(eqx_out), out, rtol=1e-4, atol=1e-5)
    # eval mode: the running statistics after one batch (the backends average them differently, see
    # equinox_nets), then the same shift
    np.testing.assert_allclose(np.asarray(eqx_net(jnp.asarray(h))), eval_out, rtol=1e-5, atol=1e-5)


COUNTS = np.random.default_rng(2).poisson(2.0, size=(64, 30))
FIT = dict(method="svi", guide="spec", num_steps=8, batch_size=16, learning_rate=0.01, num_samples=0,
           progress_bar=False)


@pytest.fixture(scope="module")
def toy():
    return prodlda_spec(COUNTS, 3, name="toy-prodlda")


@pytest.fixture(scope="module", params=["pyro", "numpyro"])
def fits(request, toy, tmp_path_factory):
    """A fit killed right after its first checkpoint and resumed, and the same fit uninterrupted."""
    import inference.checkpoint as checkpoint

    backend, where = request.param, tmp_path_factory.mktemp(request.param)
    save = checkpoint.Checkpoint.save

    def save_then_crash(self, step, state, record):
        save(self, step, state, record)
        if step == 4:
            raise KeyboardInterrupt

    def fit(path):
        return inference.run(toy, backend=backend, seed=0, checkpoint=path, checkpoint_every=4, **FIT)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checkpoint.Checkpoint, "save", save_then_crash)
        with pytest.raises(KeyboardInterrupt):
            fit(where / "run.ckpt")
    return fit(where / "run.ckpt"), fit(where / "whole.ckpt")


def test_svi_trains_running_statistics_and_a_checkpoint_resumes_them(fits, tmp_path):
    resumed, whole = fits
    stats = [k for k in whole.params if "$$$norm." in k and not k.endswith((".weight", ".bias"))]
    assert sorted(stats) == sorted(f"{n}$$$norm.{b}" for n in ("decoder", "encoder")
                                   for b in ("running_mean", "running_var", "num_batches_tracked"))
    assert int(whole.params["decoder$$$norm.num_batches_tracked"]) >= 8  # one per training step (NumPyro: + init)
    assert np.abs(whole.params["encoder$$$norm.running_mean"]).max() > 0.01  # moved from its start at 0
    assert sorted(resumed.params) == sorted(whole.params)
    for key, value in whole.params.items():
        np.testing.assert_allclose(resumed.params[key], value, rtol=1e-5, atol=1e-6, err_msg=key)
    # saved in the result file and read back
    loaded = inference.load_result(whole.save(tmp_path / "fit.npz"))
    for key in stats:
        np.testing.assert_array_equal(loaded.params[key], whole.params[key])


def test_scoring_runs_the_networks_in_eval_mode_on_the_fitted_running_statistics(fits, toy):
    result = fits[1]
    observed = COUNTS[:8].astype(np.float32)
    first, again = predict_heldout(toy, result, observed), predict_heldout(toy, result, observed)
    np.testing.assert_array_equal(first, again)  # no dropout masks, no batch statistics
    # the decoder in eval mode: batch normalization by the fitted running statistics, then its scale and shift
    decoder = params_of(result.params, "decoder")
    h = np.random.default_rng(3).normal(size=(5, 3)).astype(np.float32)
    theta = np.exp(h) / np.exp(h).sum(-1, keepdims=True)
    logits = theta @ decoder["topics.weight"].T + decoder["topics.bias"]
    want = (logits - decoder["norm.running_mean"]) / np.sqrt(decoder["norm.running_var"] + EPS)
    want = want * decoder["norm.weight"] + decoder["norm.bias"]
    np.testing.assert_allclose(fitted_network(toy, result, "decoder")(h), want, rtol=1e-4, atol=1e-4)
    # topics: each one's word distribution, the same eval-mode decoder on a document of that topic alone
    one = (np.eye(3) @ decoder["topics.weight"].T + decoder["topics.bias"] - decoder["norm.running_mean"])
    one = one / np.sqrt(decoder["norm.running_var"] + EPS) * decoder["norm.weight"] + decoder["norm.bias"]
    want_topics = np.exp(one - one.max(1, keepdims=True))
    np.testing.assert_allclose(prodlda_topics(toy, result), want_topics / want_topics.sum(1, keepdims=True),
                               rtol=1e-3, atol=1e-7)
    # other running statistics, other predictions: they are used
    shifted = dict(result.params, **{"decoder$$$norm.running_var": 4 * result.params["decoder$$$norm.running_var"]})
    assert not np.allclose(predict_heldout(toy, dataclasses.replace(result, params=shifted), observed), first)
    left_out = {k: v for k, v in result.params.items() if not k.startswith("decoder$$$norm.")}
    with pytest.raises(ValueError, match="network 'decoder' .* holds no running statistics"):
        fitted_network(toy, dataclasses.replace(result, params=left_out), "decoder")


def test_a_network_with_state_that_numpyro_cannot_carry_is_refused(toy):
    with pytest.raises(ValueError, match="network '(decoder|encoder)' of 'toy-prodlda' keeps batch-normalization "
                                         "statistics.*num_particles=2"):
        inference.run(toy, backend="numpyro", **dict(FIT, num_particles=2))
    with pytest.raises(ValueError, match="keeps batch-normalization statistics.*method='rws'"):
        inference.run(toy, backend="numpyro", **dict(FIT, method="rws"))
