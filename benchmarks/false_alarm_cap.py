"""What the cap on background false alarms costs on the real posts, and what lifting it would buy.

    python benchmarks/false_alarm_cap.py            # police_warning (about 20 s, after `dvc repro`)
    python benchmarks/false_alarm_cap.py candidacy

The committed model scores the background validation and test posts (real Weibo posts, almost all negatives; those
labeled by id as positives left out) and the real development posts (paths.real_dev). For caps of one to ten times
the configured `thresholds.max_background_far`, the threshold is the lowest that flags no more of the background
validation posts than the cap allows, as the threshold rule's cap does; printed for each: the threshold, the false
alarms it gives on the background test posts, and F1, precision, recall and negatives flagged on the real posts.
If the real F1 stays short of a target however far the cap is lifted, no threshold reaches it: only a better
ranking can.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MULTIPLES = (1, 1.5, 2, 3, 4, 6, 10)


def main(argv: list[str]) -> None:
    from pipeline import files
    from pipeline.config import load_params
    from pipeline.metrics import prf
    from pipeline.model_file import load_model

    params = load_params(ROOT / "configs" / "params.yaml")
    label = argv[0] if argv else "police_warning"
    if label not in params.labels:
        sys.exit(f"unknown label {label!r}: one of {', '.join(params.labels)}")
    model = load_model(params.root_path(params.paths.model))
    j = model.labels.index(label)
    prepared = params.root_path(params.paths.prepared)
    real = files.read_table(prepared / "real_dev.parquet")
    background = files.read_table(prepared / "background.parquet")
    background = background[~background["labeled"].astype(bool)]
    if real.empty or background.empty:
        sys.exit("needs the background pool and the real development posts (paths.background, paths.real_dev)")
    score = {split: model.predict_proba(background.loc[background["split"] == split, "text"].tolist())[:, j]
             for split in ("val", "test")}
    real_score, truth = model.predict_proba(real["text"].tolist())[:, j], real[label].to_numpy()
    ranked = np.sort(score["val"])[::-1]
    cap = params.thresholds.max_background_far
    print(f"{label}: {len(score['val'])} background validation posts, {len(score['test'])} background test posts, "
          f"{len(real)} real posts ({int(truth.sum())} positive); committed threshold {model.thresholds[label]:.3f}")
    print("| cap on false alarms | threshold | background test false alarms | real F1 | precision | recall "
          "| real negatives flagged |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for multiple in MULTIPLES:
        allowed = int(np.floor(cap * multiple * len(ranked)))
        threshold = float(np.nextafter(ranked[allowed], np.inf)) if allowed < len(ranked) else 0.0
        flagged = real_score >= threshold
        scores = prf(truth, flagged)
        alarms = int((score["test"] >= threshold).sum())
        print(f"| {cap * multiple:.3%} ({multiple}×) | {threshold:.3f} | {alarms} ({alarms / len(score['test']):.3%}) "
              f"| {scores['f1']:.3f} | {scores['precision']:.2f} | {scores['recall']:.2f} "
              f"| {int((flagged & (truth == 0)).sum())} of {int((truth == 0).sum())} |")


if __name__ == "__main__":
    main(sys.argv[1:])
