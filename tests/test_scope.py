"""Scope marking: the words after a cue are marked, nothing else changes, and the mark is undone exactly."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import UserError
from pipeline.scope import ScopeMarker, plain, read_cues, readable, shift
from pipeline.segmenter import Doc
from tests.conftest import ROOT

CUES = frozenset({"如果", "不", "应该"})


def mark(text, tokens, window=3):
    return ScopeMarker(sorted(CUES), window).mark(Doc(text, tuple(tokens)), CUES)


def test_the_words_after_a_cue_are_marked_up_to_the_window():
    doc = mark("如果我参选人大代表一定要修路", ["如果", "我", "参选", "人大代表", "一定", "要", "修路"])
    assert doc.tokens == ("如果", shift("我"), shift("参选"), shift("人大代表"), "一定", "要", "修路")
    assert doc.text == "如果" + shift("我参选人大代表") + "一定要修路"
    assert readable(doc.text) == "如果¬我参选人大代表一定要修路"


def test_a_post_without_cues_is_left_as_it_is():
    doc = Doc("我宣布参选区人大代表", ("我", "宣布", "参选", "区", "人大代表"))
    assert ScopeMarker(sorted(CUES)).mark(doc, CUES) is doc


def test_a_cue_inside_the_scope_starts_it_again_and_the_post_end_stops_it():
    doc = mark("不说不行", ["不", "说", "不", "行"], window=1)
    assert doc.tokens == ("不", shift("说"), "不", shift("行"))


def test_words_the_segmenter_dropped_stay_in_the_text_unmarked():
    doc = mark("如果 jc 来了", ["如果", "jc", "来", "了"])  # the spaces are not tokens
    assert doc.text == "如果 " + shift("jc") + " " + shift("来") + shift("了")
    assert plain(doc.text) == "如果 jc 来了"


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["如果", "不", "应该", "我", "参选", "被", "约谈", " ", "jc", "𠀀", "a"]), max_size=12),
       st.integers(1, 4))
def test_the_mark_is_undone_exactly(words, window):
    text = "".join(words)
    doc = mark(text, [w for w in words if w.strip()], window)
    assert plain(doc.text) == text
    assert [plain(t) for t in doc.tokens] == [w for w in words if w.strip()]


def test_the_projects_cues_read_and_a_malformed_list_is_one_line(tmp_path):
    assert {"如果", "应该", "没"} <= set(read_cues(ROOT / "configs" / "scope_cues.yaml"))
    path = tmp_path / "cues.yaml"
    path.write_text("negation: 不\n", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_cues(path)
    assert "non-empty list" in str(caught.value) and "\n" not in str(caught.value)


def test_the_model_marks_scope_and_names_marked_features_with_a_not_sign(tiny_model):
    assert tiny_model.vectorizer.scope is not None
    names = set(tiny_model.feature_names())
    assert any(name.startswith("¬") for name in names)


@pytest.fixture(scope="module")
def project_marking(project_params, project_segmenter):
    """The project's segmenter (user dictionary included), scope marker and cues."""
    params = project_params
    cues = read_cues(params.root_path(params.paths.scope_cues))
    return project_segmenter, ScopeMarker(cues, params.features.scope_window), frozenset(cues)


@pytest.mark.parametrize("text, hypothetical", [
    ("如果被约谈就不发了", True),
    ("若被约谈就不发了", True),
    ("若不是被约谈他早发了", False),  # "if it were not for": the summons happened
    ("如果不是被约谈他早发了", False),
    ("要不是被约谈他早发了", False),
])
def test_if_it_were_not_for_asserts_what_follows(project_marking, text, hypothetical):
    segmenter, marker, cues = project_marking
    marked = marker.mark(segmenter.transform([text])[0], cues)
    asserted = [token for token in marked.tokens if plain(token) == token]
    assert any("约谈" in token for token in asserted) is not hypothetical
