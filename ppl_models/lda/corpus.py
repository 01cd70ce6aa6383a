"""A corpus made ready for topic models: a fixed vocabulary filter, a train/test split, and
each test document halved for document completion.

The preparation, in order (defaults in capitals below):

1. Vocabulary filter: keep the words that occur in at least ``MIN_DF`` (5) documents, so
   that each has co-occurrences to learn from, and in at most ``MAX_DF`` (50%) of them,
   which removes function words the corpus' own stop list missed.
2. Documents left with fewer than 2 words are dropped (listed in ``dropped_docs``).
3. Split: a permutation seeded with ``SPLIT_SEED`` (0) puts ``TEST_FRACTION`` (20%) of the
   documents in the test set.
4. Document completion (Wallach et al. 2009): each test document's words are shuffled
   (same seed) and cut in two: ``test_observed`` (the first half, rounded down), from which a
   method infers the document's topic proportions, and ``test_heldout``, which is scored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ppl_models.data.text import Corpus

MIN_DF = 5
MAX_DF = 0.5
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@dataclass(frozen=True)
class TopicCorpus:
    """Count matrices (documents x words, int32) of a prepared corpus.

    ``train_docs``, ``test_docs`` and ``dropped_docs`` are indices into the original corpus.
    """

    name: str
    vocab: tuple[str, ...]
    train: np.ndarray
    test_observed: np.ndarray
    test_heldout: np.ndarray
    train_docs: np.ndarray
    test_docs: np.ndarray
    dropped_docs: np.ndarray
    dropped_words: int

    @property
    def test(self) -> np.ndarray:
        return self.test_observed + self.test_heldout

    @property
    def documents(self) -> np.ndarray:
        """Every kept document, train then test: the reference corpus of coherence scores."""
        return np.concatenate([self.train, self.test])

    def describe(self) -> str:
        # one line of at most 100 columns
        return (f"{self.name}: {len(self.vocab)} words ({self.dropped_words} cut), "
                f"{len(self.train_docs)} train / {len(self.test_docs)} test docs "
                f"({len(self.dropped_docs)} dropped: < 2 words), {int(self.train.sum())} train tokens")


def halve(counts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each row's tokens, shuffled and cut into a first half (rounded down) and the rest."""
    first = np.zeros_like(counts)
    for d, row in enumerate(counts):
        tokens = rng.permutation(np.repeat(np.arange(row.size), row))
        first[d] = np.bincount(tokens[:tokens.size // 2], minlength=row.size)
    return first, counts - first


def prepare_corpus(corpus: Corpus, *, min_df: int = MIN_DF, max_df: float = MAX_DF, max_words: int | None = None,
                   test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> TopicCorpus:
    """Filter the vocabulary (words in at least ``min_df`` documents and at most a share ``max_df`` of
    them; of those, the ``max_words`` in the most documents, if given), drop near-empty documents,
    split, and halve the test documents."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1), not {test_fraction}")
    if max_words is not None and max_words < 1:
        raise ValueError(f"max_words must be a positive number of words, not {max_words}")
    df = (corpus.counts > 0).sum(axis=0)
    keep = (df >= min_df) & (df <= max_df * corpus.num_docs)
    if not keep.any():
        raise ValueError(f"no word of corpus {corpus.name!r} occurs in between {min_df} documents and "
                         f"{max_df:.0%} of them")
    if max_words is not None and keep.sum() > max_words:
        # the words in the most documents; a stable sort gives ties to the earlier word
        kept_words = np.flatnonzero(keep)
        keep = np.zeros_like(keep)
        keep[kept_words[np.argsort(-df[kept_words], kind="stable")[:max_words]]] = True
    counts = corpus.counts[:, keep]
    kept = np.flatnonzero(counts.sum(axis=1) >= 2)
    rng = np.random.default_rng(seed)
    order = rng.permutation(kept)
    num_test = max(1, int(round(test_fraction * len(order))))
    test_docs, train_docs = np.sort(order[:num_test]), np.sort(order[num_test:])
    observed, heldout = halve(counts[test_docs], rng)
    return TopicCorpus(
        name=corpus.name, vocab=tuple(np.asarray(corpus.vocab)[keep]),
        train=counts[train_docs], test_observed=observed, test_heldout=heldout,
        train_docs=train_docs, test_docs=test_docs,
        dropped_docs=np.setdiff1d(np.arange(corpus.num_docs), kept), dropped_words=int((~keep).sum()),
    )
