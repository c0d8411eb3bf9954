"""The evaluation's figures on small synthetic arrays whose answers can be worked out by hand, the plot files
DVCLive writes (and the report reads back), and the tiny project's real evaluate outputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline import evaluation, files, plots
from pipeline.config import EvaluateConfig, load_params
from pipeline.errors import UserError
from tests.conftest import ROOT

SETTINGS = EvaluateConfig(bootstrap=200, confidence=0.95, seed=3, n_errors=10, n_top_features=3)
LEXICON = {"candidacy": ["参选"], "police_warning": ["喝茶"]}


class RuleModel:
    """A stand-in for a saved model: a post scores 0.9 for a label when it holds the label's cue, else 0.1."""

    labels = ["candidacy", "police_warning"]
    thresholds = {"candidacy": 0.5, "police_warning": 0.5}
    cues = {"candidacy": "宣布", "police_warning": "约谈"}

    def predict_proba(self, texts: list) -> np.ndarray:
        return np.array([[0.9 if self.cues[label] in text else 0.1 for label in self.labels] for text in texts]
                        ).reshape(len(texts), len(self.labels))


def posts(rows: list[tuple], **extra) -> pd.DataFrame:
    """Posts from (text, candidacy, police_warning) rows, with ids p0, p1, …"""
    frame = pd.DataFrame(rows, columns=["text", "candidacy", "police_warning"])
    frame.insert(0, "id", [f"p{i}" for i in range(len(frame))])
    frame["kind"] = "synthetic"
    for column, values in extra.items():
        frame[column] = values
    return frame


# Cue words make the model right or wrong on purpose: p1 is a missed candidacy, p3 a false alarm.
TEST = posts([("我宣布参选", 1, 0), ("我要参选", 1, 0), ("被约谈喝茶", 0, 1), ("宣布开业", 0, 0),
              ("今天天气好", 0, 0), ("又被约谈", 0, 1)])


def test_decision_scores_counts_and_rates():
    y, score = np.array([1, 1, 0, 0]), np.array([0.9, 0.4, 0.6, 0.1])
    background = np.array([0.7, 0.2, 0.1, 0.3])
    out = evaluation.decision_scores(y, score, 0.5, background, SETTINGS, with_brier=True)
    assert (out["tp"], out["fp"], out["fn"], out["tn"]) == (1, 1, 1, 1)
    assert out["precision"] == out["recall"] == out["f1"] == 0.5
    assert out["roc_auc"] == 0.75  # of the 4 positive-negative pairs, 3 are ranked right
    assert out["brier"] == pytest.approx((0.1**2 + 0.6**2 + 0.6**2 + 0.1**2) / 4)
    assert out["background_flags"] == 1 and out["background_far"] == 0.25
    assert out["background_far_lo"] < 0.25 < out["background_far_hi"]
    for name in ("precision", "recall", "f1"):
        assert 0 <= out[f"{name}_lo"] <= out[name] <= out[f"{name}_hi"] <= 1


def test_decision_scores_without_background_or_brier():
    out = evaluation.decision_scores(np.array([1, 0]), np.array([1.0, 0.0]), 1.0, None, SETTINGS, with_brier=False)
    assert out["f1"] == 1.0 and "brier" not in out
    assert out["background_far"] is None and out["background_flags"] is None


def test_interpolated_precision_is_the_best_reachable_at_that_recall_or_more():
    # Ranked: + - + -. Cutting after the 1st post: P 1, R .5; after the 3rd: P 2/3, R 1.
    pr = evaluation.interpolated_pr(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1]))
    at = dict(zip(evaluation.RECALL_GRID.tolist(), pr, strict=True))
    assert at[0.0] == at[0.5] == 1.0
    assert at[0.51] == pytest.approx(2 / 3) and at[1.0] == pytest.approx(2 / 3)
    assert not evaluation.interpolated_pr(np.zeros(3), np.array([0.1, 0.5, 0.9])).any()


def test_threshold_table_marks_the_chosen_threshold_and_counts_background_flags():
    y, score = np.array([1, 1, 0, 0]), np.array([0.9, 0.44, 0.435, 0.1])
    table = evaluation.threshold_table(y, score, np.array([0.5, 0.0]), chosen=0.4321)
    assert len(table) == len(evaluation.THRESHOLD_GRID) + 1
    chosen = table[table["chosen"] == 1]
    assert chosen["threshold"].tolist() == [0.4321]
    scores = chosen[["precision", "recall", "flagged_share"]].iloc[0].tolist()
    assert scores == pytest.approx([2 / 3, 1, 0.75], abs=1e-4)
    row = table[table["threshold"] == 0.45].iloc[0]
    assert (row["precision"], row["recall"], row["background_flags_per_10k"]) == (1.0, 0.5, 5000.0)
    # A chosen threshold on the grid is marked there, not added twice; no background, no expected flags.
    table = evaluation.threshold_table(y, score, None, chosen=0.5)
    assert len(table) == len(evaluation.THRESHOLD_GRID) and table["chosen"].sum() == 1
    assert table["background_flags_per_10k"].isna().all()


