"""Text corpora (``<data dir>/text``) as document-term count matrices.

Files are in LDA-C format: line d is ``N id:count id:count ...``, the N distinct
words of document d as 0-based ids into the vocabulary file (one word per line).

- ``ap``: the Associated Press corpus of the original LDA paper (Blei, Ng & Jordan 2003):
  2246 documents, 10473 words.
- ``reuters``: 395 Reuters news documents, 4258 words, with their titles.

Everything is checked as it is read: a malformed entry, a word id outside the
vocabulary, a negative count or an empty document is an error naming the
document; a count matrix whose width disagrees with its vocabulary is refused.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ppl_models.data.checksums import read_sums, verify
from ppl_models.data.paths import resolve
from ppl_models.errors import DataError, UnknownChoiceError

SUMS = read_sums(Path(__file__).with_name("text.sha256"))
# corpus -> (documents, vocabulary, titles or None), paths inside <data dir>/text
FILES = {"ap": ("ap/ap.dat", "ap/vocab.txt", None),
         "reuters": ("reuters/reuters.ldac", "reuters/reuters.tokens", "reuters/reuters.titles")}


def document_name(d: int, titles=None) -> str:
    return f"document {d}" + (f" ({titles[d]!r})" if titles is not None else "")


def check_counts(counts: np.ndarray, vocab, name: str, titles=None) -> None:
    """A document-term matrix must be 2-D, as wide as its vocabulary, and hold non-negative
    integer counts with at least one word per document; errors name the document."""
    if counts.ndim != 2:
        raise DataError(f"the counts of corpus {name!r} must be a 2-D documents x words matrix, not {counts.shape}")
    if counts.shape[1] != len(vocab):
        raise DataError(f"corpus {name!r} has {counts.shape[1]} word columns but a vocabulary of {len(vocab)} words; "
                        "the matrix and its vocabulary file disagree")
    if titles is not None and len(titles) != counts.shape[0]:
        raise DataError(f"corpus {name!r} has {counts.shape[0]} documents but {len(titles)} titles")
    checks = (((counts < 0).any(axis=1), "holds a negative count"),
              ((counts != np.round(counts)).any(axis=1), "holds a count that is not an integer"),
              (counts.sum(axis=1) == 0, "is empty (no words)"))
    for bad, what in checks:
        if bad.any():
            d = int(np.flatnonzero(bad)[0])
            raise DataError(f"{document_name(d, titles)} of corpus {name!r} {what} ({int(bad.sum())} such documents)")


@dataclass(frozen=True)
class Corpus:
    """Word counts ``counts[d, v]`` of each document d and vocabulary word v."""

    name: str
    counts: np.ndarray
    vocab: tuple[str, ...]
    titles: tuple[str, ...] | None = None

    def __post_init__(self):
        object.__setattr__(self, "counts", np.asarray(self.counts))
        check_counts(self.counts, self.vocab, self.name, self.titles)

    @property
    def num_docs(self) -> int:
        return self.counts.shape[0]


def parse_ldac(lines: list[str], vocab_size: int, name: str, titles=None) -> np.ndarray:
    """The count matrix (documents x vocab_size, int32) of LDA-C lines."""
    counts = np.zeros((len(lines), vocab_size), dtype=np.int32)
    for d, line in enumerate(lines):
        where = f"{document_name(d, titles)} (line {d + 1}) of corpus {name!r}"
        head, *terms = line.split()
        try:
            pairs = [tuple(int(part) for part in term.split(":")) for term in terms]
            num_terms = int(head)
        except ValueError:
            raise DataError(f"{where} is malformed: expected 'N id:count ...', got {line[:60]!r}") from None
        if any(len(p) != 2 for p in pairs):
            raise DataError(f"{where} is malformed: an entry is not 'id:count'")
        if num_terms != len(pairs):
            raise DataError(f"{where} says it has {num_terms} distinct words but lists {len(pairs)}")
        if not pairs:
            raise DataError(f"{where} is empty (no words)")
        ids, values = np.array(pairs).T
        if ((ids < 0) | (ids >= vocab_size)).any():
            raise DataError(f"{where} holds word id {ids[(ids < 0) | (ids >= vocab_size)][0]}, outside the vocabulary "
                            f"of {vocab_size} words")
        if (values < 0).any():
            raise DataError(f"{where} holds a negative count ({values.min()})")
        if len(set(ids.tolist())) != len(ids):
            raise DataError(f"{where} lists a word id twice")
        counts[d, ids] = values
    return counts


def _read_lines(relpath: str) -> list[str]:
    path = verify(resolve(f"text/{relpath}"), SUMS[relpath])
    return [line for line in path.read_text().splitlines() if line.strip()]


@functools.cache
def load_corpus(name: str) -> Corpus:
    """Corpus ``name`` (``"ap"`` or ``"reuters"``) from ``<data dir>/text``, checksums verified."""
    if name not in FILES:
        raise UnknownChoiceError("corpus", name, FILES)
    documents, vocab_file, titles_file = FILES[name]
    vocab = tuple(w.strip() for w in _read_lines(vocab_file))
    titles = tuple(_read_lines(titles_file)) if titles_file else None
    lines = _read_lines(documents)
    if titles is not None and len(titles) != len(lines):
        raise DataError(f"corpus {name!r} has {len(lines)} documents but {len(titles)} titles")
    return Corpus(name, parse_ldac(lines, len(vocab), name, titles), vocab, titles)
