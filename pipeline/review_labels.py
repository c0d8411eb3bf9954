"""Labels back from review: a filled queue or a Label Studio export, checked and added to the project.

A file is checked as ``prepare`` checks labeled files. Posts of the background pool are added by id to
``paths.background_labels`` (their text is never copied into the repository); all other posts go to a new CSV in
``paths.labeled``. Posts labeled already with the same labels are skipped; labeled otherwise, the file is refused.
A refused file changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import files
from pipeline.config import Params
from pipeline.data import check_kinds, labeled_files, read_background_labels, read_labeled_file
from pipeline.errors import UserError
from pipeline.label_studio import read_export
from pipeline.pool import BACKGROUND
from pipeline.text import make_normalizer


def read_queue_csv(path: Path, params: Params) -> pd.DataFrame:
    """A filled queue (or any labeled CSV), checked by ``prepare``'s own reader; rows left unlabeled are skipped."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
        return read_labeled_file(path, params)  # the same one-line error prepare gives
    raw.columns = [c.strip().lstrip("\ufeff") for c in raw.columns]
    present = [label for label in params.labels if label in raw.columns]
    blank = (raw[present].apply(lambda s: s.str.strip()) == "").all(axis=1) if present else pd.Series(False,
                                                                                                       raw.index)
    kept = np.flatnonzero(~blank.to_numpy())
    if len(kept) == 0 and len(raw):
        raise UserError(f"{path}: no row has labels yet: fill the label columns with 0 or 1")
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        raw.iloc[kept].to_csv(copy, index=False)
        try:
            frame = read_labeled_file(copy, params)
        except UserError as err:
            # Name the user's file and record numbers, not the copy's.
            message = str(err).replace(str(copy), str(path))
            message = re.sub(r"record (\d+)", lambda m: f"record {kept[int(m.group(1)) - 1] + 1}", message)
            raise UserError(message) from None
    frame["source"] = [f"{path.name}#{k + 1}" for k in kept]
    frame["pool"] = raw["pool"].iloc[kept].str.strip().to_numpy() if "pool" in raw.columns else ""
    return frame


def background_ids(params: Params) -> set[str]:
    """The ids of the background pool (none when it is absent): its posts come back as labels by id."""
    path = params.root_path(params.paths.background)
    if not path.is_file():
        return set()
    return set(pd.read_csv(path, usecols=["id"], dtype=str, keep_default_na=False)["id"])


def import_labels(path: Path, params: Params, stamp: str | None = None) -> dict[str, int | str]:
    """Check a labeled file and add it to the project: pool posts by id, the others as a new labeled CSV.

    Returns the counts added (``background``, ``labeled``, with ``labeled_file``) and ``unchanged``. Everything is
    checked before anything is written, so a refused file leaves the project as it was.
    """
    frame = read_export(path, params) if path.suffix.lower() == ".json" else read_queue_csv(path, params)
    frame["kind"] = frame["kind"].fillna("").str.strip()
    check_kinds(frame, params)
    pool_ids = background_ids(params)
    named = (frame["pool"] == BACKGROUND).to_numpy()
    known = frame["id"].isin(pool_ids).to_numpy()
    unknown = frame.loc[named & ~known]
    if len(unknown):
        raise UserError(f"{unknown['source'].iloc[0]}: id {unknown['id'].iloc[0]!r} is not in the background "
                        f"pool at {params.paths.background}")
    result: dict[str, int | str] = {"background": 0, "labeled": 0, "unchanged": 0}
    ours = frame[~(known | named)]
    ours = _new_posts(ours, params) if len(ours) else ours
    result["unchanged"] += int(ours.attrs.get("unchanged", 0))
    stamp = stamp or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    target = params.root_path(params.paths.labeled) / f"suggested-{stamp}.csv"
    if len(ours) and target.exists():
        raise UserError(f"{target} exists already")
    theirs = frame[known | named]
    new, existing = _new_background_labels(theirs, params) if len(theirs) else (theirs, None)
    result["unchanged"] += len(theirs) - len(new)
    if len(ours):
        labels = list(params.labels)
        out = ours.assign(kind=ours["kind"].replace("", "reviewed"))[["id", "text", *labels, "kind"]]
        out["id"] = out["id"].where(out["id"] != "", None)
        files.write_csv(out, target)
        result["labeled"], result["labeled_file"] = len(out), str(target)
    if len(new):
        _append_background_labels(new, existing, params)
        result["background"] = len(new)
    return result


def _new_posts(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Posts not yet in the labeled corpus; the same post labeled otherwise there is an error (prepare would stop).
    ``attrs["unchanged"]`` counts the posts already there."""
    normalizer = make_normalizer(params)
    labels = list(params.labels)
    folder = params.root_path(params.paths.labeled)
    existing = pd.concat([read_labeled_file(p, params) for p in labeled_files(folder)], ignore_index=True) \
        if folder.is_dir() and any(folder.glob("*.csv")) else pd.DataFrame(columns=["text", "source", *labels])
    known = dict(zip(normalizer.transform(existing["text"].tolist()),
                     zip(existing["source"], existing[labels].itertuples(index=False, name=None), strict=True),
                     strict=True))
    norms = normalizer.transform(frame["text"].tolist())
    keep = []
    for norm, row in zip(norms, frame.itertuples(index=False), strict=True):
        values = tuple(getattr(row, label) for label in labels)
        if norm in known:
            source, old = known[norm]
            if tuple(old) != values:
                raise UserError(f"{row.source}: the same post is labeled otherwise in {source}")
            keep.append(False)
        else:
            known[norm] = (row.source, values)
            keep.append(True)
    kept = frame[keep].copy()
    kept.attrs["unchanged"] = len(frame) - len(kept)
    return kept


def _new_background_labels(theirs: pd.DataFrame, params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pool posts not labeled yet (once each), and the labels already there. A post labeled twice
    differently in the file, or otherwise than in ``paths.background_labels``, is an error."""
    labels = list(params.labels)
    conflicting = theirs.groupby("id")[labels].nunique().max(axis=1) > 1
    if conflicting.any():
        bad = conflicting[conflicting].index[0]
        raise UserError(f"{theirs.loc[theirs['id'] == bad, 'source'].iloc[-1]}: id {bad!r} is labeled twice, "
                        "differently")
    existing = read_background_labels(params)
    merged = theirs.merge(existing, on="id", how="left", suffixes=("", "_old"))
    again = merged[merged[f"{labels[0]}_old"].notna()]
    differ = again[(again[labels].to_numpy() != again[[f"{x}_old" for x in labels]].to_numpy()).any(axis=1)]
    if len(differ):
        raise UserError(f"{differ['source'].iloc[0]}: id {differ['id'].iloc[0]!r} is already labeled otherwise "
                        f"in {params.paths.background_labels}: correct it there")
    return theirs[~theirs["id"].isin(existing["id"])].drop_duplicates("id"), existing


def _append_background_labels(new: pd.DataFrame, existing: pd.DataFrame, params: Params) -> None:
    """Add labels by id to ``paths.background_labels``, keeping the file's own column order when it has one."""
    labels = list(params.labels)
    new = new.assign(kind=new["kind"].replace("", "background_labeled"))
    target = params.root_path(params.paths.background_labels)
    columns = ["id", *labels, "kind"]
    if target.is_file():
        header = pd.read_csv(target, nrows=0).columns.tolist()
        columns = header if set(header) >= set(columns) else columns
    combined = pd.concat([existing, new[["id", "kind", *labels]]], ignore_index=True)
    files.write_csv(combined.reindex(columns=columns), target)
