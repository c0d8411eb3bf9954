"""Evaluation figures of a saved model against the keyword baseline: on the test split (with false alarms on the
held-out background posts), on the challenge writers, on real posts, and on the real positives found in the pool.

Every function here computes; the ``evaluate`` stage reads the inputs and writes what these return.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve

from pipeline.config import EvaluateConfig
from pipeline.lexicon import keyword_scores
from pipeline.metrics import bootstrap_prf, counts, prf, ranking_scores, wilson_interval
from pipeline.model import Model

RECALL_GRID = np.round(np.linspace(0, 1, 101), 2)
THRESHOLD_GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)
METHODS = ("model", "keyword")


def decision_scores(y, score, threshold: float, background_score, settings: EvaluateConfig,
                    with_brier: bool) -> dict:
    """Every figure of one method (model or keyword baseline) for one label, at its decision threshold."""
    decision = score >= threshold
    out: dict = {**prf(y, decision)}
    intervals = bootstrap_prf(y, decision, settings.bootstrap, settings.confidence, settings.seed)
    for name, (low, high) in intervals.items():
        out[f"{name}_lo"], out[f"{name}_hi"] = low, high
    ranking = ranking_scores(y, score)
    out.update(pr_auc=ranking["pr_auc"], roc_auc=ranking["roc_auc"])
    if with_brier:
        out["brier"] = ranking["brier"]
    out.update(counts(y, decision))
    if background_score is None:
        out.update(background_far=None, background_far_lo=None, background_far_hi=None, background_flags=None)
    else:
        flags = int((background_score >= threshold).sum())
        low, high = wilson_interval(flags, len(background_score), settings.confidence)
        out.update(background_far=flags / len(background_score), background_far_lo=low, background_far_hi=high,
                   background_flags=flags)
    return out


def interpolated_pr(y, score) -> np.ndarray:
    """Precision at each recall of RECALL_GRID: the best precision reachable at that recall or more."""
    if y.sum() == 0:
        return np.zeros(len(RECALL_GRID))
    precision, recall, _ = precision_recall_curve(y, score)
    return np.array([precision[recall >= r].max() for r in RECALL_GRID])


def threshold_table(y, score, background_score, chosen: float) -> pd.DataFrame:
    """Precision, recall, F1 and expected flags per 10,000 background posts at a grid of thresholds."""
    rows = []
    for t in sorted({*THRESHOLD_GRID.tolist(), round(chosen, 4)}):
        scores = prf(y, score >= t)
        rows.append({"threshold": t, **{k: round(v, 4) for k, v in scores.items()},
                     "flagged_share": round(float((score >= t).mean()), 4),
                     "background_flags_per_10k": None if background_score is None
                     else round(float((background_score >= t).mean() * 10_000), 1),
                     "chosen": int(t == round(chosen, 4))})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class ScoredSplit:
    """The test split and the held-out background posts scored by the model and the keyword baseline, one column
    per label (the background arrays are None when there are no background posts)."""

    test: pd.DataFrame
    labels: list[str]
    thresholds: dict[str, float]
    proba: np.ndarray
    keyword: np.ndarray
    background_proba: np.ndarray | None
    background_keyword: np.ndarray | None

    def background(self, label: str, method: str = "model") -> np.ndarray | None:
        scores = self.background_proba if method == "model" else self.background_keyword
        return None if scores is None else scores[:, self.labels.index(label)]

    def pr_table(self, label: str) -> pd.DataFrame:
        """Interpolated precision at each recall of the model and the keyword baseline."""
        j, y = self.labels.index(label), self.test[label].to_numpy()
        return pd.DataFrame({"recall": RECALL_GRID, "model": interpolated_pr(y, self.proba[:, j]),
                             "keyword": interpolated_pr(y, self.keyword[:, j])}).round(4)

    def threshold_table(self, label: str) -> pd.DataFrame:
        j = self.labels.index(label)
        return threshold_table(self.test[label].to_numpy(), self.proba[:, j], self.background(label),
                               self.thresholds[label])


def keyword_matrix(texts: list, lexicon: dict[str, list[str]], labels: list[str]) -> np.ndarray:
    """The keyword baseline's score of every post (rows) for every label (columns)."""
    return np.column_stack([keyword_scores(texts, lexicon[label]) for label in labels])


