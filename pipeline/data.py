"""The labeled, challenge, background and real posts read from disk: checked, normalised, de-duplicated.

Every labeled row is accounted for: kept, dropped with a logged and counted reason (empty text, exact duplicate
with the same labels), or rejected with an error naming the file and record.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import files
from pipeline.config import Params
from pipeline.data_summary import per_writer, summarize
from pipeline.errors import UserError
from pipeline.splits import near_duplicate_groups, split_labeled, unit_hash
from pipeline.text import Normalizer, make_normalizer

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def labeled_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"labeled data folder not found: {folder}")
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".csv" and not p.name.startswith("."))
    if not found:
        raise UserError(f"no labeled CSV files in {folder}")
    return found


def label_values(frame: pd.DataFrame, path: Path, labels) -> dict[str, pd.Series]:
    """Each label column as 0/1 integers; any other value is a UserError naming the file, record and column."""
    values = {}
    for label in labels:
        column = frame[label].str.strip()
        bad = ~column.isin(["0", "1"])
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(f"{path}: record {row + 1}: column {label!r} must be 0 or 1, "
                            f"got {frame[label].iloc[row]!r}")
        values[label] = column.astype(int)
    return values


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    """A CSV file that is not ours to fix (the background pool, its labels by id, the real posts), read as
    strings; an unreadable one is a UserError naming ``what`` it is."""
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError) as err:
        detail = str(err).strip().splitlines()[-1] if str(err).strip() else ""
        raise UserError(f"{what} {path}: cannot read it as UTF-8 CSV ({err.__class__.__name__}: {detail})") from None


def read_labeled_file(path: Path, params: Params) -> pd.DataFrame:
    """Read one labeled CSV and check its schema and label values; raise UserError naming the problem."""
    text_col, kind_col = params.data.text_column, params.data.kind_column
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not valid UTF-8 (byte {err.start}); save the file as UTF-8") from None
    except pd.errors.EmptyDataError:
        raise UserError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, OSError) as err:
        raise UserError(f"{path}: cannot parse as CSV: {str(err).strip().splitlines()[-1]}") from None
    frame.columns = [c.strip().lstrip("\ufeff") for c in frame.columns]
    missing = [c for c in (text_col, *params.labels) if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(frame.columns)})")
    if frame.empty:
        raise UserError(f"{path}: has a header but no rows")
    out = pd.DataFrame({
        "id": frame["id"].str.strip() if "id" in frame.columns else "",
        "source": [f"{path.name}#{i}" for i in range(1, len(frame) + 1)],
        # Who wrote the post: a `writer` column, else the file's name (each file is one writer's work).
        "writer": frame["writer"].str.strip() if "writer" in frame.columns else path.stem,
        "text": frame[text_col],
        "kind": frame[kind_col].str.strip() if kind_col in frame.columns else "unspecified",
    })
    for label, values in label_values(frame, path, params.labels).items():
        out[label] = values
    too_long = out["text"].str.len() > params.data.max_chars
    if too_long.any():
        row = int(np.flatnonzero(too_long.to_numpy())[0])
        raise UserError(f"{path}: record {row + 1}: text longer than data.max_chars={params.data.max_chars}")
    return out


def check_kinds(frame: pd.DataFrame, params: Params) -> None:
    """A kind named in ``data.kind_rules`` (by prefix) must carry exactly the rule's label values."""
    for prefix, required in params.data.kind_rules.items():
        unknown = [label for label in required if label not in params.labels]
        if unknown:
            raise UserError(f"data.kind_rules.{prefix} names unknown label {unknown[0]!r}")
        rows = frame[frame["kind"].str.startswith(prefix)]
        for label, value in required.items():
            wrong = rows[rows[label] != value]
            if not wrong.empty:
                first = wrong.iloc[0]
                raise UserError(f"{first['source']}: kind {first['kind']!r} must have {label}={value} "
                                f"(data.kind_rules), got {first[label]}")


def drop_unusable(frame: pd.DataFrame, labels: tuple[str, ...]) -> tuple[pd.DataFrame, dict[str, int], dict[str, str]]:
    """Drop empty posts and exact duplicates (same normalised text, same labels); conflicting duplicates fail.

    Of the copies of a post, the one in the file read first is kept, whichever file is newer: the third value maps
    each dropped copy's source to the kept one's, so a new file that takes an older file's post shows."""
    empty = frame["norm"].str.strip() == ""
    for source in frame.loc[empty, "source"]:
        log.warning("%s: empty post after normalisation, dropped", source)
    frame = frame[~empty]
    dup_mask = frame.duplicated("norm", keep=False)
    conflicts = frame[dup_mask].groupby("norm")[list(labels)].nunique().max(axis=1) > 1
    if conflicts.any():
        norm = conflicts[conflicts].index[0]
        sources = frame.loc[frame["norm"] == norm, "source"].tolist()
        raise UserError(f"the same post has different labels in {' and '.join(sources)}")
    duplicated = frame.duplicated("norm", keep="first")
    kept = frame.groupby("norm")["source"].transform("first")
    kept_copy = dict(zip(frame.loc[duplicated, "source"], kept[duplicated], strict=True))
    for source, original in kept_copy.items():
        log.warning("%s: exact duplicate of %s, dropped", source, original)
    counts = {"empty": int(empty.sum()), "exact_duplicate": int(duplicated.sum())}
    return frame[~duplicated].copy(), counts, kept_copy


