"""Segmentation (pipeline/segment.py): the domain dictionary, one-character words, the cache, the backends."""

import json

import pandas as pd
import pytest

from pipeline.errors import UserError
from pipeline.segmenter import Segmenter, read_user_dict
from pipeline.text import URL, make_normalizer
from tests.conftest import ROOT


@pytest.mark.parametrize("text, word", [
    ("他要竞选人大代表", "人大代表"),
    ("请大家联名推荐我", "联名推荐"),
    ("又被国保约谈了", "国保"),
    ("又被国保约谈了", "约谈"),
    ("查水表的来了", "查水表"),
    ("签了训诫书才放我走", "训诫书"),
    ("他以独立候选人身份参选", "独立候选人"),
])
def test_domain_words_stay_whole(project_segmenter, text, word):
    assert word in project_segmenter.tokens(text)


def test_one_character_words_survive(project_segmenter):
    tokens = project_segmenter.tokens("又被约去喝茶了")
    assert "被" in tokens and "约" in tokens


def test_punctuation_is_dropped_and_placeholders_stay(project_segmenter):
    tokens = project_segmenter.tokens(f"看! {URL} 太离谱,,")
    assert URL in tokens
    assert "!" not in tokens and "," not in tokens


def test_empty_text_has_no_tokens(project_segmenter):
    assert project_segmenter.tokens("") == ()


def test_jieba_cache_goes_to_the_configured_folder(tmp_path):
    cache = tmp_path / "jieba-cache"
    Segmenter(cache_dir=str(cache)).fit().tokens("测试一下缓存")
    assert any(cache.glob("*.cache")), "jieba wrote no cache file in the configured folder"


def test_settings_rebuild_the_same_segmenter(project_segmenter):
    settings = json.loads(json.dumps(project_segmenter.settings()))  # as the model file stores them
    clone = Segmenter.from_settings(settings, cache_dir=project_segmenter.cache_dir)
    assert clone.settings() == project_segmenter.settings() and len(settings["user_words"]) > 0
    assert clone.tokens("又被国保约谈了") == project_segmenter.tokens("又被国保约谈了")


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError):
        Segmenter(backend="thulac").fit()


def test_user_dictionary_needs_frequencies(tmp_path):
    path = tmp_path / "dict.txt"
    path.write_text("# comment\n人大代表 3000 n\n国保\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"dict.txt:3"):
        read_user_dict(path)


def test_rjieba_matches_jieba_without_hmm_on_the_labeled_corpus(project_params):
    """With the HMM off both backends share one dictionary, so every post segments identically, except where two
    routes are equally probable (谈谈谈 as 谈|谈谈 or 谈谈|谈): there the backends break the tie differently, and
    the posts hold the same words in another order."""
    params = project_params
    files = sorted((ROOT / params.paths.labeled).glob("*.csv"))
    texts = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False)["text"] for f in files]).tolist()
    assert len(texts) > 100
    normalized = make_normalizer(params).transform(texts)
    words = read_user_dict(ROOT / params.paths.user_dict)
    jieba = Segmenter(backend="jieba", hmm=False, user_words=words).fit().transform(normalized)
    rjieba = Segmenter(backend="rjieba", hmm=False, user_words=words).fit().transform(normalized)
    differing = [(d.tokens, r.tokens) for d, r in zip(jieba, rjieba) if d.tokens != r.tokens]
    assert len(differing) <= len(texts) // 1000, f"{len(differing)} posts segment differently"
    for ours, theirs in differing:
        assert sorted(ours) == sorted(theirs), (ours, theirs)
