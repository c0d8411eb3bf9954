"""Does a report stay a report inside a long post? Each `police_warning` norm power, measured on long posts.

    python benchmarks/long_posts.py              # norm powers 1, 0.5, 0.25 and 0 (about two minutes each)
    python benchmarks/long_posts.py 1 0.5        # only these

Real posts that report a warning are often long and about other things: the event is one clause among many.
For each norm power (``features.norm_power`` of ``police_warning``; ``candidacy`` as configured) the model is
trained as ``dvc repro`` trains it, and scores:

* each test-split post alone (positives: recall; negatives: false-positive rate);
* each test-split post set at a random place among k held-out real background posts (k = 10: a post of about
  200 characters; k = 50: about 1,000), as one post: recall on the positives, false-positive rate on the negatives;
* 400 posts each made of 50 held-out background posts joined: the false-alarm rate of long real text.

The test split and the background posts are never trained on; the same seed gives every power the same posts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

LABEL = "police_warning"


def among(posts: list[str], context: list[str], k: int, rng) -> list[str]:
    """Each post inserted at a random place among k background posts drawn at random, joined by spaces."""
    out = []
    for post in posts:
        parts = list(rng.choice(context, size=k, replace=False))
        parts.insert(int(rng.integers(k + 1)), post)
        out.append(" ".join(parts))
    return out


def measure(power: float, base, cache: dict) -> dict:
    import model_choice

    from pipeline.features import docs_of, make_featurizer, training_posts

    params = model_choice.with_overrides(base, {"features.norm_power": {**base.features.norm_power, LABEL: power}})
    tables = model_choice.segmented(params, cache)
    labeled, background = tables["labeled"], tables["background"]
    featurizer = make_featurizer(params).fit(docs_of(training_posts(labeled, background)))
    model = model_choice.fit(params, labeled, background, featurizer)
    j, threshold = model.labels.index(LABEL), model.thresholds[LABEL]

    def flagged(texts: list[str]) -> float:
        return round(float((model.predict_proba(texts)[:, j] >= threshold).mean()), 3)

    test = labeled[labeled["split"] == "test"]
    positives = test.loc[test[LABEL] == 1, "text"].tolist()
    negatives = test.loc[test[LABEL] == 0, "text"].tolist()
    context = background.loc[(background["split"] == "test") & ~background["labeled"], "text"].tolist()
    rng = np.random.default_rng(0)
    result = {"power": power, "recall_alone": flagged(positives), "fpr_alone": flagged(negatives)}
    for k in (10, 50):
        result[f"recall_among_{k}"] = flagged(among(positives, context, k, rng))
        result[f"fpr_among_{k}"] = flagged(among(negatives, context, k, rng))
    result["far_50_joined"] = flagged([" ".join(rng.choice(context, size=50, replace=False)) for _ in range(400)])
    return result


def main(argv: list[str]) -> None:
    from pipeline.config import load_params

    base = load_params(ROOT / "configs" / "params.yaml")
    if base.features.norm_floor_quantile is None:
        raise SystemExit("features.norm_floor_quantile is null: a norm power needs the floor")
    powers = [float(a) for a in argv] or [1.0, 0.5, 0.25, 0.0]
    print(f"{LABEL}, test-split posts alone and set among k held-out background posts (share flagged)")
    print("| norm power | recall alone | recall among 10 | recall among 50 | false positives alone | among 10 | "
          "among 50 | 50 background posts joined |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    cache: dict = {}
    for power in powers:
        r = measure(power, base, cache)
        print(f"| {power:g} | {r['recall_alone']:.3f} | {r['recall_among_10']:.3f} | {r['recall_among_50']:.3f} | "
              f"{r['fpr_alone']:.3f} | {r['fpr_among_10']:.3f} | {r['fpr_among_50']:.3f} | {r['far_50_joined']:.3f} |",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
