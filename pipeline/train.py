"""Stage ``train``: one calibrated linear classifier per label, thresholds chosen on validation, one saved model.

The classifiers are fitted on the features of the training split (labeled posts plus background posts,
which count as negatives for every label, weighted by ``background.weight``). Each label's logistic
regression uses balanced class weights, and its probabilities are calibrated with Platt scaling over
cross-validated folds. The decision threshold of each label is then chosen on the validation split by
``thresholds.rule``. The saved pipeline is normalise -> segment -> features -> classify, so predict runs
exactly what was evaluated.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import joblib
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import Pipeline

from pipeline import io
from pipeline.config import Params, load_params
from pipeline.errors import UserError
from pipeline.features import docs_of
from pipeline.metrics import choose_threshold, ranking_scores
from pipeline.model import CARD_FORMAT, Model, library_versions
from pipeline.prepare import make_normalizer
from pipeline.segment import make_segmenter

log = logging.getLogger(__name__)


def make_classifier(params: Params) -> MultiOutputClassifier:
    cfg = params.train
    linear = LogisticRegression(C=cfg.C, class_weight=cfg.class_weight, solver="liblinear", max_iter=cfg.max_iter,
                                random_state=cfg.seed)
    folds = StratifiedKFold(n_splits=cfg.calibration_folds, shuffle=True, random_state=cfg.seed)
    return MultiOutputClassifier(CalibratedClassifierCV(linear, method=cfg.calibration, cv=folds))


def training_table(labeled: pd.DataFrame, background: pd.DataFrame, split: str, params: Params) -> pd.DataFrame:
    """The split's labeled posts and background posts, with a sample weight column.

    Background posts are negatives for every label, weighted ``background.weight`` (0: left out), except those
    labeled by id (``paths.background_labels``): real posts with their own labels, at full weight.
    """
    ours = labeled[labeled["split"] == split].assign(weight=1.0, origin="labeled")
    theirs = background[background["split"] == split]
    theirs = theirs.assign(weight=np.where(theirs["labeled"], 1.0, params.background.weight), origin="background")
    theirs = theirs[theirs["weight"] > 0]
    columns = ["id", "norm", "tokens", *params.labels, "weight", "origin"]
    return pd.concat([ours[columns], theirs[columns]], ignore_index=True)


def train(params: Params, labeled: pd.DataFrame, background: pd.DataFrame, featurizer) -> tuple[Pipeline, dict]:
    labels = list(params.labels)
    table = training_table(labeled, background, "train", params)
    for label in labels:
        positives = int(table[label].sum())
        if positives < params.train.calibration_folds or positives == len(table):
            raise UserError(f"label {label!r} has {positives} positive training posts: too few to train and calibrate")
    X = featurizer.transform(docs_of(table))
    classifier = make_classifier(params)
    classifier.fit(X, table[labels].to_numpy(), sample_weight=table["weight"].to_numpy())
    pipeline = Pipeline([("normalize", make_normalizer(params)), ("segment", make_segmenter(params)),
                         ("features", featurizer), ("classify", classifier)])
    log.info("trained on %d posts (%d labeled, %d background), %d features", len(table),
             int((table["origin"] == "labeled").sum()), int((table["origin"] == "background").sum()), X.shape[1])
    return pipeline, {"train_posts": int(len(table)), "train_labeled": int((table["origin"] == "labeled").sum()),
                      "train_background": int((table["origin"] == "background").sum()), "features": int(X.shape[1])}


def validate(params: Params, model: Model, labeled: pd.DataFrame, background: pd.DataFrame) -> tuple[dict, dict]:
    """Choose each label's threshold on the validation split; return thresholds and validation scores."""
    # The labeled validation posts and the background posts labeled by id as positives (real text); the other
    # background validation posts bound the false-alarm rate.
    in_val = background["split"] == "val"
    val = pd.concat([labeled[labeled["split"] == "val"], background[in_val & background["labeled"]]])
    # Scored from raw text through the whole saved pipeline: the same path predict takes.
    proba = model.predict_proba(val["text"].tolist())
    bg_val = background[in_val & ~background["labeled"]]
    bg_proba = model.predict_proba(bg_val["text"].tolist()) if len(bg_val) else None
    cfg = params.thresholds
    thresholds, scores = {}, {}
    for j, label in enumerate(params.labels):
        y = val[label].to_numpy()
        choice = choose_threshold(y, proba[:, j], None if bg_proba is None else bg_proba[:, j], cfg.rule,
                                  min_precision=cfg.min_precision, fixed=cfg.fixed,
                                  max_background_far=cfg.max_background_far)
        negatives = y == 0
        fpr = float((proba[negatives, j] >= choice.threshold).mean()) if negatives.any() else None
        thresholds[label] = choice.threshold
        scores[label] = {**asdict(choice), **ranking_scores(y, proba[:, j]), "support": int(y.sum()),
                         "posts": int(len(y)), "labeled_false_positive_rate": fpr,
                         "background_posts": int(len(bg_val))}
        log.info("%s: threshold %.3f, validation precision %.3f recall %.3f F1 %.3f, background false alarms %s",
                 label, choice.threshold, choice.precision, choice.recall, choice.f1,
                 "n/a" if choice.background_far is None else f"{choice.background_far:.4%}")
    return thresholds, scores


def model_card(params: Params, model_sha256: str, model_bytes: int, thresholds: dict, validation: dict,
               training: dict, data_summary: dict) -> dict:
    segmenter = make_segmenter(params)
    return {
        "format": CARD_FORMAT,
        "name": "weibo-signals",
        "labels": list(params.labels),
        "thresholds": thresholds,
        "threshold_rule": asdict(params.thresholds),
        "model": {"file": params.paths.model, "sha256": model_sha256, "bytes": model_bytes},
        "versions": library_versions(),
        "segmenter": {"backend": segmenter.backend, "hmm": segmenter.hmm, "user_words": len(segmenter.user_words)},
        "data": {"labeled_sha256": data_summary["data_sha256"], "labeled_posts": data_summary["posts"],
                 "background": data_summary["background"], **training},
        "params": {section: asdict(getattr(params, section))
                   for section in ("normalize", "segment", "features", "train", "background")},
        "validation": validation,
    }


def main(argv: list[str] | None = None) -> None:
    args = io.stage_args("Train the per-label classifiers and choose their thresholds.", argv)
    params = load_params(args.params)
    folder = params.root_path(params.paths.segmented)
    labeled = io.read_table(folder / "labeled.parquet")
    background = io.read_table(folder / "background.parquet")
    featurizer = joblib.load(params.root_path(params.paths.featurizer))
    pipeline, training = train(params, labeled, background, featurizer)
    thresholds, validation = validate(params, Model(pipeline, {"labels": list(params.labels)}), labeled, background)
    model_path = params.root_path(params.paths.model)
    # The model first, then its card: a reader that sees the new card always finds the new model.
    with io.atomic_path(model_path) as tmp:
        joblib.dump(pipeline, tmp, compress=3)
        digest, size = io.sha256_file(tmp), tmp.stat().st_size
    summary = io.read_json(params.root_path(params.paths.data_summary))
    card = model_card(params, digest, size, thresholds, validation, training, summary)
    io.write_json(card, params.root_path(params.paths.model_card))
    log.info("saved %s (%.1f MB) and its card", params.paths.model, size / 1e6)


if __name__ == "__main__":
    from pipeline.errors import cli_entry
    from pipeline.train import main as stage_main  # the importable module, so pickled classes resolve on load

    raise SystemExit(cli_entry(stage_main)())
