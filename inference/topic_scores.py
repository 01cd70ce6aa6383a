"""Scores of a fitted topic model on a prepared corpus: held-out perplexity by document completion,
NPMI coherence, topic diversity and top words (``ppl_models.lda.metrics``).

LDA (any method) predicts a test document's held-out words from its topics E[phi] and the
document's topic proportions folded in from its observed half with the topics fixed. ProdLDA
predicts them from its own guide and decoder: softmax(decoder(loc)), loc = encoder(observed half).
Fitted networks run in eval mode (batch normalization by their running statistics, no dropout).

ProdLDA's topic k, whose top words NPMI and diversity score, is the word distribution of a document
of topic k alone, softmax(decoder(h)) with softmax(h) = e_k: LDA's phi_k. The paper ranks words by
the raw weights ``decoder$$$topics.weight`` instead (``prodlda_topics(..., raw=True)``), which under
the decoder's batch normalization mean little: normalization divides each word's logit by its
running sd, so each word's row of weights has a scale of its own, and a word's weight in one topic
says nothing of its probability beside another word's.
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


ONE_TOPIC = 50.0  # h = ONE_TOPIC * e_k: softmax(h) is e_k to within K * exp(-50)


def prodlda_topics(spec, result, raw: bool = False) -> np.ndarray:
    """ProdLDA's topics (K x V): each one's word distribution p(w | theta = e_k), from the decoder in eval
    mode; ``raw=True``: the decoder's ``topics`` weights, as the paper ranks words."""
    if raw:
        return result.params["decoder$$$topics.weight"].T
    num_topics = spec.networks["decoder"].in_features
    logits = fitted_network(spec, result, "decoder")(ONE_TOPIC * np.eye(num_topics)).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)


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


def score(spec, result, corpus, raw: bool = False) -> dict:
    """``topic_scores`` of an LDA or ProdLDA result of ``spec``, fitted on ``corpus.train`` (``raw``:
    ProdLDA's topics as its raw decoder weights, ``prodlda_topics``)."""
    topics = prodlda_topics(spec, result, raw) if "decoder" in spec.networks else lda_topics(spec, result)
    return topic_scores(topics, predict_heldout(spec, result, corpus.test_observed), corpus)
