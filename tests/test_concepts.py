"""Concept features: the table is read strictly, matching finds every concept a post has, and the exported model
counts them exactly as the fitted pipeline does."""

import numpy as np
import pytest

from pipeline.concepts import ConceptMatcher, read_concepts
from pipeline.errors import UserError
from pipeline.features import ConceptCounter
from pipeline.segmenter import Doc
from pipeline.vectors import ConceptBlock
from tests.conftest import ROOT


def table(tmp_path, text):
    path = tmp_path / "concepts.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_projects_table_reads():
    concepts = dict(read_concepts(ROOT / "configs" / "concepts.yaml"))
    assert "业委会" in concepts["out_of_scope_election"] and "训诫" in concepts["police_action"]


def test_terms_are_read_as_normalised_text_is_written(tmp_path):
    concepts = read_concepts(table(tmp_path, "out_of_scope: [立法會, 業委會, 立法会, NBA]\n"))
    assert concepts == (("out_of_scope", ("立法会", "业委会", "nba")),)  # simplified, lower case, once each


@pytest.mark.parametrize("text, fragment", [
    ("[a, b]\n", "mapping of a concept name"),
    ("Crime: [盗窃]\n", "concept name 'Crime'"),
    ("crime: []\n", "non-empty list"),
    ("crime: 盗窃\n", "non-empty list"),
    ("crime: [盗 窃]\n", "letters and digits only"),
    ("crime: [盗窃！]\n", "letters and digits only"),
])
def test_a_malformed_table_is_one_line(tmp_path, text, fragment):
    with pytest.raises(UserError) as caught:
        read_concepts(table(tmp_path, text))
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_every_concept_a_post_has_is_found_even_when_terms_overlap():
    matcher = ConceptMatcher([("speech", ("参选", "微博")), ("withdrawal", ("不参选", "退出")), ("none", ("xyz",))])
    row, column = matcher.presence(["我不参选了", "今天天气好", "退出微博", ""])
    assert list(zip(row.tolist(), column.tolist())) == [(0, 0), (0, 1), (2, 0), (2, 1)]
    assert matcher.names == ["<speech>", "<withdrawal>", "<none>"]


def test_pairs_are_the_concepts_a_post_has_together():
    matcher = ConceptMatcher([("police", ("民警",)), ("act", ("约谈",)), ("cause", ("微博",))], pairs=True)
    row, column = matcher.presence(["民警约谈了发微博的人", "民警约谈", "发微博", "下午茶"])
    assert list(zip(row.tolist(), column.tolist())) == [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4), (0, 5),
                                                        (1, 0), (1, 1), (1, 3), (2, 2)]
    assert matcher.n_features == 6
    assert matcher.names[3:] == ["<police>+<act>", "<police>+<cause>", "<act>+<cause>"]


@pytest.mark.parametrize("pairs, idf, expected", [
    (False, [2.0, 3.0], [[1, 1], [0, 1], [0, 0]]),
    (True, [2.0, 3.0, 5.0], [[1, 1, 1], [0, 1, 0], [0, 0, 0]]),  # the third column: crime and police together
])
def test_the_exported_block_counts_what_the_fitted_counter_counts(pairs, idf, expected):
    concepts = (("crime", ("盗窃", "赌博")), ("police", ("民警", "派出所")))
    docs = [Doc("民警抓获盗窃嫌疑人", ()), Doc("被派出所叫去谈话", ()), Doc("下午茶", ())]
    fitted = ConceptCounter(concepts, pairs).fit(docs).transform(docs).toarray()
    block = ConceptBlock(concepts, np.array(idf), pairs).vectors([doc.text for doc in docs])
    exported = np.zeros((3, len(idf)))
    exported[block.row, block.column] = block.value
    np.testing.assert_array_equal(fitted, expected)
    np.testing.assert_array_equal(exported, fitted * idf)


def test_the_model_explains_a_post_by_its_concepts_too(tiny_model):
    names = tiny_model.feature_names()
    assert {"<police>", "<police_action>", "<ordinary_crime>"} <= set(names)


def test_a_block_whose_idf_does_not_match_its_concepts_is_refused():
    with pytest.raises(ValueError, match="concept_idf"):
        ConceptBlock((("crime", ("盗窃",)), ("police", ("民警",))), np.array([2.0, 3.0]), pairs=True)
