"""Sigmoid belief network (Neal 1992) on statically binarized MNIST, as trained by NVIL (Mnih &
Gregor 2014) and VIMCO (Mnih & Rezende 2016), with injected networks.

Generative story, for one or two layers of binary units (``layers=(200,)`` or ``(200, 200)``):
for each image n, the top layer h_L,n ~ Bernoulli(sigmoid(b)) unit by unit (b: the learnt
``prior_logits``); each layer below, h_l,n | h_l+1,n ~ Bernoulli(logits = decoder_l+1(h_l+1,n));
pixels x_n | h_1,n ~ Bernoulli(logits = decoder(h_1,n)), independently. The amortized guide runs
the other way: q(h_1,n | x_n) = Bernoulli(logits = encoder(x_n)), q(h_2,n | h_1,n) =
Bernoulli(logits = encoder2(h_1,n)). With linear networks (the default) this is the SBN of the
NVIL and VIMCO papers.

Bernoulli draws have no reparameterized gradient: train with a score-function estimator,
``elbo="graph"`` (Rao-Blackwellized; on Pyro with the guide's baselines below) or
``elbo="vimco"`` with ``num_particles`` >= 2. Each guide site declares Pyro's baselines for
``TraceGraph_ELBO``: a decaying average of the downstream cost and, with ``baseline="neural"``,
an input-dependent baseline network ``baseline`` (``baseline2`` for the second layer) trained to
regress it (NVIL's). NumPyro's ``TraceGraph_ELBO`` has no baselines: it ignores them (the
baseline networks' parameters are registered there but get no gradient).

Data (``<data dir>/mnist/binarized_mnist.npz``): Larochelle & Murray's binarization; training on
the 60000 images of its train and validation splits, testing on the 10000 test images (a fixed
shuffle of them, the file's test set being sorted by digit, for ``num_images`` subsets).
"""
from __future__ import annotations

import functools

import numpy as np

from ppl_models.data.mnist import load_binarized_mnist, test_order
from ppl_models.errors import UnknownChoiceError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.nets import MLP
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

SPLITS = ("train", "test")
BASELINES = (None, "decaying", "neural")
BASELINE_HIDDEN = 100  # NVIL's input-dependent baseline: one tanh layer of 100 units
BASELINE_BETA = 0.9  # decay of the running average of the downstream cost (Pyro's default)
HELD_OUT_IMAGES = 1000  # test images a fit is scored on (inference.held_out)


def sbn(x, num_data, top_size, decoder, decoder2=None):
    """Binary layers top-down from a factorized Bernoulli prior (``top_size`` units), pixels Bernoulli
    given the lowest; a second layer where ``decoder2`` is given."""
    decoders = [pyro.module("decoder", decoder)] + ([pyro.module("decoder2", decoder2)] if decoder2 is not None else [])
    prior_logits = pyro.param("prior_logits", np.zeros(top_size))
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        h = pyro.sample(f"h{len(decoders)}", dist.Bernoulli(logits=prior_logits).to_event(1))
        for level in range(len(decoders) - 1, 0, -1):  # h_level | h_level+1
            h = pyro.sample(f"h{level}", dist.Bernoulli(logits=decoders[level](h)).to_event(1))
        pyro.sample("x", dist.Bernoulli(logits=decoders[0](h)).to_event(1), obs=x)


def sbn_guide(x, num_data, top_size, encoder, encoder2=None, baseline=None, baseline2=None, average_baseline=True):
    """q(h_1 | x) q(h_2 | h_1): Bernoulli layers bottom-up, each site declaring Pyro's baselines: a
    running average (``average_baseline``) plus, where given, the ``baseline`` networks (NVIL's)."""
    encoders = [pyro.module("encoder", encoder)] + ([pyro.module("encoder2", encoder2)] if encoder2 is not None else [])
    nets = [pyro.module(n, net) for n, net in (("baseline", baseline), ("baseline2", baseline2)) if net is not None]
    with pyro.plate("data", num_data, subsample_size=x.shape[0]):
        h = x
        for level, encode in enumerate(encoders, start=1):
            options = {"use_decaying_avg_baseline": True, "baseline_beta": BASELINE_BETA} if average_baseline else {}
            if nets:  # NVIL's input-dependent baseline, one number per image, from this layer's input
                options.update(nn_baseline=functools.partial(_scalar, nets[level - 1]), nn_baseline_input=h)
            h = pyro.sample(f"h{level}", dist.Bernoulli(logits=encode(h)).to_event(1), infer={"baseline": options})


