"""The README's figures are the pipeline's figures: the headline table and the corpus counts match the reports.

The README is the front door, and a number copied into it by hand goes stale at the next `dvc repro`. These
tests rebuild the README's lines from reports/metrics.json and reports/data_summary.json (written by
`make repro`, which `make test` runs first) and require them to be there verbatim.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
REPORTS = ROOT / "reports"


def load(name: str) -> dict:
    path = REPORTS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make repro` (make test does it first)")
    return json.loads(path.read_text(encoding="utf-8"))


def with_interval(scores: dict, key: str) -> str:
    return f"{scores[key]:.2f} ({scores[key + '_lo']:.2f}–{scores[key + '_hi']:.2f})"


def figures_row(label: str, metrics: dict) -> str:
    ours, keywords = metrics[label]["model"], metrics[label]["keyword"]
    challenge = metrics["challenge"][label]["model"]["f1"] if metrics["challenge"]["present"] else None
    real = metrics["real_posts"][label] if metrics["real_posts"]["present"] else None
    far = ours["background_far"]
    return " | ".join([
        f"| `{label}`",
        "not measured" if real is None else with_interval(real["model"], "f1"),
        "not measured" if real is None else f"{real['keyword']['f1']:.2f}",
        "not measured" if real is None else f"{real['model']['fp']} of {real['negatives']}",
        "n/a" if challenge is None else f"{challenge:.2f}",
        with_interval(ours, "f1"), with_interval(keywords, "f1"),
        "not measured" if far is None else f"{far:.3%}",
    ]) + " |"


def writer_row(writer: str, scores: dict) -> str:
    return (f"| {writer} | {scores['posts']} | "
            + " | ".join(f"{scores[label]['model']['f1']:.2f}" for label in ("candidacy", "police_warning")) + " |")


def full_data_only(metrics: dict) -> None:
    if not metrics["background"]["present"] or not metrics["real_posts"]["present"]:
        # A checkout without the shared corpora trains on less data: its figures are not the README's.
        pytest.skip("the background corpus or the real posts are absent here: the README's figures are for the full "
                    "data")


@pytest.mark.parametrize("label", ["candidacy", "police_warning"])
def test_headline_figures_match_metrics(label):
    metrics = load("metrics.json")
    full_data_only(metrics)
    expected = figures_row(label, metrics)
    assert expected in README, f"README's figures are stale; the row should read:\n{expected}"


def test_challenge_writer_figures_match_metrics():
    metrics = load("metrics.json")
    full_data_only(metrics)
    for writer, scores in metrics["challenge"]["writers"].items():
        expected = writer_row(writer, scores)
        assert expected in README, f"README's challenge figures are stale; the row should read:\n{expected}"


def test_evaluation_set_sizes_match_metrics():
    metrics = load("metrics.json")
    full_data_only(metrics)
    expected = (f"**Test split**: {metrics['candidacy']['posts']:,} held-out posts by the same writers as the "
                f"training posts (it flatters the model), and\n  {metrics['background']['posts']:,} held-out real "
                "background posts")
    assert expected in README, f"README's evaluation set sizes are stale; they should read:\n{expected}"


def test_corpus_counts_match_data_summary():
    summary = load("data_summary.json")
    labels = summary["labels"]
    expected = (f"{summary['posts']:,} labeled posts: {labels['candidacy']:,} with `candidacy` = 1, "
                f"{labels['police_warning']:,} with `police_warning` = 1 ({summary['all_labels_positive']:,} with "
                f"both), {summary['hard_negatives']:,} hard negatives and {summary['ordinary']:,} ordinary posts")
    assert expected in README, f"README's corpus counts are stale; they should read:\n{expected}"


def test_data_card_counts_match_data_summary():
    summary = load("data_summary.json")
    card = (ROOT / "data" / "README.md").read_text(encoding="utf-8")
    for kind, counts in summary["kinds"].items():
        row = f"| `{kind}` | {counts['posts']} | {counts['candidacy']} | {counts['police_warning']} |"
        assert row in card, f"data/README.md's count for {kind} is stale; the row should read:\n{row}"
