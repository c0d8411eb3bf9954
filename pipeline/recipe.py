"""The one recipe of the model, as the scikit-learn pipeline that training fits:
normalise -> segment -> word and character n-gram TF-IDF -> one calibrated logistic regression per label.

Only ``train`` (and the benchmarks that retrain) build it; scoring reads the fitted numbers from the model file
(:mod:`pipeline.model_file`) without scikit-learn.
"""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import Pipeline

from pipeline.config import Params
from pipeline.features import make_featurizer
from pipeline.segmenter import make_segmenter
from pipeline.text import make_normalizer


def make_classifier(params: Params) -> MultiOutputClassifier:
    """Per label, a logistic regression with Platt scaling over cross-validated folds (``train:``)."""
    cfg = params.train
    linear = LogisticRegression(C=cfg.C, class_weight=cfg.class_weight, solver="liblinear", max_iter=cfg.max_iter,
                                random_state=cfg.seed)
    folds = StratifiedKFold(n_splits=cfg.calibration_folds, shuffle=True, random_state=cfg.seed)
    return MultiOutputClassifier(CalibratedClassifierCV(linear, method=cfg.calibration, cv=folds))


def build_pipeline(params: Params, featurizer=None, classifier=None) -> Pipeline:
    """The model's pipeline; a featurizer or classifier already fitted may be passed in."""
    return Pipeline([("normalize", make_normalizer(params)), ("segment", make_segmenter(params)),
                     ("features", featurizer if featurizer is not None else make_featurizer(params)),
                     ("classify", classifier if classifier is not None else make_classifier(params))])
