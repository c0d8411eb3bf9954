"""Features (pipeline/features.py): the fast character and word n-gram counters, and the floored norm."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer

from pipeline.features import CharNgramCounter, WordNgramCounter
from pipeline.ngrams import decode_char_ngram
from pipeline.segmenter import Doc

TEXTS = ["又被国保约谈了", "周末约了老同学去茶馆喝茶", "我决定参选本区人大代表", "喝茶", "", "a", "约谈约谈约谈"]


def test_char_counts_equal_scikit_learns_char_analyzer():
    ours = CharNgramCounter(ngram_range=(1, 3), min_df=1).fit(TEXTS)
    theirs = CountVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False).fit(TEXTS)
    assert sorted(ours.get_feature_names_out()) == sorted(theirs.get_feature_names_out())
    order = np.argsort(theirs.get_feature_names_out())
    ours_order = np.argsort(ours.get_feature_names_out())
    np.testing.assert_array_equal(ours.transform(TEXTS).toarray()[:, ours_order],
                                  theirs.transform(TEXTS).toarray()[:, order])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
                        max_size=30), min_size=1, max_size=8))
def test_char_counts_match_scikit_learn_on_any_text(texts):
    theirs = CountVectorizer(analyzer="char", ngram_range=(1, 3), lowercase=False)
    try:
        expected = theirs.fit_transform(texts)
    except ValueError:  # all texts empty
        return
    ours = CharNgramCounter(ngram_range=(1, 3), min_df=1).fit(texts)
    names = ours.get_feature_names_out()
    index = {name: i for i, name in enumerate(theirs.get_feature_names_out())}
    got = ours.transform(texts).toarray()
    want = expected.toarray()[:, [index[n] for n in names]]
    np.testing.assert_array_equal(got, want)


def test_spaces_separate_ngrams():
    counter = CharNgramCounter(ngram_range=(2, 2), min_df=1).fit(["参选 人大"])
    assert set(counter.get_feature_names_out()) == {"参选", "人大"}


def test_min_df_and_max_features_prune_the_vocabulary():
    counter = CharNgramCounter(ngram_range=(1, 1), min_df=2).fit(["ab", "ac", "ad"])
    assert list(counter.get_feature_names_out()) == ["a"]
    top = CharNgramCounter(ngram_range=(1, 1), min_df=1, max_features=1).fit(["ab", "ac", "ad"])
    assert list(top.get_feature_names_out()) == ["a"]


def test_unseen_ngrams_are_ignored_and_rows_kept():
    counter = CharNgramCounter(ngram_range=(1, 2), min_df=1).fit(["喝茶"])
    matrix = counter.transform(["", "咖啡", "喝茶喝茶"])
    assert matrix.shape == (3, 3)
    assert matrix[0].sum() == 0 and matrix[1].sum() == 0 and matrix[2].sum() == 6


def test_decode_round_trips_three_characters():
    counter = CharNgramCounter(ngram_range=(3, 3), min_df=1).fit(["查水表"])
    assert [decode_char_ngram(int(c)) for c in counter.vocabulary_] == ["查水表"]


def _word_analyzer(doc: Doc) -> list[str]:
    """What scikit-learn would count as word 1-2-grams of a Doc: the reference the fast counter must match."""
    tokens = doc.tokens
    return list(tokens) + [" ".join(tokens[i:i + 2]) for i in range(len(tokens) - 1)]


def _same_counts(ours, theirs, docs):
    index = theirs.vocabulary_
    names = ours.get_feature_names_out()
    assert sorted(names) == sorted(index)
    want = theirs.transform(docs).toarray()[:, [index[n] for n in names]]
    np.testing.assert_array_equal(ours.transform(docs).toarray(), want)


DOCS = [Doc("", ("又", "被", "约", "了")), Doc("", ("周末", "约", "了", "老同学", "喝茶")), Doc("", ()),
        Doc("", ("被", "约", "喝茶")), Doc("", ("约", "了", "约", "了")), Doc("", ("参选", "人大代表"))]


@pytest.mark.parametrize("min_df", [1, 2])
def test_word_counts_equal_scikit_learns(min_df):
    ours = WordNgramCounter(ngram_range=(1, 2), min_df=min_df).fit(DOCS)
    theirs = CountVectorizer(analyzer=_word_analyzer, min_df=min_df).fit(DOCS)
    _same_counts(ours, theirs, DOCS + [Doc("", ("从没", "见过", "被", "约")), Doc("", ("又",))])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(["被", "约", "喝茶", "参选", "了", "人大", "a b", "x"]), max_size=12),
                min_size=2, max_size=10),
       st.integers(min_value=1, max_value=3))
def test_word_counts_match_scikit_learn_on_any_tokens(token_lists, min_df):
    docs = [Doc("", tuple(tokens)) for tokens in token_lists]
    theirs = CountVectorizer(analyzer=_word_analyzer, min_df=min_df)
    try:
        theirs.fit(docs)
    except ValueError:  # nothing occurs often enough
        with pytest.raises(ValueError):
            WordNgramCounter(ngram_range=(1, 2), min_df=min_df).fit(docs)
        return
    _same_counts(WordNgramCounter(ngram_range=(1, 2), min_df=min_df).fit(docs), theirs, docs)


def test_word_ngrams_keep_one_character_words():
    counter = WordNgramCounter(ngram_range=(1, 2), min_df=1).fit([Doc("又被约", ("又", "被", "约"))])
    assert sorted(counter.get_feature_names_out()) == sorted(["又", "被", "约", "又 被", "被 约"])


def test_an_unknown_word_breaks_word_ngrams():
    counter = WordNgramCounter(ngram_range=(2, 2), min_df=1).fit([Doc("", ("被", "约"))])
    assert counter.transform([Doc("", ("被", "新词", "约"))]).sum() == 0
    assert counter.transform([Doc("", ("被", "约", "被", "约"))]).sum() == 2


def test_word_counter_keeps_only_the_words_of_kept_ngrams_and_survives_pickling():
    import pickle

    docs = [Doc("", ("被", "约", "罕见")), Doc("", ("被", "约"))]
    counter = WordNgramCounter(ngram_range=(1, 2), min_df=2).fit(docs)
    assert sorted(counter.tokens_) == ["约", "被"]
    copy = pickle.loads(pickle.dumps(counter))
    np.testing.assert_array_equal(copy.transform(docs).toarray(), counter.transform(docs).toarray())


def test_invalid_ngram_range_is_rejected():
    with pytest.raises(ValueError):
        CharNgramCounter(ngram_range=(1, 4)).fit(["abc"])


def test_floored_norm_normalises_long_rows_and_damps_short_ones():
    import numpy as np
    import scipy.sparse as sp

    from pipeline.features import FlooredL2Norm

    train = sp.csr_matrix(np.array([[3.0, 4.0, 0.0], [6.0, 8.0, 0.0], [0.0, 0.0, 1.0]]))  # norms 5, 10, 1
    norm = FlooredL2Norm(quantile=0.5).fit(train)
    assert norm.floor_ == 5.0
    out = norm.transform(sp.csr_matrix(np.array([[6.0, 8.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))).toarray()
    assert np.allclose(out[0], [0.6, 0.8, 0.0])        # above the floor: unit length, as plain L2
    assert np.allclose(out[1], [0.0, 0.0, 0.2])        # below it: divided by the floor, so it stays short
    assert np.allclose(out[2], 0.0)                    # an empty post stays empty


def test_a_norm_power_below_one_lets_long_rows_keep_part_of_their_length():
    import numpy as np
    import scipy.sparse as sp

    from pipeline.features import FlooredL2Norm

    train = sp.csr_matrix(np.array([[3.0, 4.0, 0.0], [6.0, 8.0, 0.0], [0.0, 0.0, 1.0]]))  # norms 5, 10, 1
    norm = FlooredL2Norm(quantile=0.5, power=0.5).fit(train)
    out = norm.transform(sp.csr_matrix(np.array([[24.0, 32.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]))).toarray()
    assert np.allclose(out[0], [24.0, 32.0, 0.0] / np.sqrt(40.0 * 5.0))  # norm 40: divided by 40 ** .5 * 5 ** .5
    assert np.allclose(out[1], [0.6, 0.8, 0.0])        # at the floor: as with power 1
    assert np.allclose(out[2], [0.0, 0.0, 0.2])        # below it: divided by the floor, as with power 1


def test_plain_l2_when_the_floor_is_off(tiny_params):
    import dataclasses

    from pipeline.config import load_params
    from pipeline.features import make_featurizer, make_norm

    params = load_params(tiny_params)
    params = dataclasses.replace(params, features=dataclasses.replace(params.features, norm_floor_quantile=None,
                                                                          norm_power={}))
    assert all(make_norm(params, label) == "passthrough" for label in params.labels)
    blocks = make_featurizer(params).named_steps["ngrams"].transformer_list
    assert all(block.named_steps["tfidf"].norm == "l2" for _, block in blocks)


def test_one_character_words_count_only_inside_bigrams_when_asked():
    docs = [Doc("被带走了", ("被", "带走", "了")), Doc("又被带走", ("又", "被", "带走"))]
    names = set(WordNgramCounter(ngram_range=(1, 2), min_df=1, min_unigram_chars=2).fit(docs).get_feature_names_out())
    assert {"带走", "被 带走"} <= names and not names & {"被", "了", "又"}
    every = set(WordNgramCounter(ngram_range=(1, 2), min_df=1).fit(docs).get_feature_names_out())
    assert {"被", "了", "又"} <= every
