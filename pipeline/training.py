"""Training: one calibrated linear classifier per label, the export checked, thresholds chosen on validation.

The classifiers are fitted on the features of the training split (labeled posts plus background posts,
which count as negatives for every label, weighted by ``background.weight``), and with ``train.validation``
cross_fitted on the labeled validation posts too. Each label's logistic regression uses balanced class weights,
and its probabilities are calibrated with Platt scaling over cross-validated folds (:mod:`pipeline.recipe`), which
with ``train.calibration_groups`` writer hold whole writers out (:func:`pipeline.splits.writer_folds`). The fitted
pipeline is then exported as plain numbers (:mod:`pipeline.model_file`) and the export checked against it on every
labeled post. The decision threshold of each label is chosen by ``thresholds.rule`` with the exported model, which
is what ``evaluate`` and ``predict`` load: on the validation split (held_out) or on every labeled post fitted on
(cross_fitted). With writer folds, each of those posts is scored by the fold that never saw its writer, as the
model scores a new writer's posts; the background validation posts, never fitted on, bound the false alarms.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pipeline import model_file
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.features import docs_of
from pipeline.metrics import ranking_scores
from pipeline.model import Model
from pipeline.recipe import build_pipeline, make_classifier
from pipeline.splits import writer_folds
from pipeline.thresholds import choose_threshold

log = logging.getLogger(__name__)

# The exported model's probabilities may differ from the fitted pipeline's by rounding only.
EXPORT_TOLERANCE = 1e-9


def training_table(labeled: pd.DataFrame, background: pd.DataFrame, params: Params,
                   splits: tuple[str, ...] | None = None) -> pd.DataFrame:
    """The labeled posts of ``splits`` (default: ``train.validation``'s, :meth:`TrainConfig.fitted_splits`) and the
    background posts of the training split, with a sample weight column.

    Background posts are negatives for every label, weighted ``background.weight`` (0: left out), except those
    labeled by id (``paths.background_labels``): real posts with their own labels, at full weight.
    """
    splits = params.train.fitted_splits() if splits is None else splits
    ours = labeled[labeled["split"].isin(splits)].assign(weight=1.0, origin="labeled")
    theirs = background[background["split"] == "train"]
    theirs = theirs.assign(weight=np.where(theirs["labeled"], 1.0, params.background.weight), origin="background",
                           writer="")
    theirs = theirs[theirs["weight"] > 0]
    columns = ["id", "writer", "norm", "tokens", *params.labels, "weight", "origin"]
    parts = [ours[columns], theirs[columns]]
    if params.background.embedded_posts and len(theirs):
        parts.append(embedded(ours, theirs[~theirs["labeled"]], params)[columns])
    return pd.concat(parts, ignore_index=True)


def embedded(ours: pd.DataFrame, theirs: pd.DataFrame, params: Params) -> pd.DataFrame:
    """``background.embedded_posts`` labeled posts, drawn at random, each set before or after a random real post
    of the same split, keeping its labels: a report stays a report inside a long, real post about other things.
    The two texts are joined by a space, so no character n-gram spans them."""
    n, seed = params.background.embedded_posts, params.background.seed
    rng = np.random.default_rng(seed)
    posts = ours.iloc[rng.integers(len(ours), size=n)].reset_index(drop=True)
    contexts = theirs.iloc[rng.integers(len(theirs), size=n)].reset_index(drop=True)
    before = rng.random(n) < 0.5
    pairs = zip(posts["norm"], posts["tokens"], contexts["norm"], contexts["tokens"], before, strict=True)
    norm, tokens = [], []
    for post, post_tokens, context, context_tokens, first in pairs:
        norm.append(f"{context} {post}" if first else f"{post} {context}")
        tokens.append([*context_tokens, *post_tokens] if first else [*post_tokens, *context_tokens])
    return posts.assign(id=[f"embedded-{i}" for i in range(n)], norm=norm, tokens=tokens, origin="embedded")


def train(params: Params, labeled: pd.DataFrame, background: pd.DataFrame, featurizer) -> tuple[Pipeline, dict]:
    """The fitted pipeline and what to record of its training; with ``train.calibration_groups`` writer, that
    includes ``writer_folds``: the calibrated fold that never saw each writer (for :func:`validate`)."""
    labels = list(params.labels)
    table = training_table(labeled, background, params)
    for label in labels:
        positives = int(table[label].sum())
        if positives < params.train.calibration_folds or positives == len(table):
            raise UserError(f"label {label!r} has {positives} positive training posts: too few to train and calibrate")
    folds, held_out = writer_folds(table, params) if params.train.calibration_groups == "writer" else (None, None)
    X = featurizer.transform(docs_of(table))
    classifier = make_classifier(params, folds)
    classifier.fit(X, table[labels].to_numpy(), sample_weight=table["weight"].to_numpy())
    pipeline = build_pipeline(params, featurizer=featurizer, classifier=classifier)
    origin = table["origin"].value_counts()
    training = {"train_posts": int(len(table)), "train_labeled": int(origin.get("labeled", 0)),
                "train_background": int(origin.get("background", 0)), "features": int(X.shape[1])}
    log.info("trained on %d posts (%d labeled, %d background), %d features", *training.values())
    if held_out is not None:
        training["writer_folds"] = held_out
    return pipeline, training


def check_export(pipeline: Pipeline, model: Model, texts: list[str]) -> float:
    """The largest difference between the exported model's probabilities and the fitted pipeline's on ``texts``;
    more than :data:`EXPORT_TOLERANCE` is a bug in the export, and training stops."""
    expected = np.column_stack([p[:, 1] for p in pipeline.predict_proba(texts)])
    difference = float(np.abs(model.predict_proba(texts) - expected).max(initial=0.0))
    if not difference <= EXPORT_TOLERANCE:
        raise RuntimeError(f"the exported model differs from the fitted pipeline by {difference:.3g} on "
                           f"{len(texts)} posts (tolerance {EXPORT_TOLERANCE:g}): not saved")
    return difference


def validation_scores(params: Params, model: Model, labeled: pd.DataFrame, background: pd.DataFrame,
                      writer_folds: dict[str, int] | None = None
                      ) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray | None]:
    """The posts thresholds are chosen on and the model's scores for them: the labeled posts of
    :meth:`TrainConfig.threshold_splits` and the background validation posts labeled by id as positives (real
    text), with their probabilities; and the other background validation posts, which bound the false-alarm
    rate, with theirs (None without background posts).

    With ``writer_folds`` (writer -> the calibrated fold that never saw them: :func:`train`), a labeled post is
    scored by that fold alone, as the model scores a writer it never saw; the rest by the whole model."""
    if params.train.validation == "cross_fitted" and not writer_folds:
        raise ValueError("cross-fitted thresholds need the writer folds of training: the posts were fitted on")
    in_val = background["split"] == "val"
    val = pd.concat([labeled[labeled["split"].isin(params.train.threshold_splits())],
                     background[in_val & background["labeled"]]])
    # Scored from raw text through the whole saved pipeline: the same path predict takes; each post once, by the
    # fold that never saw its writer, or else (no writer folds, a background post) by the whole model.
    texts = val["text"].to_numpy(dtype=object)
    fold = val["writer"].map(writer_folds or {}).to_numpy()
    whole = pd.isna(fold)
    proba = np.zeros((len(val), len(params.labels)))
    if whole.any():
        proba[whole] = model.predict_proba(texts[whole].tolist())
    for k in np.unique(fold[~whole]).astype(int):
        mine = fold == k
        proba[mine] = model.fold_proba(texts[mine].tolist(), int(k))
    bg_val = background[in_val & ~background["labeled"]]
    bg_proba = model.predict_proba(bg_val["text"].tolist()) if len(bg_val) else None
    return val, proba, bg_val, bg_proba


def validate(params: Params, model: Model, labeled: pd.DataFrame, background: pd.DataFrame,
             writer_folds: dict[str, int] | None = None) -> tuple[dict, dict]:
    """Choose each label's threshold on the validation posts (:func:`validation_scores`); return thresholds and
    validation scores."""
    val, proba, bg_val, bg_proba = validation_scores(params, model, labeled, background, writer_folds)
    cfg = params.thresholds
    thresholds, scores = {}, {}
    for j, label in enumerate(params.labels):
        y = val[label].to_numpy()
        choice = choose_threshold(y, proba[:, j], None if bg_proba is None else bg_proba[:, j], cfg.rule,
                                  min_precision=cfg.min_precision, fixed=cfg.fixed,
                                  max_background_far=cfg.max_background_far,
                                  f1_tolerance=cfg.f1_tolerance.get(label, 0.0),
                                  within_tolerance=cfg.within(label))
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


def model_card(params: Params, model: Model, thresholds: dict, validation: dict, training: dict,
               data_summary: dict) -> dict:
    """The card, without the model file's hash (known once the file is written)."""
    segmenter = model.segmenter
    return {
        "format": model_file.CARD_FORMAT,
        "name": "weibo-signals",
        "labels": list(params.labels),
        "thresholds": thresholds,
        "threshold_rule": asdict(params.thresholds),
        "versions": model_file.library_versions(),
        "segmenter": {"backend": segmenter.backend, "hmm": segmenter.hmm, "user_words": len(segmenter.user_words)},
        "data": {"labeled_sha256": data_summary["data_sha256"], "labeled_posts": data_summary["posts"],
                 "background": data_summary["background"], **training},
        "params": {section: asdict(getattr(params, section))
                   for section in ("normalize", "segment", "features", "train", "background")},
        "validation": validation,
    }