def score_split(model: Model, test: pd.DataFrame, background: pd.DataFrame, lexicon: dict) -> ScoredSplit:
    """Score the test posts and the unlabeled held-out background posts with the model and the keywords."""
    labels, has_background = model.labels, len(background) > 0
    texts, bg_texts = test["text"].tolist(), background["text"].tolist()
    return ScoredSplit(test=test, labels=labels, thresholds=dict(model.thresholds),
                      proba=model.predict_proba(texts), keyword=keyword_matrix(texts, lexicon, labels),
                      background_proba=model.predict_proba(bg_texts) if has_background else None,
                      background_keyword=keyword_matrix(bg_texts, lexicon, labels) if has_background else None)


def split_metrics(settings: EvaluateConfig, scores: ScoredSplit) -> dict:
    """Per label the model's and the keyword baseline's figures on the test split, then their macro average."""
    metrics: dict = {}
    for j, label in enumerate(scores.labels):
        y, threshold = scores.test[label].to_numpy(), scores.thresholds[label]
        metrics[label] = {
            "threshold": round(threshold, 4), "support": int(y.sum()), "posts": int(len(y)),
            "model": decision_scores(y, scores.proba[:, j], threshold, scores.background(label), settings,
                                     with_brier=True),
            # A keyword post is flagged when it contains at least one term: threshold 1.
            "keyword": decision_scores(y, scores.keyword[:, j], 1.0, scores.background(label, "keyword"),
                                       settings, with_brier=False),
        }
    metrics["macro"] = {method: {name: float(np.mean([metrics[label][method][name] for label in scores.labels]))
                                 for name in ("precision", "recall", "f1")}
                        for method in METHODS}
    return metrics


def predictions(scores: ScoredSplit) -> pd.DataFrame:
    """The test posts with their labels, the model's probability and the keyword score per label."""
    out = scores.test[["id", "kind", "text", *scores.labels]].copy()
    for j, label in enumerate(scores.labels):
        out[f"{label}_prob"] = scores.proba[:, j]
        out[f"{label}_keyword"] = scores.keyword[:, j]
    return out


