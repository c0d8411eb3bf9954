"""Inputs no one thinks of: any Unicode through normalisation, segmentation and the model, one row per post."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.segmenter import Segmenter
from pipeline.text import Normalizer

ODD = st.sampled_from(["\ud800", "\udfff", "\u200b", "\u202e", "\u2066", "\ufeff", "\x00", "\x1b[31m", "\r\n",
                       "\ue001", "\U0010ffff", "😀", "👨‍👩‍👧", "[哈哈]", "#话题#", "//@某:", "@", "http://t.cn/",
                       "國保", "参 选", "\u3000", "ｊｃ"])
POST = st.lists(st.one_of(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                                         exclude_categories=())), ODD),
                max_size=12).map("".join)
normalizer = Normalizer()
segmenter = Segmenter().fit()


@settings(max_examples=300, deadline=None)
@given(POST)
def test_normalise_and_segment_never_fail(text):
    normalized = normalizer.normalize(text)
    assert isinstance(normalized, str)
    assert not any(0xD800 <= ord(c) <= 0xDFFF for c in normalized)
    doc = segmenter.transform([normalized])[0]
    assert all(token.strip() for token in doc.tokens)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(POST, max_size=8))
def test_model_gives_one_row_per_post(tiny_model, posts):
    frame = tiny_model.predict(posts, explain=2)
    assert len(frame) == len(posts)
    probs = frame[[f"{label}_prob" for label in tiny_model.labels]].to_numpy()
    assert np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1).all()


def test_a_one_megabyte_post_is_scored(tiny_model):
    post = "又被国保约谈了，" * (1_000_000 // 8)
    frame = tiny_model.predict([post, ""])
    assert len(frame) == 2


def test_emoji_only_and_whitespace_only_posts(tiny_model):
    frame = tiny_model.predict(["😀😀😀", " \t ", "[哈哈][哈哈]"])
    assert len(frame) == 3
