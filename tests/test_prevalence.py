"""Prevalence with an interval: the interval covers the true share of synthetic mixes at about the stated rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import prevalence as pv
from tests.conftest import ROOT

PREVALENCES = (0.01, 0.05, 0.20)
MIX = 2000  # posts in each synthetic input
REPEATS = 200  # mixes per prevalence and label


@pytest.fixture(scope="module")
def held_out(real_model) -> tuple[np.ndarray, np.ndarray]:
    """The real model's probabilities and the true labels of the labeled validation and test posts."""
    path = ROOT / "data" / "prepared" / "labeled.parquet"
    if not path.exists():
        pytest.fail("data/prepared/labeled.parquet is missing: run `make repro` first")
    frame = pd.read_parquet(path, columns=["text", "split", *real_model.labels])
    frame = frame[frame["split"].isin(["val", "test"])]
    return real_model.predict_proba(frame["text"].tolist()), frame[real_model.labels].to_numpy()


def test_interval_covers_the_true_share_of_synthetic_mixes(real_model, held_out):
    """The held-out posts stand for the population of posts. Each repeat measures the error rates on a random half
    of them (as validation does) and draws an input of 2,000 posts from the population with a known share of
    positives. The 95% interval should cover that share in about 95% of the inputs; the test asks for at least 90%
    in every setting (it prints the rates)."""
    proba, truth = held_out
    rng = np.random.default_rng(20261129)
    coverage = {}
    for j, label in enumerate(real_model.labels):
        flagged_all = proba[:, j] >= real_model.thresholds[label]
        for share in PREVALENCES:
            covered = []
            for repeat in range(REPEATS):
                half = rng.random(len(truth)) < 0.5
                rates = pv.ErrorRates.from_labels(truth[half, j], flagged_all[half])
                positives = np.flatnonzero(truth[:, j] == 1)
                negatives = np.flatnonzero(truth[:, j] == 0)
                n_pos = round(share * MIX)
                mix = np.r_[rng.choice(positives, n_pos), rng.choice(negatives, MIX - n_pos)]
                estimate = pv.acc_interval(int(flagged_all[mix].sum()), MIX, rates, resamples=1000, seed=repeat)
                covered.append(estimate.low <= share <= estimate.high)
            coverage[(label, share)] = float(np.mean(covered))
    print("\ncoverage of the 95% interval over", REPEATS, "mixes of", MIX, "posts:")
    for (label, share), rate in coverage.items():
        print(f"  {label} at {share:.0%}: {rate:.0%}")
    assert min(coverage.values()) >= 0.90, coverage


def test_summary_lines_give_an_interval_per_label_whatever_the_chunking(real_model, held_out):
    proba, _ = held_out
    whole = pv.summary_lines(real_model, [proba])
    chunked = pv.summary_lines(real_model, [proba[:100], proba[100:101], proba[101:]])
    assert whole == chunked
    assert sum("adjusted count:" in line and "–" in line for line in whole) == len(real_model.labels)
    assert all(f"  {label}: " in "\n".join(whole) for label in real_model.labels)
    assert "quapy: ACC" in "\n".join(whole) and "EMQ" in "\n".join(whole)


def test_threshold_override_withholds_the_adjusted_count(real_model, held_out):
    proba, truth = held_out
    label = real_model.labels[0]
    lines = pv.summary_lines(real_model, [proba], thresholds={label: 0.9})
    assert any("threshold overridden" in line for line in lines)
    validation = pv.Validation(proba, truth)
    assert any("PACC" in line for line in pv.summary_lines(real_model, [proba], validation=validation))
    # Inputs rich in hard negatives (keyword-search hits) take the labeled negatives' false-alarm rate.
    lines = pv.summary_lines(real_model, [proba], false_alarms="labeled", quapy=False)
    assert sum("(labeled validation)" in line for line in lines) == len(real_model.labels)
    assert not any("quapy" in line for line in lines)


def test_adjusted_count_agrees_with_its_formula_and_quapy():
    rng = np.random.default_rng(1)
    for flag_rate, tpr, fpr in rng.uniform(0, 1, (200, 3)):
        got = float(pv.adjusted(flag_rate, tpr, fpr))
        if tpr <= fpr:
            assert np.isnan(got)
        else:
            assert got == pytest.approx(min(1.0, max(0.0, (flag_rate - fpr) / (tpr - fpr))))
    rates = pv.ErrorRates(tp=90, positives=100, fp=30, negatives=1000)
    tally = pv.Tally(np.array([0.5]))
    tally.add(np.r_[np.full(120, 0.9), np.full(880, 0.1)][:, None])
    ours = float(pv.adjusted(0.12, 0.9, 0.03))
    assert pv.quapy_estimates(0, tally, rates, None, None)["ACC"] == pytest.approx(ours, abs=1e-6)


def test_interval_widens_with_fewer_validation_posts():
    many = pv.acc_interval(500, 10_000, pv.ErrorRates(900, 1000, 100, 10_000))
    few = pv.acc_interval(500, 10_000, pv.ErrorRates(9, 10, 1, 100))
    assert many.low <= many.share <= many.high and few.low <= few.share <= few.high
    assert few.high - few.low > 3 * (many.high - many.low)
    zero_far = pv.acc_interval(0, 10_000, pv.ErrorRates(90, 100, 0, 20_000))
    assert zero_far.share == 0.0 and zero_far.low == 0.0 and zero_far.high < 0.01


def test_tally_sample_is_uniform_and_bounded():
    tally = pv.Tally(np.array([0.5]), keep=1000)
    for start in range(0, 50_000, 700):
        tally.add(np.arange(start, min(start + 700, 50_000), dtype=float)[:, None] / 50_000)
    sample = tally.sample[:, 0]
    assert len(sample) == 1000 and tally.posts == 50_000
    assert abs(sample.mean() - 0.5) < 0.05  # drawn from the whole input, not its first chunks