def _scalar(net, inputs):
    return net(inputs)[..., 0]


def load_images(split: str) -> np.ndarray:
    """0/1 images (float32) of one split: train (train and validation), or test (shuffled)."""
    if split not in SPLITS:
        raise UnknownChoiceError("SBN split", split, SPLITS)
    if split == "train":
        return np.concatenate([load_binarized_mnist(p) for p in ("train", "valid")]).astype(np.float32)
    x = load_binarized_mnist("test").astype(np.float32)
    return x[test_order(len(x))]


def sbn_spec(split: str = "train", *, layers: tuple[int, ...] = (200,), baseline: str | None = "neural",
             num_images: int | None = None, name: str | None = None) -> ModelSpec:
    """An SBN spec on one split of statically binarized MNIST, linear networks between layers.

    ``layers``: the sizes of one or two binary layers, lowest first. ``baseline``: what Pyro's
    ``TraceGraph_ELBO`` subtracts from each guide site's downstream cost, ``"decaying"`` (a running
    average) or ``"neural"`` (that plus NVIL's input-dependent network); None declares none.
    ``num_images`` keeps the first images only.
    """
    test = functools.partial(sbn_spec, "test", layers=layers, baseline=baseline, num_images=HELD_OUT_IMAGES, name=name)
    return sbn_from_images(load_images(split)[:num_images], layers, baseline, name or "binarized_mnist-sbn",
                           held_out=HeldOut("likelihood", test) if split == "train" else None)


def sbn_from_images(x: np.ndarray, layers: tuple[int, ...], baseline: str | None, name: str,
                    held_out: HeldOut | None = None) -> ModelSpec:
    """The SBN spec of 0/1 images ``x`` (n, pixels): the registered ones, or a tiny one whose ELBO
    can be enumerated (``benchmarks/gradient_estimators.py``)."""
    layers = tuple(layers)
    if len(layers) not in (1, 2) or any(not isinstance(s, int) or s < 1 for s in layers):
        raise ValueError(f"an SBN takes one or two layers of positive integer sizes, not layers={layers}")
    if baseline not in BASELINES:
        raise UnknownChoiceError("SBN baseline", baseline, BASELINES)
    pixels = x.shape[1]
    networks = {"decoder": MLP((layers[0], pixels)), "encoder": MLP((pixels, layers[0]))}
    if len(layers) > 1:
        networks.update(decoder2=MLP((layers[1], layers[0])), encoder2=MLP((layers[0], layers[1])))
    if baseline == "neural":
        inputs = (pixels, *layers[:-1])
        for level, size in enumerate(inputs, start=1):
            networks["baseline" + (str(level) if level > 1 else "")] = MLP((size, BASELINE_HIDDEN, 1))
    guide = sbn_guide if baseline else functools.partial(sbn_guide, average_baseline=False)
    return ModelSpec(
        name=name,
        data={"x": x, "num_data": x.shape[0], "top_size": layers[-1]},
        model=for_backends(sbn),
        guide=for_backends(guide),
        networks=networks,
        minibatch=Minibatch(keys=("x",)),
        data_dims={"x": ("num_data", pixels)},
        data_support={"x": "binary"},
        dtype="float32",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
        held_out=held_out,
    )


_SBN = dict(backends=BACKENDS, reference="")
register_model("binarized_mnist-sbn", **_SBN, description="sigmoid belief network, 200 binary units, on binarized "
               "MNIST")(lambda: sbn_spec())
register_model("binarized_mnist-sbn2", **_SBN, description="sigmoid belief network, 200-200 binary units, on "
               "binarized MNIST")(lambda: sbn_spec(layers=(200, 200), name="binarized_mnist-sbn2"))