def assign_ids(frame: pd.DataFrame) -> pd.Series:
    """Given ids are kept (and must be unique); missing ones are a stable hash of the text."""
    generated = frame["text"].map(lambda t: "p" + hashlib.sha1(t.encode("utf-8")).hexdigest()[:11])
    ids = frame["id"].where(frame["id"] != "", generated)
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise UserError(f"duplicate id {ids[dup].iloc[0]!r} in {', '.join(frame.loc[dup, 'source'].head(2))}")
    return ids


def read_posts(csv_files: list[Path], params: Params,
               normalizer: Normalizer) -> tuple[pd.DataFrame, int, dict[str, int], dict[str, str]]:
    """Labeled CSV files read, checked, normalised and de-duplicated, with ids; the rows read, the counts of rows
    dropped, and each exact duplicate dropped with the copy kept (see :func:`drop_unusable`)."""
    frame = pd.concat([read_labeled_file(path, params) for path in csv_files], ignore_index=True)
    raw_rows = len(frame)
    check_kinds(frame, params)
    frame["norm"] = normalizer.transform(frame["text"])
    frame, dropped, kept_copy = drop_unusable(frame, params.labels)
    frame["id"] = assign_ids(frame)
    return frame.reset_index(drop=True), raw_rows, dropped, kept_copy


