"""Network factories build the same function on both backends: PyTorch's weights, loaded into
the Equinox build, give the same outputs for every activation and head."""
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ppl_models.nets import MLP
from ppl_models.nets.equinox_nets import with_parameters
from ppl_models.nets.factories import ACTIVATIONS, HEADS


@pytest.mark.parametrize("activation, head", [*((a, "logits") for a in ACTIVATIONS),
                                              *(("tanh", h) for h in HEADS if h != "logits")])
def test_torch_and_equinox_builds_agree_given_the_same_weights(activation, head):
    factory = MLP((3, 8, 4), activation, head=head)
    net = factory.build("pyro", seed=0, dtype="float32")
    eqx_net = with_parameters(factory.build("numpyro", seed=1, dtype="float32"),
                              {k: jnp.asarray(v.detach().numpy()) for k, v in net.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32) * 3  # both signs, past the kinks
    with torch.no_grad():
        want = net(torch.as_tensor(x))
    got = eqx_net(jnp.asarray(x))
    for a, b in zip(want if isinstance(want, tuple) else (want,), got if isinstance(got, tuple) else (got,),
                    strict=True):
        np.testing.assert_allclose(np.asarray(b), a.numpy(), rtol=1e-5, atol=1e-6)


def test_leaky_relu_keeps_a_fifth_of_negative_inputs():
    net = MLP((1, 1, 1), "leaky_relu").build("pyro", seed=0, dtype="float32")
    with torch.no_grad():
        net.layers[0].weight.fill_(1.0), net.layers[0].bias.zero_(), net.layers[1].weight.fill_(1.0)
        net.layers[1].bias.zero_()
        out = net(torch.tensor([[-5.0], [5.0]]))
    np.testing.assert_allclose(out.numpy().ravel(), [-1.0, 5.0])
