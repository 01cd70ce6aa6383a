"""Scores of a fitted topic model on a prepared corpus: held-out perplexity by document completion,
NPMI coherence, topic diversity and top words (``ppl_models.lda.metrics``).

LDA (any method) predicts a test document's held-out words from its topics E[phi] and the
document's topic proportions folded in from its observed half with the topics fixed. ProdLDA
predicts them from its own guide and decoder: softmax(decoder(loc)), loc = encoder(observed half).
"""
from __future__ import annotations

import numpy as np

from inference.networks import fitted_network
from ppl_models.lda import metrics


def lda_topics(spec, result) -> np.ndarray:
    """E[phi] (K x V): the mean of the draws of one chain (chains may label topics differently),
    else the fitted guide's mean."""
    if "phi" in result.samples:
        return result.samples["phi"][0].mean(axis=0)
    if "topic_word_counts" not in result.params:
        raise ValueError(f"the {result.method} result of {result.model!r} holds neither draws of phi nor the "
                         "guide parameter topic_word_counts")
    lam = np.asarray(spec.data["beta"]) + result.params["topic_word_counts"]
    return lam / lam.sum(axis=1, keepdims=True)


def prodlda_topics(result) -> np.ndarray:
    """ProdLDA's topic-word weights (K x V): the decoder's ``topics`` layer."""
    return result.params["decoder$$$topics.weight"].T


def predict_heldout(spec, result, observed: np.ndarray) -> np.ndarray:
    """Each test document's word probabilities, given its observed half."""
    if "decoder" in spec.networks:  # ProdLDA
        loc, _ = fitted_network(spec, result, "encoder")(observed)
        logits = fitted_network(spec, result, "decoder")(loc).astype(np.float64)
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)
    phi = lda_topics(spec, result)
    return metrics.fold_in(phi, np.asarray(spec.data["alpha"]), observed) @ phi


def topic_scores(topics: np.ndarray, word_probs: np.ndarray, corpus) -> dict:
    """Perplexity of the held-out halves, mean NPMI of the top 10 words on the whole corpus,
    diversity of the top 25, and the top 10 words of each topic."""
    npmi = metrics.npmi_coherence(topics, corpus.documents, 10)
    return {"perplexity": metrics.perplexity(word_probs, corpus.test_heldout), "npmi": float(npmi.mean()),
            "npmi_per_topic": npmi, "diversity": metrics.topic_diversity(topics, 25),
            "top_words": metrics.top_words(topics, corpus.vocab, 10)}


def score(spec, result, corpus) -> dict:
    """``topic_scores`` of an LDA or ProdLDA result of ``spec``, fitted on ``corpus.train``."""
    topics = prodlda_topics(result) if "decoder" in spec.networks else lda_topics(spec, result)
    return topic_scores(topics, predict_heldout(spec, result, corpus.test_observed), corpus)
