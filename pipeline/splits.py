"""Grouping near-duplicate posts and splitting them into train, validation and test, deterministically."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from pipeline.config import Params
from pipeline.errors import UserError


def near_duplicate_groups(texts: list[str], threshold: float) -> np.ndarray:
    """Group ids such that posts whose character 3-gram sets have Jaccard >= threshold share a group."""
    from sklearn.feature_extraction.text import CountVectorizer

    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=int)
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(3, 3), binary=True, lowercase=False)
    try:
        shingles = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # every post shorter than three characters
        return np.arange(n)
    sizes = np.asarray(shingles.sum(axis=1)).ravel()
    overlap = (shingles @ shingles.T).tocoo()
    union = sizes[overlap.row] + sizes[overlap.col] - overlap.data
    similar = (overlap.row != overlap.col) & (overlap.data >= threshold * np.maximum(union, 1))
    from scipy.sparse import coo_matrix

    graph = coo_matrix((np.ones(similar.sum()), (overlap.row[similar], overlap.col[similar])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def label_combinations(frame: pd.DataFrame, params: Params) -> np.ndarray:
    """Each row's labels as one string ("01": candidacy 0, police_warning 1), to stratify on."""
    return frame[list(params.labels)].astype(str).agg("".join, axis=1).to_numpy()


def split_labeled(frame: pd.DataFrame, params: Params) -> pd.Series:
    """Deterministic train/val/test split, stratified on the label combination, groups kept on one side."""
    strata = label_combinations(frame, params)
    groups = frame["group"].to_numpy()
    split = np.full(len(frame), "train", dtype=object)
    n_test = max(2, round(1 / params.split.test_size))
    test_idx = _one_fold(strata, groups, n_test, params.split.seed)
    split[test_idx] = "test"
    rest = np.flatnonzero(split == "train")
    n_val = max(2, round((1 - params.split.test_size) / params.split.val_size))
    val_idx = _one_fold(strata[rest], groups[rest], n_val, params.split.seed + 1)
    split[rest[val_idx]] = "val"
    return pd.Series(split, index=frame.index)


def _one_fold(strata: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> np.ndarray:
    if len(np.unique(groups)) < n_splits:
        raise UserError(f"too few labeled posts to split ({len(groups)}): add data or change split sizes")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    _, held_out = next(splitter.split(np.zeros(len(strata)), strata, groups))
    return held_out


def unit_hash(key: str) -> float:
    """A number in [0, 1) fixed by the key: a split that does not move when other posts come or go."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def writer_folds(table: pd.DataFrame, params: Params) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, int]]:
    """Folds of the training table for Platt scaling that hold whole writers out (``train.calibration_groups``:
    writer), as (train, calibration) row indices, and the fold that holds out each writer.

    Rows with a writer (labeled posts) are grouped by writer and stratified on the label combination; rows without
    one (background posts) are stratified on it alone, so every fold calibrates on real posts too.
    """
    n_splits, seed = params.train.calibration_folds, params.train.seed
    strata = label_combinations(table, params)
    writers = table["writer"].fillna("").to_numpy(dtype=object)
    written = np.flatnonzero(writers != "")
    names = np.unique(writers[written])
    if len(names) < n_splits:
        raise UserError(f"train.calibration_groups is writer, but the training posts have {len(names)} writer(s), "
                        f"fewer than train.calibration_folds ({n_splits}): add writers or set it to post")
    fold = np.full(len(table), -1)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(written, strata[written], writers[written])):
        fold[written[held]] = k
    rest = np.flatnonzero(writers == "")
    if len(rest):
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        for k, (_, held) in enumerate(splitter.split(rest, strata[rest])):
            fold[rest[held]] = k
    folds = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_splits)]
    held_out = {str(writer): int(k) for writer, k in zip(writers[written], fold[written])}
    return folds, held_out