def read_challenge(params: Params, normalizer: Normalizer, labeled: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The independent challenge set: posts never trained on. A post that (near-)duplicates a labeled post
    would not test generalisation, so it is left out and counted."""
    folder = params.root_path(params.paths.challenge)
    csv_files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    columns = ["id", "source", "writer", "text", "norm", "kind", *params.labels]
    if not csv_files:
        return pd.DataFrame(columns=columns), {"present": False, "posts": 0}
    frame, raw_rows, dropped, kept_copy = read_posts(csv_files, params, normalizer)
    groups = near_duplicate_groups(labeled["norm"].tolist() + frame["norm"].tolist(),
                                   params.data.near_duplicate_threshold)
    overlap = np.isin(groups[len(labeled):], groups[: len(labeled)])
    for source in frame.loc[overlap, "source"]:
        log.warning("challenge %s: near-duplicate of a labeled post, left out", source)
    frame = frame[~overlap]
    info = {"present": True, "files": [p.name for p in csv_files], "rows_read": raw_rows,
            "rows_dropped": {**dropped, "near_duplicate_of_labeled": int(overlap.sum())}, "exact_duplicates": kept_copy,
            "posts": int(len(frame)),
            "labels": {label: int(frame[label].sum()) for label in params.labels},
            "writers": per_writer(frame, params.labels)}
    return frame[columns].reset_index(drop=True), info


def read_background(params: Params, normalizer: Normalizer) -> tuple[pd.DataFrame, dict]:
    """The background posts with a deterministic split, or an empty table when absent or switched off."""
    path = params.root_path(params.paths.background)
    empty = pd.DataFrame({"id": pd.Series(dtype=str), "text": pd.Series(dtype=str), "kind": pd.Series(dtype=str),
                          **{label: pd.Series(dtype=int) for label in params.labels},
                          "labeled": pd.Series(dtype=bool), "norm": pd.Series(dtype=str),
                          "split": pd.Series(dtype=str)})
    if not params.background.use:
        return empty, {"present": False, "reason": "switched off (background.use: false)"}
    if not path.is_file():
        log.warning("background corpus not found at %s: training and evaluating without it", path)
        return empty, {"present": False, "reason": f"not found at {params.paths.background}"}
    frame = _read_csv(path, "background corpus")
    if "text" not in frame.columns:
        raise UserError(f"background corpus {path}: missing column 'text'")
    if "id" not in frame.columns:
        frame["id"] = [f"bg-{i}" for i in range(1, len(frame) + 1)]
    frame = frame[["id", "text"]]
    frame, labeled_by_id = _with_labels_by_id(frame, params)
    rank = frame["id"].map(lambda i: unit_hash(f"{params.background.seed}:{i}"))
    if params.background.max_rows is not None and len(frame) > params.background.max_rows:
        frame = frame.loc[rank.nsmallest(params.background.max_rows).index]
        rank = rank.loc[frame.index]
    cut_train = params.background.train_share
    cut_val = cut_train + params.background.val_share
    # A second hash decides the split, so max_rows does not change which split a kept post is in.
    position = frame["id"].map(lambda i: unit_hash(f"split:{params.background.seed}:{i}"))
    frame = frame.assign(norm=normalizer.transform(files.progress(frame["text"], "normalise background")),
                         split=np.where(position < cut_train, "train", np.where(position < cut_val, "val", "test")))
    info = {"present": True, "path": params.paths.background, "sha256": files.sha256_file(path),
            "rows": int(len(frame)), "per_split": frame["split"].value_counts().reindex(SPLITS, fill_value=0).to_dict(),
            "labeled_by_id": labeled_by_id}
    return frame.reset_index(drop=True), info


def read_background_labels(params: Params) -> pd.DataFrame:
    """The labels by id of real positives in the background pool (``paths.background_labels``): id, kind and one
    0/1 column per label. An absent file is no labels; a malformed one is a UserError naming the record."""
    path = params.root_path(params.paths.background_labels)
    columns = ["id", "kind", *params.labels]
    if not path.is_file():
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("id", "kind") else int) for c in columns})
    frame = _read_csv(path, "background labels")
    missing = [c for c in ("id", *params.labels) if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(frame.columns)})")
    if "text" in frame.columns:
        raise UserError(f"{path}: holds a text column; background posts are labeled by id only, never copied")
    frame = frame.assign(**label_values(frame, path, params.labels))
    frame["id"] = frame["id"].str.strip()
    duplicated = frame["id"].duplicated()
    if duplicated.any():
        raise UserError(f"{path}: id {frame.loc[duplicated, 'id'].iloc[0]!r} is labeled twice")
    frame["kind"] = frame["kind"].str.strip() if "kind" in frame.columns else "background_labeled"
    return frame[columns]


def _with_labels_by_id(frame: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, dict]:
    """The background posts with one column per label (0 unless labeled by id), a kind and a ``labeled`` flag."""
    labels = read_background_labels(params)
    unknown = labels.loc[~labels["id"].isin(frame["id"]), "id"]
    if len(unknown):
        raise UserError(f"{params.paths.background_labels}: id {unknown.iloc[0]!r} is not in the background corpus "
                        f"({len(unknown)} unknown ids): the labels belong to another version of the pool")
    merged = frame.merge(labels, on="id", how="left")
    merged["labeled"] = merged["kind"].notna()
    merged["kind"] = merged["kind"].fillna("background")
    for label in params.labels:
        merged[label] = merged[label].fillna(0).astype(int)
    info = {"posts": int(merged["labeled"].sum()),
            **{label: int(merged[label].sum()) for label in params.labels}}
    return merged, info


def read_real_dev(params: Params, normalizer: Normalizer) -> tuple[pd.DataFrame, dict]:
    """Real posts labeled to the guide by a third party (``paths.real_dev``), for evaluation only: id, text, norm,
    kind, one column per label and ``ambiguous`` (rows whose notes say the label depends on missing context)."""
    path = params.root_path(params.paths.real_dev)
    columns = ["id", "text", "norm", "kind", *params.labels, "ambiguous"]
    if not path.is_file():
        log.warning("real development posts not found at %s: the real-post figures are not measured", path)
        return pd.DataFrame(columns=columns), {"present": False, "reason": f"not found at {params.paths.real_dev}"}
    frame = _read_csv(path, "real development posts")
    missing = [c for c in ("id", "text", *params.labels) if c not in frame.columns]
    if missing:
        raise UserError(f"real development posts {path}: missing column {missing[0]!r}")
    frame = frame.assign(**label_values(frame, path, params.labels))
    frame["kind"] = frame["kind"] if "kind" in frame.columns else "unspecified"
    notes = frame["notes"] if "notes" in frame.columns else pd.Series("", index=frame.index)
    frame["ambiguous"] = notes.str.contains("AMBIGUOUS", regex=False)
    frame["norm"] = normalizer.transform(frame["text"])
    info = {"present": True, "path": params.paths.real_dev, "sha256": files.sha256_file(path), "posts": int(len(frame)),
            "labels": {label: int(frame[label].sum()) for label in params.labels},
            "ambiguous": int(frame["ambiguous"].sum())}
    return frame[columns].reset_index(drop=True), info


def prepare(params: Params) -> tuple[dict[str, pd.DataFrame], dict]:
    """The prepared tables (labeled, background, challenge) and the data summary."""
    csv_files = labeled_files(params.root_path(params.paths.labeled))
    normalizer = make_normalizer(params)
    frame, raw_rows, dropped, kept_copy = read_posts(csv_files, params, normalizer)
    frame["group"] = near_duplicate_groups(frame["norm"].tolist(), params.data.near_duplicate_threshold)
    frame["split"] = split_labeled(frame, params)
    background, background_info = read_background(params, normalizer)
    challenge, challenge_info = read_challenge(params, normalizer, frame)
    real_dev, real_dev_info = read_real_dev(params, normalizer)
    columns = ["id", "source", "writer", "text", "norm", "kind", *params.labels, "group", "split"]
    summary = summarize(frame, params, csv_files, dropped, raw_rows, background_info)
    summary["exact_duplicates"] = kept_copy
    summary["challenge"] = challenge_info
    summary["real_dev"] = real_dev_info
    return {"labeled": frame[columns], "background": background, "challenge": challenge,
            "real_dev": real_dev}, summary


def segmented_tables(params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The labeled and background posts with their tokens, as the ``segment`` stage wrote them."""
    folder = params.root_path(params.paths.segmented)
    return files.read_table(folder / "labeled.parquet"), files.read_table(folder / "background.parquet")
