"""Latent Dirichlet allocation (Blei, Ng & Jordan 2003), each word's topic marginalized.

Generative story, for K topics over a vocabulary of V words:

    phi_k ~ Dirichlet(beta)                       for each topic k (a distribution over words)
    theta_d ~ Dirichlet(alpha)                    for each document d (its topic proportions)
    z_dn ~ Categorical(theta_d), w_dn ~ Categorical(phi_{z_dn})   for each word n of document d

Summing out each z_dn, a word of document d is drawn from the mixture theta_d @ phi, so the
document's word counts are Multinomial(N_d, theta_d @ phi). Inference sees only the
continuous theta and phi: NUTS can run on it, and SVI needs no enumeration.

Guides, in the form of variational Bayes for LDA, a concentration being the prior's plus
expected counts: ``lda_meanfield_guide``, q(phi_k) = Dirichlet(beta + c_k) and
q(theta_d) = Dirichlet(alpha + m_d) with c and m free; ``lda_amortized_guide``, the same q(phi)
and q(theta_d) = Dirichlet(alpha + encoder(counts_d)), the encoder injected by name. Keeping
the variational concentrations above the prior's matters: a reparameterized Dirichlet draw
with a small concentration underflows to exact zeros, where the prior's density is infinite.

Priors default to scikit-learn's: alpha = beta = 1 / K. Models run in float64 for the same
reason the concentrations are bounded.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ppl_models.data.posteriordb import load_data
from ppl_models.data.text import check_counts, load_corpus
from ppl_models.errors import UnknownChoiceError
from ppl_models.generic import dist, for_backends, pyro
from ppl_models.lda.corpus import prepare_corpus
from ppl_models.nets import MLP
from ppl_models.registry import register_model
from ppl_models.spec import BACKENDS, HeldOut, Minibatch, ModelSpec

NUM_TOPICS = 20
ENCODER_HIDDEN = (100, 100)


def lda(counts, num_docs, num_topics, alpha, beta):
    """phi_k ~ Dirichlet(beta); theta_d ~ Dirichlet(alpha); counts_d ~ Multinomial(N_d, theta_d @ phi)."""
    with pyro.plate("topics", num_topics):
        phi = pyro.sample("phi", dist.Dirichlet(beta))
    with pyro.plate("documents", num_docs, subsample_size=counts.shape[0]):
        theta = pyro.sample("theta", dist.Dirichlet(alpha))
        pyro.sample("counts", dist.Multinomial(counts.sum(-1), probs=theta @ phi), obs=counts)


def topics_guide(counts, num_topics, beta):
    """q(phi_k) = Dirichlet(beta + c_k): c_k > 0, the expected word counts of topic k, start at one
    plus the counts of one document each (the first K seen), which breaks the topics' symmetry."""
    if counts.shape[0] < num_topics:
        raise ValueError(f"the LDA guide starts its {num_topics} topics from as many documents, but got a batch "
                         f"of {counts.shape[0]}; use a batch_size of at least {num_topics}")
    topic_word_counts = pyro.param("topic_word_counts", 1.0 + counts[:num_topics], constraint=dist.constraints.positive)
    with pyro.plate("topics", num_topics):
        pyro.sample("phi", dist.Dirichlet(beta + topic_word_counts))


def lda_meanfield_guide(counts, num_docs, num_topics, alpha, beta):
    """q(phi_k) = Dirichlet(beta + c_k), q(theta_d) = Dirichlet(alpha + m_d): c and m free and positive."""
    topics_guide(counts, num_topics, beta)
    doc_topic_counts = pyro.param("doc_topic_counts", np.ones((num_docs, num_topics)),
                                  constraint=dist.constraints.positive)
    with pyro.plate("documents", num_docs, subsample_size=counts.shape[0]) as docs:
        pyro.sample("theta", dist.Dirichlet(alpha + doc_topic_counts[docs]))


