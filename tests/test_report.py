"""The HTML report: every section rendered from a small metrics dict, hostile text escaped, charts inlined, and the
tiny project's report written in-process."""

from __future__ import annotations

import base64
import dataclasses
import re

import jinja2
import numpy as np
import pandas as pd
import pytest

from pipeline import charts, evaluation, report_page
from pipeline.config import load_params
from tests.conftest import ROOT
from tests.test_evaluation import LEXICON, SETTINGS, TEST, RuleModel, posts

LABELS = RuleModel.labels
HOSTILE = '<script>alert("x")</script>'
PIXEL = charts.Chart("data:image/png;base64,iVBORw0KGgo=", "chart", 440)
SUMMARY = {"posts": 1234, "rows_read": 1240, "rows_dropped": {"empty": 4, "duplicate": 2}, "traditional_share": 0.1,
           "length_chars": {"median": 42}, "near_duplicate_groups": 3, "groups_straddling_splits": 0,
           "data_sha256": "ab" * 32,
           "background": {"present": True, "rows": 20000, "per_split": {"train": 12000, "val": 4000, "test": 4000}},
           "splits": {split: {"posts": 10, "candidacy": 2, "police_warning": 3} for split in ("train", "val", "test")},
           "kinds": {HOSTILE: {"posts": 5, "candidacy": 1, "police_warning": 0}}}
CARD = {"model": {"sha256": "cd" * 32}, "segmenter": {"backend": "jieba", "hmm": True},
        "versions": {"python": "3.11", "jieba": "0.42", "missing": None}, "threshold_rule": {"rule": "max_f1"}}


def report_data(challenge: pd.DataFrame, real: pd.DataFrame, errors: pd.DataFrame | None = None,
                background: pd.DataFrame | None = None) -> report_page.ReportData:
    """What the report stage reads, computed by the evaluation functions on a handful of synthetic posts."""
    model = RuleModel()
    background = posts([("宣布一件事", 0, 0), ("散步", 0, 0)]) if background is None else background
    scores = evaluation.score_split(model, TEST, background, LEXICON)
    metrics = evaluation.split_metrics(SETTINGS, scores)
    metrics["background"] = evaluation.background_summary(background)
    metrics["challenge"] = evaluation.challenge_scores(SETTINGS, model, challenge, LEXICON)
    metrics["real_posts"] = evaluation.real_post_scores(SETTINGS, model, real, LEXICON)
    metrics["background_positives"] = evaluation.background_positive_scores(
        model, posts([("宣布参选", 1, 0)]) if len(real) else TEST[:0])
    if errors is None:
        errors = evaluation.error_rows(TEST, scores.proba, model.labels, model.thresholds, 10)
    features = {label: {"positive": [{"feature": HOSTILE, "weight": 1.5}], "negative": [{"feature": "天气",
                                                                                        "weight": -0.25}]}
                for label in LABELS}
    return report_page.ReportData(metrics=metrics, summary=SUMMARY, card=CARD, features=features, errors=errors,
                                  thresholds={label: scores.threshold_table(label) for label in LABELS},
                                  charts={label: [PIXEL] * 4 for label in LABELS})


@pytest.fixture(scope="module")
def params():
    """The project's own configuration: the report is rendered as `dvc repro` renders it."""
    return load_params(ROOT / "configs" / "params.yaml")


CHALLENGE = posts([("我宣布参选", 1, 0), ("被约谈", 0, 1), ("宣布开业", 0, 0), ("今天散步", 0, 0)],
                  writer=[HOSTILE, HOSTILE, "li", "li"])
REAL = posts([("我宣布参选", 1, 0), ("我要参选", 1, 0), ("约谈", 0, 1)], ambiguous=[False, True, False])


def text(page: str) -> str:
    """The page with its runs of white space as one space, as a browser shows it."""
    return re.sub(r"\s+", " ", page)


