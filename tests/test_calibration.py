"""Calibration folds that hold whole writers out (train.calibration_groups: writer), and thresholds chosen on
validation posts scored by the fold that never saw their writer (pipeline/splits.py, pipeline/training.py)."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from pipeline import files, model_file
from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.splits import writer_folds
from tests.conftest import run_stages, tiny_project

WRITERS = ["ann", "bo", "cai", "dan", "eve", "fu"]


def table(n_background: int = 40) -> pd.DataFrame:
    rows = [{"writer": writer, "candidacy": int(i % 3 == 0), "police_warning": int(i % 3 == 1)}
            for writer in WRITERS for i in range(9)]
    rows += [{"writer": "", "candidacy": 0, "police_warning": int(i < 5)} for i in range(n_background)]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def params(tiny_params):
    params = load_params(tiny_params)
    return dataclasses.replace(params, train=dataclasses.replace(params.train, calibration_folds=3,
                                                                 calibration_groups="writer"))


def test_each_writer_is_held_out_by_exactly_one_fold(params):
    frame = table()
    folds, held_out = writer_folds(frame, params)
    assert len(folds) == 3 and sorted(held_out) == WRITERS
    for k, (fit_rows, calibration_rows) in enumerate(folds):
        assert np.intersect1d(fit_rows, calibration_rows).size == 0
        assert len(fit_rows) + len(calibration_rows) == len(frame)
        calibrated = set(frame["writer"].iloc[calibration_rows]) - {""}
        assert calibrated == {w for w, fold in held_out.items() if fold == k}
        assert set(frame["writer"].iloc[fit_rows]).isdisjoint(calibrated)


def test_background_posts_are_spread_over_every_fold_with_their_positives(params):
    frame = table()
    folds, _ = writer_folds(frame, params)
    for _, calibration_rows in folds:
        mine = frame.iloc[calibration_rows]
        background = mine[mine["writer"] == ""]
        assert len(background) in (13, 14) and background["police_warning"].sum() >= 1


def test_fewer_writers_than_folds_is_a_one_line_error(params):
    frame = table()
    frame = frame[frame["writer"].isin(["", "ann", "bo"])]
    with pytest.raises(UserError, match="2 writer.*fewer than train.calibration_folds"):
        writer_folds(frame, params)


def test_one_folds_probabilities_average_to_the_models(tiny_model):
    posts = ["我决定参选本区人大代表，请大家联名推荐", "昨天又被国保约去喝茶了", "周末和老同学去茶馆喝茶", ""]
    folds = len(tiny_model.folds.columns[0])
    mean = np.mean([tiny_model.fold_proba(posts, k) for k in range(folds)], axis=0)
    np.testing.assert_allclose(mean, tiny_model.predict_proba(posts), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="not one of every label's folds"):
        tiny_model.fold_proba(posts, folds)


# train.validation -> the labeled splits fitted on, and those the thresholds are chosen on
SPLITS = {"held_out": ({"train"}, {"val"}), "cross_fitted": ({"train", "val"}, {"train", "val"})}


@pytest.fixture(scope="module", params=sorted(SPLITS))
def writers_project(request, tmp_path_factory):
    """The tiny project with its posts spread over four writers, trained with writer folds, held out or
    cross-fitted."""
    folder = tmp_path_factory.mktemp("writers")
    params_path = tiny_project(folder, train__calibration_groups="writer", train__validation=request.param)
    labeled = folder / "data" / "labeled" / "tiny.csv"
    frame = pd.read_csv(labeled)
    frame["writer"] = [WRITERS[i % 4] for i in range(len(frame))]  # a writer column: four writers in one file
    frame.to_csv(labeled, index=False)
    run_stages(params_path, ("prepare", "segment", "featurize", "train"))
    params = load_params(params_path)
    card = files.read_json(params.root_path(params.paths.model_card))
    return params, card, model_file.load_model(params.root_path(params.paths.model))


def test_the_card_says_which_fold_held_out_each_writer(writers_project):
    _, card, model = writers_project
    assert sorted(card["data"]["writer_folds"]) == WRITERS[:4]
    assert set(card["data"]["writer_folds"].values()) <= {0, 1, 2}
    assert len(set(card["data"]["writer_folds"].values())) == 3


def test_the_classifiers_are_fitted_on_the_splits_train_validation_names(writers_project):
    from pipeline.data import segmented_tables

    params, card, _ = writers_project
    labeled, background = segmented_tables(params)
    fitted, _ = SPLITS[params.train.validation]
    assert card["data"]["train_labeled"] == labeled["split"].isin(fitted).sum()
    assert card["data"]["train_background"] == (background["split"] == "train").sum()


def test_cross_fitting_without_writer_folds_is_a_one_line_error(tmp_path):
    params_path = tiny_project(tmp_path, train__validation="cross_fitted")  # calibration_groups: post
    with pytest.raises(UserError, match="cross_fitted needs train.calibration_groups writer"):
        load_params(params_path)


def test_validation_posts_are_scored_by_the_fold_that_never_saw_their_writer(writers_project):
    from pipeline.data import segmented_tables
    from pipeline.training import validate

    params, card, model = writers_project
    held_out = card["data"]["writer_folds"]
    labeled, background = segmented_tables(params)
    scored = {}
    fold_proba = model.fold_proba

    def recorded(texts, fold):
        scored[fold] = list(texts)
        return fold_proba(texts, fold)

    model.fold_proba = recorded
    thresholds, _ = validate(params, model, labeled, background, held_out)
    _, chosen_on = SPLITS[params.train.validation]
    val = labeled[labeled["split"].isin(chosen_on)]
    assert val["split"].nunique() == len(chosen_on)
    for fold in set(held_out.values()):
        writers = [w for w, k in held_out.items() if k == fold]
        assert sorted(scored.get(fold, [])) == sorted(val.loc[val["writer"].isin(writers), "text"])
    assert thresholds == model.thresholds  # what train chose