def lda_amortized_guide(counts, num_docs, num_topics, alpha, beta, encoder):
    """q(phi_k) = Dirichlet(beta + c_k), q(theta_d) = Dirichlet(alpha + encoder(counts_d))."""
    topics_guide(counts, num_topics, beta)
    encode = pyro.module("encoder", encoder)
    with pyro.plate("documents", num_docs, subsample_size=counts.shape[0]):
        pyro.sample("theta", dist.Dirichlet(alpha + encode(counts)))


GUIDES = {"meanfield": lda_meanfield_guide, "amortized": lda_amortized_guide}


def lda_spec(counts: np.ndarray, num_topics: int, *, name: str, guide: str = "meanfield", alpha=None, beta=None,
             description: str = "") -> ModelSpec:
    """LDA with ``num_topics`` topics on a documents x words count matrix (float64)."""
    if guide not in GUIDES:
        raise UnknownChoiceError("LDA guide", guide, GUIDES)
    num_docs, vocab_size = counts.shape
    alpha = np.full(num_topics, 1.0 / num_topics) if alpha is None else np.asarray(alpha, float)
    beta = np.full(vocab_size, 1.0 / num_topics) if beta is None else np.asarray(beta, float)
    networks = {}
    if guide == "amortized":
        networks["encoder"] = MLP((vocab_size, *ENCODER_HIDDEN, num_topics), activation="softplus", head="positive",
                                  inputs="log1p")
    return ModelSpec(
        name=name,
        data={"counts": counts.astype(float), "num_docs": num_docs, "num_topics": num_topics,
              "alpha": alpha, "beta": beta},
        model=for_backends(lda),
        guide=for_backends(GUIDES[guide]),
        networks=networks,
        minibatch=Minibatch(keys=("counts",)),
        data_dims={"counts": ("num_docs", vocab_size), "alpha": ("num_topics",), "beta": (vocab_size,)},
        data_support={"counts": "count"},
        description=description or __doc__.split("\n\n")[1],
    )


def corpus_lda_spec(corpus: str, num_topics: int = NUM_TOPICS, guide: str = "meanfield") -> ModelSpec:
    """LDA on the training documents of a prepared corpus (``ppl_models.lda.corpus``)."""
    prepared = prepare_corpus(load_corpus(corpus))
    suffix = "" if guide == "meanfield" else f"_{guide}"
    spec = lda_spec(prepared.train, num_topics, name=f"{corpus}-lda{suffix}", guide=guide)
    return dataclasses.replace(spec, held_out=HeldOut("topics", prepared))


def prideprejudice_counts(data: dict) -> np.ndarray:
    """posteriordb's token lists (1-based word ``w[n]`` of document ``doc[n]``) as a count matrix."""
    counts = np.zeros((int(data["M"]), int(data["V"])), dtype=np.int64)
    np.add.at(counts, (np.asarray(data["doc"]) - 1, np.asarray(data["w"]) - 1), 1)
    check_counts(counts, range(int(data["V"])), "prideprejudice_chapter")
    return counts


@register_model("prideprejudice_chapter-ldaK5", backends=BACKENDS, reference="",
                description="posteriordb LDA, 5 topics, Pride and Prejudice chapters")
def _prideprejudice() -> ModelSpec:
    data = load_data("prideprejudice_chapter")
    return lda_spec(prideprejudice_counts(data), 5, name="prideprejudice_chapter-ldaK5", alpha=data["alpha"],
                    beta=data["beta"],
                    description="posteriordb ldaK5 on the 61 chapters of Pride and Prejudice (1495 words): " +
                                __doc__.split("\n\n")[1])


for _corpus in ("ap", "reuters"):
    for _guide in GUIDES:
        register_model(f"{_corpus}-lda" + ("" if _guide == "meanfield" else f"_{_guide}"), backends=BACKENDS,
                       reference="", description=f"LDA on the {_corpus.upper()} corpus, {_guide} guide")(
            lambda c=_corpus, g=_guide: corpus_lda_spec(c, guide=g))
