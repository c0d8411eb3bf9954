"""Threshold choice and intervals (pipeline/metrics.py)."""

import numpy as np
import pytest

from pipeline.metrics import bootstrap_prf, prf, wilson_interval
from pipeline.thresholds import choose_threshold

Y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P = np.array([0.95, 0.9, 0.7, 0.4, 0.8, 0.3, 0.2, 0.1, 0.05, 0.02])


def test_max_f1_picks_the_best_cut_between_two_scores():
    choice = choose_threshold(Y, P, None, "max_f1")
    assert 0.4 > choice.threshold > 0.3  # flags the four positives and one negative: F1 0.889
    assert choice.f1 == pytest.approx(8 / 9)


def test_min_precision_picks_the_lowest_threshold_reaching_it():
    choice = choose_threshold(Y, P, None, "min_precision", min_precision=1.0)
    assert choice.precision == 1.0 and choice.recall == 0.5
    assert 0.9 > choice.threshold > 0.8


def test_background_false_alarm_cap_excludes_low_thresholds():
    background = np.array([0.35, 0.36, 0.37, 0.38, 0.39] + [0.0] * 95)
    choice = choose_threshold(Y, P, background, "max_f1", max_background_far=0.01)
    assert choice.background_far <= 0.01
    assert choice.threshold > 0.39


def test_within_tolerance_takes_the_highest_or_the_middle_of_the_near_best_thresholds():
    # F1 by threshold (flag >= t): 0.95 -> 0.40, 0.90 -> 0.67, 0.80 -> 0.57, 0.70 -> 0.75, 0.40 -> 0.89, 0.30 -> 0.80,
    # 0.20 -> 0.73, 0.10 -> 0.67
    highest = choose_threshold(Y, P, None, "max_f1", f1_tolerance=0.2, within_tolerance="highest")
    middle = choose_threshold(Y, P, None, "max_f1", f1_tolerance=0.2, within_tolerance="middle")
    assert 0.7 > highest.threshold > 0.4  # of 0.2, 0.3, 0.4, 0.7 (F1 within 0.2 of 0.89): the highest
    assert 0.3 > middle.threshold > 0.2  # ... and the lower middle one
    assert choose_threshold(Y, P, None, "max_f1", within_tolerance="middle") == choose_threshold(Y, P, None, "max_f1")


def test_lowest_within_tolerance_takes_the_most_recall_false_alarms_allow():
    lowest = choose_threshold(Y, P, None, "max_f1", f1_tolerance=0.2, within_tolerance="lowest")
    assert 0.2 > lowest.threshold > 0.1  # of 0.2, 0.3, 0.4, 0.7: the lowest
    background = np.array([0.25, 0.25] + [0.0] * 98)  # flagging at 0.2 or below would flag 2% of them
    capped = choose_threshold(Y, P, background, "max_f1", max_background_far=0.01, f1_tolerance=0.2,
                              within_tolerance="lowest")
    assert 0.3 > capped.threshold > 0.25 and capped.background_far == 0.0


def test_a_middle_threshold_moves_less_when_the_validation_posts_are_resampled():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.35
    score = np.clip(np.where(y, rng.beta(5, 2, 3000), rng.beta(2, 5, 3000)), 0, 1)
    picked = {"highest": [], "middle": []}
    for _ in range(60):
        i = rng.integers(0, len(y), len(y))
        for rule in picked:
            picked[rule].append(choose_threshold(y[i], score[i], None, "max_f1", f1_tolerance=0.01,
                                                 within_tolerance=rule).threshold)
    assert np.std(picked["middle"]) < np.std(picked["highest"])


def test_fixed_threshold_is_kept():
    assert choose_threshold(Y, P, None, "fixed", fixed=0.5).threshold == 0.5


def test_prf_handles_no_flags():
    assert prf(np.array([1, 0]), np.array([False, False])) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_bootstrap_interval_contains_the_estimate():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    decision = np.where(rng.random(300) < 0.8, y, 1 - y).astype(bool)
    point = prf(y, decision)
    intervals = bootstrap_prf(y, decision, 500, 0.95, seed=1)
    for name in ("precision", "recall", "f1"):
        low, high = intervals[name]
        assert low < point[name] < high
        assert high - low < 0.2


def test_wilson_interval_of_zero_is_not_degenerate():
    low, high = wilson_interval(0, 1000, 0.95)
    assert low == 0.0 and 0 < high < 0.005


def test_ranking_scores_are_none_when_every_post_is_positive_or_negative():
    from pipeline.metrics import ranking_scores

    for y in ([1, 1, 1], [0, 0], []):
        scores = ranking_scores(np.array(y), np.array([0.9, 0.8, 0.7][: len(y)]))
        assert scores["pr_auc"] is None and scores["roc_auc"] is None