def test_every_section_is_rendered(params):
    page = text(report_page.render(params, report_data(CHALLENGE, REAL)))
    for section in ("headline", "label-candidacy", "label-police_warning", "real", "challenge", "data", "reading"):
        assert len(re.findall(rf'<section[^>]* id="{section}"', page)) == 1, section
    headline = re.search(r'<table class="headline">(.*?)</table>', page, re.S).group(1)
    assert headline.count("<tr") == 1 + 2 * len(LABELS)
    assert page.count('<table class="thresholds">') == len(LABELS)
    assert page.count("<img ") == 4 * len(LABELS)
    # Figures computed by hand in tests/test_evaluation.py: candidacy's model F1 0.5 against keywords 1.0.
    assert "F1 0.500 against 1.000 for keyword search: -0.500." in page
    assert "Macro average F1: model 0.750," in page
    assert 'class="chosen"><td>0.50 ← chosen</td>' in page
    assert "False alarms are measured on 2 held-out real Weibo posts" in page
    assert "Without the 1 rows whose label depends on missing context" in page
    assert "candidacy 1 of 1 flagged" in page  # the background positive found in the pool
    assert "1,234 labeled posts (1,240 read; dropped: empty 4, duplicate 2)" in page
    assert "python 3.11, jieba 0.42</p>" in page
    assert "我要参选" in page and page.count('<td class="post">') == 2  # the test split's two mistakes, with text
    assert "我宣布参选" not in page.split('id="real"')[1]  # real posts: figures only, never text


def test_absent_corpora_say_not_measured(params):
    empty = TEST[:0]
    page = text(report_page.render(params, report_data(CHALLENGE[:0], REAL[:0], errors=pd.DataFrame(
        columns=["label", "error", "prob", "threshold", "gold", "kind", "id", "text"]), background=empty)))
    assert "not measured: no challenge posts" in page
    assert "not measured: the real development posts" in page
    assert "The background corpus was absent" in page
    assert page.count("No mistakes on the test split.") == len(LABELS)
    assert "not measured</td></tr>" in page  # the expected flags per 10,000 posts


def test_hostile_text_is_escaped(params):
    errors = pd.DataFrame([{"label": "candidacy", "error": "false_positive", "prob": 0.9, "threshold": 0.5,
                            "gold": 0, "kind": HOSTILE, "id": "x", "text": HOSTILE + "<img src=x onerror=alert(1)>"}])
    page = report_page.render(params, report_data(CHALLENGE, REAL, errors=errors))
    assert "<script" not in page and "<img src=x" not in page
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    # In a mistake's post and kind, a feature, a challenge writer's name and a kind of labeled post.
    assert page.count(escaped) >= 5
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_renamed_metrics_key_fails_loudly(params):
    data = report_data(CHALLENGE, REAL)
    metrics = {**data.metrics, "macro": {"model": {}, "keyword": {}}}
    with pytest.raises(jinja2.UndefinedError, match="'f1'"):
        report_page.render(params, dataclasses.replace(data, metrics=metrics))


def test_the_page_says_which_posts_the_thresholds_were_chosen_on(params):
    data = report_data(CHALLENGE, REAL)
    held_out = text(report_page.render(params, data))
    cross_fitted = text(report_page.render(params, dataclasses.replace(
        data, card={**CARD, "params": {"train": {"validation": "cross_fitted"}}})))
    assert held_out.count("on the validation split") == len(LABELS)
    assert cross_fitted.count("each scored by the calibration fold that never saw its writer") == len(LABELS)


def test_charts_are_inline_pngs():
    y = np.array([1, 0, 1, 0, 0])
    frames = {"pr": pd.DataFrame({"recall": [0, 0.5, 1], "model": [1, 1, 0.6], "keyword": [1, 0.5, 0.4]}),
              "threshold": evaluation.threshold_table(y, np.array([0.9, 0.2, 0.6, 0.4, 0.1]), None, 0.5),
              "calibration": pd.DataFrame({"prob_pred": [0.1, 0.9], "prob_true": [0.0, 1.0]}),
              "confusion": pd.DataFrame({"actual": y, "predicted": [1, 0, 1, 1, 0]})}
    metrics = {"threshold": 0.5, "model": {"precision": 0.67, "recall": 1.0}, "keyword": {"precision": 0.5,
                                                                                          "recall": 0.5}}
    made = charts.label_charts("candidacy", metrics, frames)
    assert [c.width for c in made] == [440, 440, 440, 330]
    for chart in made:
        assert base64.b64decode(chart.uri.removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
    assert charts.confusion_matrix(frames["confusion"]).tolist() == [[2, 1], [0, 2]]


def test_the_tiny_projects_report(tiny_params):
    params = load_params(tiny_params)
    page = params.root_path(params.paths.report_html).read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 4 * len(params.labels)
    for label in params.labels:
        assert f'id="label-{label}"' in page
