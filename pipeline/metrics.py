"""Scores of a binary decision and their bootstrap and Wilson intervals: shared by train and evaluate."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score


def counts(y: np.ndarray, decision: np.ndarray) -> dict[str, int]:
    y, decision = np.asarray(y, dtype=bool), np.asarray(decision, dtype=bool)
    return {"tp": int((y & decision).sum()), "fp": int((~y & decision).sum()),
            "fn": int((y & ~decision).sum()), "tn": int((~y & ~decision).sum())}


def prf(y: np.ndarray, decision: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 (0 where undefined, as scikit-learn's zero_division=0)."""
    c = counts(y, decision)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def ranking_scores(y: np.ndarray, score: np.ndarray) -> dict[str, float | None]:
    """PR-AUC (average precision), ROC-AUC and Brier score; None where one class is missing."""
    y = np.asarray(y, dtype=int)
    if len(y) == 0 or y.min() == y.max():
        return {"pr_auc": None, "roc_auc": None, "brier": float(brier_score_loss(y, score)) if len(y) else None}
    return {"pr_auc": float(average_precision_score(y, score)), "roc_auc": float(roc_auc_score(y, score)),
            "brier": float(brier_score_loss(y, np.clip(score, 0, 1)))}


def bootstrap_prf(y: np.ndarray, decision: np.ndarray, resamples: int, confidence: float,
                  seed: int) -> dict[str, list[float]]:
    """Percentile bootstrap intervals for precision, recall and F1 (posts resampled with replacement)."""
    y, decision = np.asarray(y, dtype=bool), np.asarray(decision, dtype=bool)
    rng = np.random.default_rng(seed)
    n = len(y)
    if n == 0 or resamples <= 0:
        return {}
    idx = rng.integers(0, n, size=(resamples, n))
    ys, ds = y[idx], decision[idx]
    tp = (ys & ds).sum(axis=1)
    fp = (~ys & ds).sum(axis=1)
    fn = (ys & ~ds).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    alpha = (1 - confidence) / 2
    return {name: [float(np.quantile(v, alpha)), float(np.quantile(v, 1 - alpha))]
            for name, v in (("precision", precision), ("recall", recall), ("f1", f1))}


def wilson_interval(successes: int, trials: int, confidence: float) -> list[float] | None:
    """Wilson score interval of a proportion (used for false-alarm rates, which are often near 0)."""
    if trials == 0:
        return None
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    low = 0.0 if successes == 0 else float(max(0.0, centre - half))
    high = 1.0 if successes == trials else float(min(1.0, centre + half))
    return [low, high]
