"""The exported model (pipeline/model_file.py, pipeline/model.py) gives the fitted scikit-learn pipeline's
probabilities, and train refuses an export that does not."""

import dataclasses

import joblib
import numpy as np
import pytest

from pipeline import files, model_file
from pipeline.config import load_params
from pipeline.training import EXPORT_TOLERANCE, check_export, train
from tests.conftest import run_stages, tiny_project

POSTS = ["我决定参选本区人大代表，请大家联名推荐", "昨天又被国保约去喝茶了", "周末和老同学去茶馆喝茶", "", "被",
         "今天天氣很好", "警方提醒：谨防电信诈骗 http://t.cn/abc", "//@某人: 转发微博", None, "x" * 5000]


def fitted(params_path):
    """The tiny project's fitted scikit-learn pipeline, its export, and every labeled post's text."""
    params = load_params(params_path)
    folder = params.root_path(params.paths.segmented)
    labeled = files.read_table(folder / "labeled.parquet")
    background = files.read_table(folder / "background.parquet")
    pipeline, _ = train(params, labeled, background, joblib.load(params.root_path(params.paths.featurizer)))
    return pipeline, model_file.export(pipeline, {"labels": list(params.labels)}), labeled["text"].tolist()


def scikit_learns(pipeline, texts):
    return np.column_stack([p[:, 1] for p in pipeline.predict_proba(texts)])


@pytest.fixture(scope="module")
def tiny(tiny_params):
    return fitted(tiny_params)


def test_the_export_gives_the_pipelines_probabilities_on_every_labeled_post(tiny):
    pipeline, model, texts = tiny
    texts = texts + POSTS[:-2]  # scikit-learn's pipeline has no cap on long posts and no None handling
    difference = np.abs(model.predict_proba(texts) - scikit_learns(pipeline, texts))
    assert difference.max() <= EXPORT_TOLERANCE
    assert check_export(pipeline, model, texts) <= EXPORT_TOLERANCE


def test_an_export_that_differs_is_refused(tiny):
    pipeline, model, texts = tiny
    broken = dataclasses.replace(model.folds, weights=model.folds.weights.copy())
    broken.weights[:, :] *= 1.001  # every feature's weight off by a tenth of a percent
    model = dataclasses.replace(model, folds=broken)
    with pytest.raises(RuntimeError, match="differs from the fitted pipeline"):
        check_export(pipeline, model, texts)


def test_the_saved_file_scores_exactly_as_the_export(tiny, tmp_path):
    _, model, texts = tiny
    model.card["thresholds"] = dict.fromkeys(model.labels, 0.5)
    digest, size = model_file.save(model, tmp_path / "model.npz")
    card = model_file.sealed({**model.card, "format": model_file.CARD_FORMAT, "model": {"sha256": digest}})
    files.write_json(card, tmp_path / "model_card.json")
    loaded = model_file.load_model(tmp_path / "model.npz")
    np.testing.assert_array_equal(loaded.predict_proba(texts + POSTS), model.predict_proba(texts + POSTS))
    assert size == (tmp_path / "model.npz").stat().st_size


def test_without_a_norm_floor_each_block_is_normalised_as_scikit_learn_does(tmp_path):
    params_path = tiny_project(tmp_path, features__norm_floor_quantile=None, features__norm_power={})
    run_stages(params_path, ("prepare", "segment", "featurize"))
    pipeline, model, texts = fitted(params_path)
    assert model.vectorizer.floor is None
    assert check_export(pipeline, model, texts + POSTS[:-2]) <= EXPORT_TOLERANCE


def test_a_norm_power_per_label_is_exported_as_fitted(tmp_path):
    params_path = tiny_project(tmp_path, features__norm_power={"police_warning": 0.5})
    run_stages(params_path, ("prepare", "segment", "featurize"))
    pipeline, model, texts = fitted(params_path)
    assert model.folds.powers == [1.0, 0.5]
    long_posts = [" ".join(texts[i:i + 8]) for i in range(0, len(texts), 8)]  # far above the floor
    assert check_export(pipeline, model, texts + long_posts + POSTS[:-2]) <= EXPORT_TOLERANCE


def test_explanations_name_the_features_that_raised_the_score(tiny_model):
    label = "police_warning"
    proba, why = tiny_model.score(["昨天又被国保约去喝茶了"], explain=3)
    names = why[label][0].split("|")
    assert 1 <= len(names) <= 3 and len(set(names)) == len(names)
    weights = dict(zip(tiny_model.feature_names(), tiny_model.coefficients(label), strict=True))
    assert all(weights[name] > 0 for name in names)
    assert proba.shape == (1, 2)


def test_sublinear_weighting_and_the_model_settings_are_what_params_say(tiny_params, tiny_model):
    params = load_params(tiny_params)
    settings = tiny_model.vectorizer.settings()
    assert settings["word_ngrams"] == list(params.features.word_ngrams)
    assert settings["char_ngrams"] == list(params.features.char_ngrams)
    assert settings["sublinear_tf"] == params.features.sublinear_tf
    assert tiny_model.segmenter.backend == params.segment.backend
    assert tiny_model.normalizer.punctuation == params.normalize.punctuation