def split_background(background: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The unlabeled background posts (false alarms are measured on them) and the ones labeled by id, which are
    real positives, not false alarms, and are reported apart."""
    if background.empty:
        return background, background
    labeled = background["labeled"].astype(bool)
    return background[~labeled].reset_index(drop=True), background[labeled].reset_index(drop=True)


def background_summary(background: pd.DataFrame) -> dict:
    if background.empty:
        return {"present": False, "posts": 0, "note": "not measured: the background corpus was absent or switched off"}
    return {"present": True, "posts": int(len(background))}


def top_features(model: Model, label: str, n: int) -> dict:
    """The n features pushing hardest towards the label and the n pushing hardest against it."""
    coef = model.coefficients(label)
    names = model.feature_names()
    order = np.argsort(coef)

    def pick(indices) -> list[dict]:
        return [{"feature": str(names[i]), "weight": round(float(coef[i]), 4)} for i in indices]

    return {"positive": pick(order[::-1][:n]), "negative": pick(order[:n])}


def error_rows(test: pd.DataFrame, proba: np.ndarray, labels: list[str], thresholds: dict[str, float],
               limit: int) -> pd.DataFrame:
    """The test posts the model got wrong per label, the most confident mistakes first."""
    columns = ["label", "error", "prob", "threshold", "gold", "kind", "id", "text"]
    frames = []
    for j, label in enumerate(labels):
        threshold = thresholds[label]
        p = proba[:, j]
        wrong = (p >= threshold) != (test[label].to_numpy() == 1)
        part = test.loc[wrong, ["id", "kind", "text", label]].rename(columns={label: "gold"})
        part.insert(0, "label", label)
        part["prob"] = np.round(p[wrong], 4)
        part["threshold"] = round(threshold, 4)
        part["error"] = np.where(part["gold"] == 1, "false_negative", "false_positive")
        part["confidence"] = np.where(part["gold"] == 1, 1 - part["prob"], part["prob"])
        frames.append(part)
    if not frames:
        return pd.DataFrame(columns=columns)
    errors = pd.concat(frames, ignore_index=True)
    return errors.sort_values("confidence", ascending=False, kind="stable").head(limit)[columns]


def held_out_scores(settings: EvaluateConfig, model: Model, posts: pd.DataFrame, proba: np.ndarray,
                    lexicon: dict) -> dict:
    """Model and keyword figures, per label, on posts never trained on (challenge writers, real posts), given the
    model's probabilities for them."""
    out: dict = {"posts": int(len(posts))}
    for j, label in enumerate(model.labels):
        y = posts[label].to_numpy()
        keyword = keyword_scores(posts["text"].tolist(), lexicon[label])
        out[label] = {"support": int(y.sum()), "negatives": int((y == 0).sum()),
                      "model": decision_scores(y, proba[:, j], model.thresholds[label], None, settings, True),
                      "keyword": decision_scores(y, keyword, 1.0, None, settings, False)}
    return out


def challenge_scores(settings: EvaluateConfig, model: Model, challenge: pd.DataFrame, lexicon: dict) -> dict:
    """Figures on the independently written challenge posts (never trained on): all writers pooled, and per writer,
    since each writer is a separate test of posts written by someone else."""
    if challenge.empty:
        return {"present": False, "posts": 0,
                "note": "not measured: no challenge posts (paths.challenge is empty or absent)"}
    challenge = challenge.reset_index(drop=True)
    proba = model.predict_proba(challenge["text"].tolist())
    out = {"present": True, **held_out_scores(settings, model, challenge, proba, lexicon)}
    out["writers"] = {writer: held_out_scores(settings, model, part.reset_index(drop=True), proba[part.index],
                                              lexicon)
                      for writer, part in challenge.groupby("writer", sort=True)}
    return out


def real_post_scores(settings: EvaluateConfig, model: Model, real: pd.DataFrame, lexicon: dict) -> dict:
    """Figures on real posts labeled by a third party (``paths.real_dev``, evaluation only): all of them, and
    without the rows whose label depends on context the text lacks. Only ids leave this function, never text."""
    if real.empty:
        return {"present": False, "posts": 0,
                "note": "not measured: the real development posts (paths.real_dev) were absent"}
    real = real.reset_index(drop=True)
    proba = model.predict_proba(real["text"].tolist())
    clear = ~real["ambiguous"].astype(bool).to_numpy()
    out = {"present": True, **held_out_scores(settings, model, real, proba, lexicon),
           "without_ambiguous": held_out_scores(settings, model, real[clear].reset_index(drop=True), proba[clear],
                                                lexicon)}
    out["mistakes"] = {}
    for j, label in enumerate(model.labels):
        flagged = proba[:, j] >= model.thresholds[label]
        out["mistakes"][label] = {"false_negative": real.loc[(real[label] == 1) & ~flagged, "id"].tolist(),
                                  "false_positive": real.loc[(real[label] == 0) & flagged, "id"].tolist()}
    return out


def background_positive_scores(model: Model, found: pd.DataFrame) -> dict:
    """Recall on the held-out background posts labeled by id as positives: real posts, found in the pool."""
    if found.empty:
        return {"present": False, "posts": 0}
    proba = model.predict_proba(found["text"].tolist())
    out: dict = {"present": True, "posts": int(len(found))}
    for j, label in enumerate(model.labels):
        positive = found[label].to_numpy() == 1
        flagged = int((proba[positive, j] >= model.thresholds[label]).sum())
        out[label] = {"positives": int(positive.sum()), "flagged": flagged,
                      "recall": flagged / int(positive.sum()) if positive.any() else None}
    return out


def summary_lines(metrics: dict, labels: list[str]) -> list[str]:
    """The figures worth a line in the stage's log, per label: test split, challenge writers, real posts."""
    lines = []
    for label in labels:
        m, k = metrics[label]["model"], metrics[label]["keyword"]
        far = "n/a" if m["background_far"] is None else f"{m['background_far']:.3%}"
        lines.append(f"{label}: F1 {m['f1']:.3f} [{m['f1_lo']:.3f}, {m['f1_hi']:.3f}] (keywords {k['f1']:.3f}), "
                     f"background false alarms {far}")
        if metrics["challenge"]["present"]:
            c = metrics["challenge"][label]
            writers = ", ".join(f"{writer} {scores[label]['model']['f1']:.3f}"
                                for writer, scores in metrics["challenge"]["writers"].items())
            lines.append(f"{label} on the challenge set: F1 {c['model']['f1']:.3f} (keywords {c['keyword']['f1']:.3f});"
                         f" per writer: {writers}")
        if metrics["real_posts"]["present"]:
            r = metrics["real_posts"][label]
            lines.append(f"{label} on real posts: F1 {r['model']['f1']:.3f} [{r['model']['f1_lo']:.3f}, "
                         f"{r['model']['f1_hi']:.3f}], P {r['model']['precision']:.3f} R {r['model']['recall']:.3f}, "
                         f"{r['model']['fp']} of {r['negatives']} negatives flagged "
                         f"(keywords F1 {r['keyword']['f1']:.3f})")
    return lines
