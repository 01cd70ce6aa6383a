"""ProdLDA (Srivastava & Sutton 2017): a topic model with a logistic-normal prior and a
product-of-experts decoder, trained with an amortized guide.

Generative story, for K topics over a vocabulary of V words:

    h_d ~ Normal(mu, diag(sigma^2))              the Laplace approximation, in the softmax
                                                 basis, of Dirichlet(alpha) (MacKay 1998)
    counts_d ~ Multinomial(N_d, softmax(decoder(h_d)))

where ``decoder(h) = softmax(h) @ topics + bias``: each topic multiplies in its word weights,
so a word must be likely under every active topic (a product of experts), not under one
(LDA's mixture). The guide is q(h_d) = Normal(encoder(counts_d)). Decoder and encoder are
injected by name; by default the decoder is ``nets.ProductOfExperts`` and the encoder a
two-layer softplus MLP of 100 units, fed log(1 + counts), both with the paper's batch normalization
(of the word logits, with a learned scale and shift per word; of the encoder's outputs) and dropout
(0.2, of the topic proportions and of the encoder's last hidden layer). They change how the networks
train, not the generative process: in eval mode (every use but training) batch normalization is a
fixed affine map by its running statistics and dropout is off. Without them, topics collapse into
copies of one (benchmarks/RESULTS.md).

The prior's alpha defaults to 1 for every topic (Pyro's ProdLDA tutorial).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ppl_models.data.text import load_corpus
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.lda.corpus import prepare_corpus
from ppl_models.lda.lda import ENCODER_HIDDEN, NUM_TOPICS
from ppl_models.nets import MLP, ProductOfExperts
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec


def laplace_dirichlet(alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of the Normal approximating Dirichlet(alpha) in the softmax basis."""
    alpha = np.asarray(alpha, float)
    k = alpha.size
    loc = np.log(alpha) - np.log(alpha).mean()
    var = (1.0 / alpha) * (1.0 - 2.0 / k) + (1.0 / alpha).sum() / k**2
    return loc, np.sqrt(var)


def prodlda(counts, num_docs, prior_loc, prior_scale, decoder):
    """h_d ~ Normal(prior_loc, prior_scale); counts_d ~ Multinomial(N_d, softmax(decoder(h_d)))."""
    decode = pyro.module("decoder", decoder)
    with pyro.plate("documents", num_docs, subsample_size=counts.shape[0]):
        h = pyro.sample("h", dist.Normal(prior_loc, prior_scale).to_event(1))
        pyro.sample("counts", dist.Multinomial(counts.sum(-1), logits=decode(h)), obs=counts)


def prodlda_guide(counts, num_docs, prior_loc, prior_scale, encoder):
    """q(h_d) = Normal(encoder(counts_d))."""
    encode = pyro.module("encoder", encoder)
    with pyro.plate("documents", num_docs, subsample_size=counts.shape[0]):
        loc, scale = encode(counts)
        pyro.sample("h", dist.Normal(loc, scale).to_event(1))


BATCH_NORM = True  # the paper's network; False for the plain decoder and encoder
DROPOUT = 0.2  # Pyro's ProdLDA tutorial
DECODER_AFFINE = True  # a learned scale and shift per word after the decoder's batch normalization


def prodlda_spec(counts: np.ndarray, num_topics: int, *, name: str, alpha: float = 1.0, batch_norm: bool = BATCH_NORM,
                 dropout: float = DROPOUT, decoder_affine: bool | str = DECODER_AFFINE) -> ModelSpec:
    """ProdLDA with ``num_topics`` topics on a documents x words count matrix; ``batch_norm`` and
    ``dropout`` in both networks (``batch_norm=False, dropout=0``: the networks without them);
    ``decoder_affine``: what the decoder learns after its batch normalization (``ProductOfExperts``)."""
    num_docs, vocab_size = counts.shape
    loc, scale = laplace_dirichlet(np.full(num_topics, alpha))
    return ModelSpec(
        name=name,
        data={"counts": counts.astype(np.float32), "num_docs": num_docs, "prior_loc": loc, "prior_scale": scale},
        model=for_backends(prodlda),
        guide=for_backends(prodlda_guide),
        networks={"decoder": ProductOfExperts(num_topics, vocab_size, batch_norm=batch_norm, dropout=dropout,
                                              affine=decoder_affine if batch_norm else False),
                  "encoder": MLP((vocab_size, *ENCODER_HIDDEN, 2 * num_topics), activation="softplus",
                                 head="normal", inputs="log1p", batch_norm=batch_norm, dropout=dropout)},
        minibatch=Minibatch(keys=("counts",)),
        data_dims={"counts": ("num_docs", vocab_size), "prior_loc": (num_topics,), "prior_scale": (num_topics,)},
        data_support={"counts": "count"},
        dtype="float32",
        description=__doc__.split("\n\n")[1],
    )


def corpus_prodlda_spec(corpus: str, num_topics: int = NUM_TOPICS) -> ModelSpec:
    """ProdLDA on the training documents of a prepared corpus (``ppl_models.lda.corpus``)."""
    prepared = prepare_corpus(load_corpus(corpus))
    spec = prodlda_spec(prepared.train, num_topics, name=f"{corpus}-prodlda")
    return dataclasses.replace(spec, held_out=HeldOut("topics", prepared))


for _corpus in ("ap", "reuters"):
    register_model(f"{_corpus}-prodlda", backends=BACKENDS, reference="",
                   description=f"ProdLDA on the {_corpus.upper()} corpus")(lambda c=_corpus: corpus_prodlda_spec(c))
