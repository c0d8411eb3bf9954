"""Features (pipeline/features.py): the fast character n-gram counter and the word n-grams."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction.text import CountVectorizer

from pipeline.features import CharNgramCounter, TokenNgrams, decode_char_ngram
from pipeline.segment import Doc

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


def test_word_ngrams_keep_one_character_words():
    grams = TokenNgrams((1, 2))(Doc("又被约", ("又", "被", "约")))
    assert grams == ["又", "被", "约", "又 被", "被 约"]


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


def test_plain_l2_when_the_floor_is_off(tiny_params):
    import dataclasses

    from pipeline.config import load_params
    from pipeline.features import make_featurizer

    params = load_params(tiny_params)
    params = dataclasses.replace(params, features=dataclasses.replace(params.features, norm_floor_quantile=None))
    featurizer = make_featurizer(params)
    assert featurizer.named_steps["norm"] == "passthrough"
    assert featurizer.named_steps["ngrams"].transformer_list[0][1].norm == "l2"
