"""How much does a threshold rule's choice move with the validation posts it is chosen on?

    python benchmarks/threshold_stability.py              # 200 resamples (about a minute, after `dvc repro`)
    python benchmarks/threshold_stability.py 50           # fewer

The committed model's validation scores (each labeled validation post scored by the calibrated fold that never
saw its writer, as `dvc repro` scores them) are resampled with replacement, the background validation posts
kept, and each rule below picks each label's threshold on every resample, under the configured cap on the
background false-alarm rate. A rule whose pick moves a lot is choosing by chance: on a flat F1 curve the single
best threshold is wherever the validation posts' noise puts it, and it moves whenever a round of data reshuffles
them. Printed per label and rule: the pick on the actual validation posts, and the mean, standard deviation and
5th–95th percentiles over the resamples.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> (f1_tolerance, within_tolerance, max_background_far; None: as configured)
RULES = {"best F1": (0.0, "highest", None), "highest within 0.005": (0.005, "highest", None),
         "middle within 0.005": (0.005, "middle", None), "middle within 0.01": (0.01, "middle", None),
         "lowest within 0.005, false alarms at most 0.05%": (0.005, "lowest", 0.0005)}


def main(argv: list[str]) -> None:
    from pipeline import files
    from pipeline.config import load_params
    from pipeline.data import segmented_tables
    from pipeline.model_file import load_model
    from pipeline.thresholds import choose_threshold
    from pipeline.training import validation_scores

    resamples = int(argv[0]) if argv else 200
    params = load_params(ROOT / "configs" / "params.yaml")
    model = load_model(params.root_path(params.paths.model))
    card = files.read_json(params.root_path(params.paths.model_card))
    labeled, background = segmented_tables(params)
    val, proba, _, bg_proba = validation_scores(params, model, labeled, background, card["data"].get("writer_folds"))
    cap = params.thresholds.max_background_far
    print(f"{len(val)} validation posts, {0 if bg_proba is None else len(bg_proba)} background validation posts, "
          f"{resamples} resamples; committed: {params.thresholds.within_tolerance} within "
          f"{params.thresholds.f1_tolerance or 0} of the best F1")
    print("| label | rule | on the validation posts | mean | sd | 5%–95% |")
    print("| --- | --- | --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(val), len(val)) for _ in range(resamples)]
    for j, label in enumerate(params.labels):
        y, score = val[label].to_numpy(), proba[:, j]
        background = None if bg_proba is None else bg_proba[:, j]
        for name, (tolerance, within, rule_cap) in RULES.items():
            picks = [choose_threshold(y[rows], score[rows], background, "max_f1",
                                      max_background_far=cap if rule_cap is None else rule_cap,
                                      f1_tolerance=tolerance, within_tolerance=within).threshold
                     for rows in [np.arange(len(val)), *draws]]
            actual, picks = picks[0], np.array(picks[1:])
            low, high = np.quantile(picks, [0.05, 0.95])
            print(f"| {label} | {name} | {actual:.3f} | {picks.mean():.3f} | {picks.std():.3f} | "
                  f"{low:.3f}–{high:.3f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
