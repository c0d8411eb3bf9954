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
    """Deterministic train/val/test split, stratified on the label combination, groups kept on one side, and stable:
    adding posts moves almost none of the others between splits.

    Each group of near-duplicates is placed by a hash of its smallest post id (ids are stable: given, or a hash of
    the text). Within each label combination the groups are ranked by that hash; the first ``split.test_size`` of
    the stratum's posts go to test, the next ``split.val_size`` to validation, the rest to training. New posts take
    their own places in the ranking, so only the few old groups at a boundary move, where a shuffled split would
    deal out every post again: a round of new data is then measured on nearly the same test posts as before.
    """
    n_groups = frame["group"].nunique()
    if n_groups < 3:
        raise UserError(f"too few labeled posts to split ({len(frame)}): add data or change split sizes")
    seed = params.split.seed
    strata = pd.Series(label_combinations(frame, params), index=frame.index)
    groups = pd.DataFrame({"group": frame["group"], "id": frame["id"].astype(str), "stratum": strata})
    groups = groups.sort_values("id").groupby("group", sort=False).agg(id=("id", "first"), stratum=("stratum", "first"),
                                                                      posts=("id", "size"))
    groups["rank"] = groups["id"].map(lambda i: unit_hash(f"{seed}:{i}"))
    place = pd.Series("train", index=groups.index, dtype=object)
    for _, stratum in groups.sort_values("rank").groupby("stratum", sort=False):
        before = stratum["posts"].cumsum() - stratum["posts"]  # the stratum's posts ranked before this group
        share = before / stratum["posts"].sum()
        place[stratum.index[(share < params.split.test_size).to_numpy()]] = "test"
        in_val = (share >= params.split.test_size) & (share < params.split.test_size + params.split.val_size)
        place[stratum.index[in_val.to_numpy()]] = "val"
    return frame["group"].map(place).rename(None)


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
