"""Topic-model metrics: top words, NPMI coherence, topic diversity, document-completion perplexity,
and the matching of fitted topics to true ones.

A topic model is scored through its topics (``topics[k, v]``, any score that ranks topic k's
words, such as probabilities or logits) and its predictions for held-out words.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def top_word_ids(topics: np.ndarray, n: int) -> np.ndarray:
    """The ids of each topic's ``n`` highest-scoring words, best first: (K, n)."""
    return np.argsort(-np.asarray(topics), axis=1, kind="stable")[:, :n]


def top_words(topics: np.ndarray, vocab, n: int = 10) -> list[list[str]]:
    return [[vocab[i] for i in row] for row in top_word_ids(topics, n)]


def npmi_coherence(topics: np.ndarray, counts: np.ndarray, n: int = 10) -> np.ndarray:
    """Each topic's mean normalized pointwise mutual information over pairs of its top ``n`` words
    (Bouma 2009; Lau et al. 2014), from document co-occurrence in ``counts``:
    NPMI(i, j) = log(p(i, j) / (p(i) p(j))) / -log p(i, j), and -1 for pairs never seen together."""
    ids = top_word_ids(topics, n)
    present = (np.asarray(counts) > 0).astype(np.float64)
    num_docs = present.shape[0]
    scores = np.empty(len(ids))
    for k, words in enumerate(ids):
        occurs = present[:, words]
        p = occurs.mean(axis=0)
        joint = occurs.T @ occurs / num_docs
        i, j = np.triu_indices(n, k=1)
        pij = joint[i, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            npmi = np.log(pij / (p[i] * p[j])) / -np.log(pij)
        npmi = np.where(pij == 0, -1.0, np.where(pij == 1, 1.0, npmi))
        scores[k] = npmi.mean()
    return scores


def topic_diversity(topics: np.ndarray, n: int = 25) -> float:
    """The fraction of distinct words among all topics' top ``n`` (Dieng et al. 2020)."""
    ids = top_word_ids(topics, n)
    return np.unique(ids).size / ids.size


def fold_in(topic_word: np.ndarray, alpha: np.ndarray, counts: np.ndarray, num_iterations: int = 200) -> np.ndarray:
    """Topic proportions of documents with the topics held fixed: the fixed point of
    theta_d proportional to alpha + sum_v counts_dv * theta_d * phi_v / (theta_d @ phi_v),
    the variational-Bayes update of LDA's E-step with phi in place of exp(E log phi)."""
    phi = np.asarray(topic_word, float)
    counts = np.asarray(counts, float)
    theta = np.full((counts.shape[0], phi.shape[0]), 1.0 / phi.shape[0])
    for _ in range(num_iterations):
        ratio = counts / np.maximum(theta @ phi, 1e-300)
        gamma = np.asarray(alpha) + theta * (ratio @ phi.T)
        theta = gamma / gamma.sum(axis=1, keepdims=True)
    return theta


def perplexity(word_probs: np.ndarray, heldout: np.ndarray) -> float:
    """exp(-(log-likelihood of the held-out words) / (their number)), each document's words drawn
    from its row of ``word_probs``."""
    heldout = np.asarray(heldout, float)
    loglik = np.sum(heldout * np.log(np.maximum(word_probs, 1e-300)))
    return float(np.exp(-loglik / heldout.sum()))


def match_topics(estimated: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The permutation of estimated topics that best matches the true ones (Hungarian algorithm on
    total-variation distance), and the matched distances: ``estimated[perm[k]]`` goes with ``true[k]``."""
    tv = 0.5 * np.abs(np.asarray(true)[:, None, :] - np.asarray(estimated)[None, :, :]).sum(-1)
    rows, cols = linear_sum_assignment(tv)
    return cols, tv[rows, cols]
