"""The one recipe of the model, as the scikit-learn pipeline that training fits:
normalise -> segment -> word and character n-gram (and concept) TF-IDF -> per label, the label's row normalisation
and a calibrated logistic regression.

Only ``train`` (and the benchmarks that retrain) build it; scoring reads the fitted numbers from the model file
(:mod:`pipeline.model_file`) without scikit-learn.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline

from pipeline.config import Params
from pipeline.features import make_featurizer, make_norm
from pipeline.segmenter import make_segmenter
from pipeline.text import make_normalizer


class Labelwise(BaseEstimator):
    """One estimator per label (column of ``Y``), all fitted on the same features. Unlike scikit-learn's
    ``MultiOutputClassifier``, which clones one estimator, each label may be set up its own way; ``predict_proba``
    gives the same list of per-label probability arrays."""

    def __init__(self, estimators: list):
        self.estimators = estimators

    def fit(self, X, Y, sample_weight=None):
        Y = np.asarray(Y)
        if Y.ndim != 2 or Y.shape[1] != len(self.estimators):
            raise ValueError(f"Y must have one column per estimator ({len(self.estimators)})")
        self.estimators_ = [clone(estimator).fit(X, Y[:, j], linear__sample_weight=sample_weight)
                            for j, estimator in enumerate(self.estimators)]
        return self

    def predict_proba(self, X) -> list[np.ndarray]:
        return [estimator.predict_proba(X) for estimator in self.estimators_]


def make_linear(params: Params) -> LogisticRegression:
    """The configured logistic regression (``train:`` C, class weights, iterations, seed), before calibration."""
    cfg = params.train
    return LogisticRegression(C=cfg.C, class_weight=cfg.class_weight, solver="liblinear", max_iter=cfg.max_iter,
                              random_state=cfg.seed)


def make_classifier(params: Params, folds: list[tuple[np.ndarray, np.ndarray]] | None = None) -> Labelwise:
    """Per label, its row normalisation (``features.norm_floor_quantile``, ``features.norm_power``), then a logistic
    regression with Platt scaling over cross-validated folds (``train:``): ``folds`` as (train, calibration) row
    indices, the same for every label, or else stratified folds of posts."""
    cfg = params.train
    linear = make_linear(params)
    if folds is None:
        folds = StratifiedKFold(n_splits=cfg.calibration_folds, shuffle=True, random_state=cfg.seed)
    calibrated = CalibratedClassifierCV(linear, method=cfg.calibration, cv=folds)
    return Labelwise([Pipeline([("norm", make_norm(params, label)), ("linear", calibrated)])
                      for label in params.labels])


def build_pipeline(params: Params, featurizer=None, classifier=None) -> Pipeline:
    """The model's pipeline; a featurizer or classifier already fitted may be passed in."""
    return Pipeline([("normalize", make_normalizer(params)), ("segment", make_segmenter(params)),
                     ("features", featurizer if featurizer is not None else make_featurizer(params)),
                     ("classify", classifier if classifier is not None else make_classifier(params))])