def test_split_metrics_on_the_test_split():
    background = posts([("宣布一件事", 0, 0), ("散步", 0, 0), ("散步", 0, 0), ("参选", 0, 0)])
    scores = evaluation.score_split(RuleModel(), TEST, background, LEXICON)
    metrics = evaluation.split_metrics(SETTINGS, scores)
    model, keyword = metrics["candidacy"]["model"], metrics["candidacy"]["keyword"]
    assert (metrics["candidacy"]["posts"], metrics["candidacy"]["support"]) == (6, 2)
    assert (model["tp"], model["fp"], model["fn"]) == (1, 1, 1)  # p0 found, p3 a false alarm, p1 missed
    assert (keyword["tp"], keyword["fp"], keyword["fn"]) == (2, 0, 0)  # 参选 is in both candidacies
    assert model["background_flags"] == 1 and keyword["background_flags"] == 1
    assert metrics["police_warning"]["model"]["f1"] == 1.0
    assert metrics["macro"]["model"]["f1"] == pytest.approx((0.5 + 1.0) / 2)
    table = scores.pr_table("candidacy")
    assert list(table.columns) == ["recall", "model", "keyword"] and len(table) == len(evaluation.RECALL_GRID)
    predictions = evaluation.predictions(scores)
    assert predictions["candidacy_prob"].tolist() == [0.9, 0.1, 0.1, 0.9, 0.1, 0.1]
    assert predictions["police_warning_keyword"].tolist() == [0, 0, 1, 0, 0, 0]


def test_split_metrics_without_background():
    scores = evaluation.score_split(RuleModel(), TEST, TEST[:0], LEXICON)
    metrics = evaluation.split_metrics(SETTINGS, scores)
    assert metrics["candidacy"]["model"]["background_far"] is None
    assert scores.threshold_table("candidacy")["background_flags_per_10k"].isna().all()


def test_split_background_reports_labeled_positives_apart():
    background = posts([("a", 0, 0), ("b", 1, 0), ("c", 0, 0)], labeled=[False, True, False])
    unlabeled, found = evaluation.split_background(background)
    assert unlabeled["text"].tolist() == ["a", "c"] and found["text"].tolist() == ["b"]
    assert evaluation.background_summary(unlabeled) == {"present": True, "posts": 2}
    assert not evaluation.background_summary(unlabeled[:0])["present"]


def test_error_rows_put_the_most_confident_mistakes_first():
    test = posts([("a", 0, 0), ("b", 1, 0), ("c", 1, 0), ("d", 0, 0)])
    proba = np.array([[0.9, 0.1], [0.2, 0.1], [0.6, 0.1], [0.4, 0.1]])
    errors = evaluation.error_rows(test, proba, RuleModel.labels, RuleModel.thresholds, limit=10)
    assert errors[["id", "error", "prob"]].values.tolist() == [["p0", "false_positive", 0.9],
                                                                ["p1", "false_negative", 0.2]]
    assert evaluation.error_rows(test, proba, RuleModel.labels, RuleModel.thresholds, limit=1)["id"].tolist() == ["p0"]


def test_challenge_scores_pool_the_writers_and_score_each():
    challenge = posts([("我宣布参选", 1, 0), ("我要参选", 1, 0), ("被约谈", 0, 1), ("宣布开业", 0, 0),
                       ("今天散步", 0, 0)], writer=["wu", "wu", "li", "li", "wu"])
    out = evaluation.challenge_scores(SETTINGS, RuleModel(), challenge, LEXICON)
    assert out["present"] and out["posts"] == 5 and list(out["writers"]) == ["li", "wu"]
    assert out["writers"]["wu"]["posts"] == 3
    assert out["candidacy"]["model"]["f1"] == 0.5  # tp p0, fn p1, fp p3
    wu, li = out["writers"]["wu"]["candidacy"], out["writers"]["li"]["candidacy"]
    assert (wu["support"], wu["model"]["recall"], wu["model"]["precision"]) == (2, 0.5, 1.0)
    assert (li["support"], li["model"]["fp"]) == (0, 1)
    absent = evaluation.challenge_scores(SETTINGS, RuleModel(), challenge[:0], LEXICON)
    assert not absent["present"] and "not measured" in absent["note"]


