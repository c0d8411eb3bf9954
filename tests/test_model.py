"""The Model wrapper (pipeline/model.py): its fast linear scoring must give scikit-learn's numbers exactly."""

import copy

import numpy as np
import pytest

POSTS = ["我决定参选本区人大代表，请大家联名推荐", "昨天又被国保约去喝茶了", "周末和老同学去茶馆喝茶", "", "被",
         "今天天氣很好", "警方提醒：谨防电信诈骗 http://t.cn/abc", "//@某人: 转发微博"]


def _scikit_learns(model, X):
    return np.column_stack([p[:, 1] for p in model.pipeline.named_steps["classify"].predict_proba(X)])


@pytest.mark.parametrize("which", ["tiny_model", "real_model"])
def test_stacked_linear_scores_equal_scikit_learns_bit_for_bit(which, request):
    model = request.getfixturevalue(which)
    assert model._linear() is not None  # the trained models are sigmoid-calibrated linear models
    X = model.features(POSTS * 3)
    np.testing.assert_array_equal(model.proba_from_features(X), _scikit_learns(model, X))


def test_other_calibrations_fall_back_to_scikit_learn(tiny_model):
    model = copy.deepcopy(tiny_model)
    model._coef.clear()
    model.pipeline.named_steps["classify"].estimators_[0].calibrated_classifiers_[0].method = "isotonic"
    assert model._linear() is None
    X = model.features(POSTS)
    np.testing.assert_array_equal(model.proba_from_features(X), _scikit_learns(model, X))
