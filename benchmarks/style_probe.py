"""How much of the corpus can be told from real Weibo by style alone, and does the label model lean on it?

    python benchmarks/style_probe.py          # after `make repro` (reads data/prepared/)

Every positive in data/labeled/ is written by this project and every background post is real Weibo, so whatever
tells our writing from real posts (punctuation, final 。, quotation marks, length, register) can pass for evidence
of a label. A probe classifier (logistic regression on the model's own features) is trained to tell labeled posts
from background posts, under the previous normalisation (punctuation, emoji codes and links kept) and the current
one. Reported per setting: the probe's cross-validated ROC-AUC (1.0: style gives the corpus away; 0.5: it does
not), its strongest features, and how many of them are also among each label model's top 50 positive features.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = {
    "previous (punctuation, emoji, links kept)": {"punctuation": "keep", "emoji": "text", "urls": "token",
                                                   "aliases": False},
    "current (configs/params.yaml)": {},
}
TOP = 50


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    from pipeline import files
    from pipeline.config import load_params
    from pipeline.features import docs_of, make_featurizer, make_norm, training_posts
    from pipeline.recipe import make_classifier
    from pipeline.segmenter import make_segmenter
    from pipeline.text import make_normalizer, readable

    base = load_params(ROOT / "configs" / "params.yaml")
    prepared = base.root_path(base.paths.prepared)
    labeled = files.read_table(prepared / "labeled.parquet")
    background = files.read_table(prepared / "background.parquet")
    if background.empty:
        raise SystemExit("the background corpus is absent: nothing to tell the corpus from")
    background = background[~background["labeled"]]
    rng = np.random.default_rng(0)
    sample = background.iloc[rng.choice(len(background), size=min(len(background), 3 * len(labeled)), replace=False)]
    for name, overrides in SETTINGS.items():
        params = dataclasses.replace(base, normalize=dataclasses.replace(base.normalize, **overrides))
        normalizer, segmenter = make_normalizer(params), make_segmenter(params)
        lab, bg = (frame.assign(norm=normalizer.transform(frame["text"])) for frame in (labeled, sample))
        lab, bg = (frame.assign(tokens=[list(d.tokens) for d in segmenter.transform(frame["norm"].tolist())])
                   for frame in (lab, bg))
        featurizer = make_featurizer(params).fit(docs_of(training_posts(lab, bg.assign(split="train"))))
        X = featurizer.transform(docs_of(lab) + docs_of(bg))
        norm = make_norm(params, params.labels[0])  # the probe normalises rows as the label models do
        X = X if norm == "passthrough" else norm.fit_transform(X)
        is_corpus = np.r_[np.ones(len(lab)), np.zeros(len(bg))]
        probe = LogisticRegression(C=4.0, class_weight="balanced", solver="liblinear")
        auc = roc_auc_score(is_corpus, cross_val_predict(probe, X, is_corpus, cv=5, method="predict_proba")[:, 1])
        names = np.array([readable(n.split("__", 1)[1]) for n in featurizer.get_feature_names_out()], dtype=object)
        weights = probe.fit(X, is_corpus).coef_.ravel()
        style = set(np.argsort(-weights)[:TOP])
        print(f"\n{name}: probe ROC-AUC corpus vs real posts {auc:.3f}")
        print("  strongest corpus features:", " ".join(repr(str(n)) for n in names[np.argsort(-weights)[:20]]))
        # The label models, trained as the train stage trains them (without calibration, for speed).
        train = lab[lab["split"] == "train"]
        X_train = featurizer.transform(docs_of(train))
        for j, label in enumerate(params.labels):
            classifier = make_classifier(params).estimators[j]
            classifier.set_params(linear=classifier.named_steps["linear"].estimator)
            coef = classifier.fit(X_train, train[label]).named_steps["linear"].coef_.ravel()
            top = np.argsort(-coef)[:TOP]
            shared = [str(names[i]) for i in top if i in style]
            print(f"  {label}: {len(shared)} of its top {TOP} features are among the probe's top {TOP}: {shared}")


if __name__ == "__main__":
    main()
