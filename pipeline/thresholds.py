"""Choosing each label's decision threshold on the validation posts, by the rule of ``thresholds:``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve

from pipeline.metrics import prf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThresholdChoice:
    threshold: float
    precision: float
    recall: float
    f1: float
    background_far: float | None


def choose_threshold(y: np.ndarray, score: np.ndarray, background: np.ndarray | None, rule: str,
                     min_precision: float = 0.9, fixed: float = 0.5,
                     max_background_far: float | None = None, f1_tolerance: float = 0.0,
                     within_tolerance: str = "highest") -> ThresholdChoice:
    """Pick the decision threshold (flag when score >= threshold) on validation scores by the configured rule.

    Only thresholds whose false-alarm rate on the background posts stays within ``max_background_far`` are
    eligible. With ``max_f1``, of the thresholds whose F1 is within ``f1_tolerance`` of the best, the highest is
    taken (``within_tolerance``: highest, fewest flags), the middle one (middle: the median of them, which a
    resampled validation split moves far less than the single best, whose place on a flat curve is chance) or the
    lowest (lowest: most recall; with ``max_background_far`` set, the most that false alarms allow).
    The threshold is placed halfway between the chosen score and the next lower score seen, so
    that it does not sit exactly on one validation post.
    """
    y = np.asarray(y, dtype=int)
    score = np.asarray(score, dtype=float)
    background = None if background is None or len(background) == 0 else np.sort(np.asarray(background, float))

    def far(t: float) -> float | None:
        if background is None:
            return None
        return float((len(background) - np.searchsorted(background, t, side="left")) / len(background))

    if rule == "fixed":
        return _choice(y, score, fixed, far(fixed))
    precision, recall, candidates = precision_recall_curve(y, score)
    precision, recall = precision[:-1], recall[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    eligible = np.ones(len(candidates), dtype=bool)
    if background is not None and max_background_far is not None:
        eligible = np.array([far(t) <= max_background_far for t in candidates])
    if not eligible.any():
        # Even the highest validation score flags too many background posts: flag only above all of them.
        top = float(max(score.max(initial=0.0), background.max() if background is not None else 0.0))
        threshold = min(1.0, np.nextafter(top, np.inf))
        log.warning("no threshold meets max_background_far=%s; using %.4f", max_background_far, threshold)
        return _choice(y, score, threshold, far(threshold))
    if rule == "max_f1":
        best = np.flatnonzero(eligible & (f1 >= f1[eligible].max() - f1_tolerance))  # ascending thresholds
        if within_tolerance == "highest":
            pick = best[-1]  # among (nearly) equal F1, the highest threshold: fewer flags
        elif within_tolerance == "middle":
            pick = best[(len(best) - 1) // 2]
        elif within_tolerance == "lowest":
            pick = best[0]
        else:
            raise ValueError(f"unknown within_tolerance {within_tolerance!r}")
    elif rule == "min_precision":
        reaching = np.flatnonzero(eligible & (precision >= min_precision))
        if len(reaching):
            pick = reaching[0]
        else:
            pick = np.flatnonzero(eligible)[np.argmax(precision[eligible])]
            log.warning("no threshold reaches precision %.2f on validation; using the most precise one", min_precision)
    else:
        raise ValueError(f"unknown threshold rule {rule!r}")
    chosen = float(candidates[pick])
    seen = np.concatenate([score, background if background is not None else []])
    below = seen[seen < chosen]
    threshold = (chosen + float(below.max())) / 2 if len(below) else chosen
    return _choice(y, score, threshold, far(threshold))


def _choice(y: np.ndarray, score: np.ndarray, threshold: float, background_far: float | None) -> ThresholdChoice:
    scores = prf(y, score >= threshold)
    return ThresholdChoice(threshold=float(threshold), background_far=background_far, **scores)