def test_real_post_scores_list_mistaken_ids_not_text():
    real = posts([("我宣布参选", 1, 0), ("我要参选", 1, 0), ("宣布开业", 0, 0), ("约谈", 0, 1)],
                 ambiguous=[False, True, False, False])
    out = evaluation.real_post_scores(SETTINGS, RuleModel(), real, LEXICON)
    assert out["mistakes"]["candidacy"] == {"false_negative": ["p1"], "false_positive": ["p2"]}
    assert out["mistakes"]["police_warning"] == {"false_negative": [], "false_positive": []}
    assert out["without_ambiguous"]["posts"] == 3 and out["without_ambiguous"]["candidacy"]["model"]["fn"] == 0
    assert "宣布" not in json.dumps(out, ensure_ascii=False)
    assert not evaluation.real_post_scores(SETTINGS, RuleModel(), real[:0], LEXICON)["present"]


def test_background_positive_scores_count_recall_per_label():
    found = posts([("宣布参选", 1, 0), ("参选", 1, 0), ("约谈", 0, 1)])
    out = evaluation.background_positive_scores(RuleModel(), found)
    assert out["candidacy"] == {"positives": 2, "flagged": 1, "recall": 0.5}
    assert out["police_warning"] == {"positives": 1, "flagged": 1, "recall": 1.0}
    assert evaluation.background_positive_scores(RuleModel(), found[:0]) == {"present": False, "posts": 0}


def test_plots_written_with_dvclive_read_back_unchanged(tmp_path):
    from dvclive import Live

    y, proba = TEST["candidacy"].to_numpy(), np.array([0.9, 0.1, 0.1, 0.9, 0.1, 0.1])
    scores = evaluation.score_split(RuleModel(), TEST, TEST[:0], LEXICON)
    with Live(dir=str(tmp_path), dvcyaml=False, save_dvc_exp=False, report=None) as live:
        plots.log_label(live, "candidacy", scores.pr_table("candidacy"), scores.threshold_table("candidacy"), y,
                        proba, 0.5)
    frames = plots.read_label(tmp_path, "candidacy")
    pd.testing.assert_frame_equal(frames["pr"], scores.pr_table("candidacy"))
    assert frames["threshold"]["background_flags_per_10k"].isna().all()
    assert frames["confusion"].values.tolist() == [[1, 1], [1, 0], [0, 0], [0, 1], [0, 0], [0, 0]]
    # Two filled bins: the four posts at 0.1 (one positive), the two at 0.9 (one positive).
    calibration = frames["calibration"][["prob_pred", "prob_true"]].to_numpy().ravel()
    assert calibration.tolist() == pytest.approx([0.1, 0.25, 0.9, 0.5])
    with pytest.raises(UserError, match="run the evaluate stage first"):
        plots.read_label(tmp_path, "police_warning")


def test_dvc_yaml_plots_name_the_files_evaluate_writes(project_params):
    params = project_params
    entries = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    named = {file.replace("${paths.plots}", params.paths.plots) for entry in entries for config in entry.values()
             for file in config["y"]}
    expected = {str(plots.path(params.paths.plots, kind, label)) for kind in plots.LAYOUT for label in params.labels}
    assert named == expected
    for entry in entries:  # tests/test_end_to_end.py finds each chart by a title starting with its label
        [title] = entry
        assert re.match(rf"({'|'.join(params.labels)}), ", title), title


def test_the_tiny_project_evaluation(tiny_params):
    params = load_params(tiny_params)
    metrics = files.read_json(params.root_path(params.paths.metrics))
    assert list(metrics) == [*params.labels, "macro", "background", "challenge", "real_posts",
                             "background_positives"]
    headline = files.read_json(params.root_path(params.paths.plots) / "metrics.json")
    for label in params.labels:
        assert headline[label]["model"]["f1"] == metrics[label]["model"]["f1"]
        frames = plots.read_label(params.root_path(params.paths.plots), label)
        assert len(frames["confusion"]) == metrics[label]["posts"]


def test_dvclive_in_a_repository_without_a_commit_is_a_one_line_error(tmp_path, monkeypatch):
    import subprocess

    from pipeline import plots
    from pipeline.errors import UserError

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="commit once"):
        plots.open_live(tmp_path / "evaluation")
