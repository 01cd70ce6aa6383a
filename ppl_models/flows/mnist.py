"""A flow generative model of MNIST's grey levels: RealNVP on uniformly dequantized images.

Generative story: noise z_n ~ Normal(0, I_784), x_n = (sigmoid(f(z_n)) - alpha) / (1 - 2 alpha) with f
a RealNVP flow (``flows.realnvp.flow_model``, alpha = 0.05 as in Dinh et al. 2017), and the grey levels
g_n = floor(256 x_n). The density of x is exact, and since each grey level owns a cube of side 1/256,
log P(g_n) >= E_u[log p((g_n + u) / 256)] - 784 log 256, u ~ Uniform(0, 1)^784 (Theis et al. 2016):
the held-out NLL of dequantized test images, plus 784 log 256, bounds the grey levels' NLL from above
(x may also fall a little outside [0, 1], by alpha / (1 - 2 alpha): that mass is lost to every grey
level, which only loosens the bound).
Reported in bits per pixel, (NLL + 784 log 256) / (784 log 2).

Data (``<data dir>/mnist``): the 60000 images of the classic train and validation splits, dequantized
afresh for every minibatch, x = (g + u) / 256; whatever sees the data whole (the model contract) gets
one fixed dequantization (numpy seed 0). Held out: the 10000 test images, in the fixed random order of
``ppl_models.data.mnist.test_order``, dequantized once (seed 1).
"""
from __future__ import annotations

import numpy as np

from ppl_models.data.mnist import load_mnist, test_order
from ppl_models.flows.realnvp import flow_spec
from ppl_models.nets.density import RealNVP
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS

ALPHA = 0.05
PIXELS = 28 * 28
DEQUANTIZATION_SEED, TEST_SEED = 0, 1


def dequantized(grey: np.ndarray, seed: int) -> np.ndarray:
    """(grey + u) / 256, u ~ Uniform(0, 1) per pixel (numpy ``seed``), as float32 in (0, 1)."""
    return ((grey + np.random.default_rng(seed).random(grey.shape)) / 256.0).astype(np.float32)


def bits_per_pixel(nll: float, pixels: int = PIXELS) -> float:
    """A dequantized image's NLL (nats, density on (0, 1)^D) as bits per grey level: (NLL + D log 256) / (D log 2)."""
    return (nll + pixels * np.log(256.0)) / (pixels * np.log(2.0))


def mnist_flow_spec(flow=None, num_test: int | None = None):
    """``mnist-flow``, with ``flow`` (default ``RealNVP(784, (1024,), 6, zero_init=True)``); ``num_test``: the
    first held-out images."""
    grey = np.concatenate([load_mnist(part)[0] for part in ("train", "valid")]).reshape(-1, PIXELS)
    test = load_mnist("test")[0].reshape(-1, PIXELS)
    test = test[test_order(len(test))][:num_test]
    flow = flow if flow is not None else RealNVP(PIXELS, (1024,), 6, zero_init=True)
    return flow_spec("mnist-flow", dequantized(grey, DEQUANTIZATION_SEED), flow, held_out=dequantized(test, TEST_SEED),
                     description=__doc__.split("\n\n")[1], alpha=ALPHA, grey=grey.astype(np.uint8))


register_model("mnist-flow", backends=BACKENDS, reference="",
               description="RealNVP flow, dequantized MNIST grey levels (exact likelihood)")(mnist_flow_spec)
