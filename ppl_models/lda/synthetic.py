"""Corpora drawn from LDA's generative process, with the true topics and assignments kept:
the ground truth for topic recovery."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticCorpus:
    counts: np.ndarray        # documents x words
    topics: np.ndarray        # true phi, K x V
    proportions: np.ndarray   # true theta, documents x K
    topic_counts: np.ndarray  # words of each topic in the corpus, K x V (from the true assignments z)

    def oracle_topics(self, beta: float = 0.0) -> np.ndarray:
        """Topics estimated by someone who saw every word's topic: the floor any method can reach."""
        lam = self.topic_counts + beta
        return lam / lam.sum(axis=1, keepdims=True)


def simulate_corpus(num_docs: int, doc_length: int, topics: np.ndarray, alpha: float, seed: int) -> SyntheticCorpus:
    """theta_d ~ Dirichlet(alpha); each of the doc_length words: z ~ Categorical(theta_d), w ~ Categorical(phi_z)."""
    rng = np.random.default_rng(seed)
    k, v = topics.shape
    theta = rng.dirichlet(np.full(k, alpha), size=num_docs)
    counts = np.zeros((num_docs, v), dtype=np.int64)
    topic_counts = np.zeros((k, v), dtype=np.int64)
    for d in range(num_docs):
        z = rng.choice(k, size=doc_length, p=theta[d])
        for topic in range(k):
            words = rng.choice(v, size=int((z == topic).sum()), p=topics[topic])
            np.add.at(counts[d], words, 1)
            np.add.at(topic_counts[topic], words, 1)
    return SyntheticCorpus(counts, topics, theta, topic_counts)
