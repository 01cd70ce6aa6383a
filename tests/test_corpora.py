"""Text corpora: loading, the documented preparation, and bad input named by document."""
import numpy as np
import pytest

from ppl_models.data.text import Corpus, load_corpus, parse_ldac
from ppl_models.errors import DataError, UnknownChoiceError
from ppl_models.lda.corpus import MAX_DF, MIN_DF, prepare_corpus


@pytest.mark.parametrize("name, shape", [("ap", (2246, 10473)), ("reuters", (395, 4258))])
def test_corpora_load_with_their_documented_sizes(name, shape):
    corpus = load_corpus(name)
    assert corpus.counts.shape == shape
    assert (corpus.counts.sum(axis=1) > 0).all()
    assert (corpus.titles is not None) == (name == "reuters")


def test_preparation_filters_splits_and_halves_as_documented():
    corpus = load_corpus("reuters")
    prepared = prepare_corpus(corpus)
    df = (prepared.documents > 0).sum(axis=0)
    original_df = (corpus.counts > 0).sum(axis=0)
    kept = np.isin(corpus.vocab, prepared.vocab)
    assert ((original_df[kept] >= MIN_DF) & (original_df[kept] <= MAX_DF * corpus.num_docs)).all()
    assert not ((original_df[~kept] >= MIN_DF) & (original_df[~kept] <= MAX_DF * corpus.num_docs)).any()
    assert (df > 0).all()
    assert prepared.dropped_words == (~kept).sum()
    everything = np.concatenate([prepared.train_docs, prepared.test_docs, prepared.dropped_docs])
    assert np.array_equal(np.sort(everything), np.arange(corpus.num_docs))
    assert len(prepared.test_docs) == round(0.2 * (corpus.num_docs - len(prepared.dropped_docs)))
    np.testing.assert_array_equal(prepared.test, corpus.counts[prepared.test_docs][:, kept])
    halves = prepared.test_observed.sum(axis=1)
    np.testing.assert_array_equal(halves, prepared.test.sum(axis=1) // 2)
    again = prepare_corpus(corpus)
    np.testing.assert_array_equal(again.test_observed, prepared.test_observed)


def test_a_vocabulary_cut_keeps_the_words_in_the_most_documents():
    corpus = load_corpus("reuters")
    full, cut = prepare_corpus(corpus), prepare_corpus(corpus, max_words=500)
    assert len(cut.vocab) == 500 and set(cut.vocab) <= set(full.vocab)
    df = dict(zip(corpus.vocab, (corpus.counts > 0).sum(axis=0), strict=True))
    # every kept word is in at least as many documents as every word cut
    assert min(df[w] for w in cut.vocab) >= max(df[w] for w in set(full.vocab) - set(cut.vocab))
    with pytest.raises(ValueError, match="max_words must be a positive number of words, not 0"):
        prepare_corpus(corpus, max_words=0)


@pytest.mark.parametrize("lines, match", [
    (["2 0:1 7:1"], r"document 0 \(line 1\).*word id 7, outside the vocabulary of 5"),
    (["1 0:1", "1 2:-3"], r"document 1 \(line 2\).*negative count"),
    (["1 0:1", "0"], r"document 1 .*empty"),
    (["2 0:1"], "says it has 2 distinct words but lists 1"),
    (["1 a:b"], "malformed"),
    (["2 1:1 1:2"], "lists a word id twice"),
])
def test_bad_documents_are_named(lines, match):
    with pytest.raises(DataError, match=match):
        parse_ldac(lines, 5, "toy")


def test_a_matrix_and_vocabulary_of_different_sizes_are_refused():
    with pytest.raises(DataError, match="3 word columns but a vocabulary of 4 words"):
        Corpus("toy", np.ones((2, 3), int), ("a", "b", "c", "d"))


@pytest.mark.parametrize("row, match", [([1, -1, 0], "negative count"), ([0, 0, 0], "empty"),
                                        ([0.5, 1, 0], "not an integer")])
def test_bad_rows_of_a_matrix_name_the_document_and_its_title(row, match):
    with pytest.raises(DataError, match=rf"document 1 \('second'\).*{match}"):
        Corpus("toy", np.array([[1, 1, 1], row]), ("a", "b", "c"), titles=("first", "second"))


def test_unknown_corpus_is_named():
    with pytest.raises(UnknownChoiceError, match="corpus 'newsgroups'"):
        load_corpus("newsgroups")
