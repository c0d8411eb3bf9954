"""The data card's figures: what the labeled posts are, who wrote them and how (``reports/data_summary.json``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.lexicon import keyword_scores, read_lexicon
from pipeline.simplified import has_traditional

SPLITS = ("train", "val", "test")

_FINAL_PUNCTUATION = "。.!！?？~～…"


def per_writer(frame: pd.DataFrame, labels) -> dict:
    """Posts and positives per label for each writer."""
    return {writer: {"posts": int(len(part)), **{label: int(part[label].sum()) for label in labels}}
            for writer, part in frame.groupby("writer", sort=True)}


def register(texts: pd.Series) -> dict:
    """How the posts are written: length, final punctuation and informal marks (the style a model must not use)."""
    stripped = texts.str.rstrip()
    last = stripped.str[-1].fillna("")
    informal = texts.str.contains(r"[!！]{2,}|[。.]{2,}|[~～]|…", regex=True) | ~last.isin(list(_FINAL_PUNCTUATION))
    return {"posts": int(len(texts)), "under_60_chars": round(float((texts.str.len() < 60).mean()), 4),
            "ending_with_full_stop": round(float((last == "。").mean()), 4),
            "without_final_punctuation": round(float((~last.isin(list(_FINAL_PUNCTUATION))).mean()), 4),
            "informal_marks": round(float(informal.mean()), 4),
            "repost_chains": round(float(texts.str.contains("//@", regex=False).mean()), 4),
            "headlines": round(float(texts.str.contains("【", regex=False).mean()), 4)}


def trigger_free(frame: pd.DataFrame, params: Params) -> dict:
    """Per label, how many positives contain none of the keyword baseline's terms: evidence beyond stock words."""
    lexicon = read_lexicon(params.root_path(params.paths.lexicon), params.labels)
    out = {}
    for label in params.labels:
        positives = frame.loc[frame[label] == 1, "text"].tolist()
        free = int((keyword_scores(positives, lexicon[label]) == 0).sum())
        out[label] = {"positives": len(positives), "trigger_free": free,
                      "share": round(free / len(positives), 4) if positives else None}
    return out


def data_hash(csv_files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in csv_files:
        digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def summarize(frame: pd.DataFrame, params: Params, csv_files: list[Path], dropped: dict, raw_rows: int,
              background: dict) -> dict:
    labels = list(params.labels)
    lengths = frame["text"].str.len()
    by_kind = (frame.groupby("kind")[labels].agg(["count", "sum"]) if len(frame) else pd.DataFrame())
    kinds = {kind: {"posts": int(by_kind.loc[kind, (labels[0], "count")]),
                    **{label: int(by_kind.loc[kind, (label, "sum")]) for label in labels}}
             for kind in by_kind.index}
    per_split = {split: {"posts": int((frame["split"] == split).sum()),
                         **{label: int(frame.loc[frame["split"] == split, label].sum()) for label in labels}}
                 for split in SPLITS}
    straddling = int((frame.groupby("group")["split"].nunique() > 1).sum())
    all_labels = frame[labels].sum(axis=1) == len(labels)
    hard_negative = frame["kind"].str.startswith("hard_neg")
    return {
        "files": {p.name: int(n) for p, n in zip(csv_files, frame["source"].str.split("#").str[0].value_counts()
                                                 .reindex([p.name for p in csv_files], fill_value=0), strict=True)},
        "data_sha256": data_hash(csv_files),
        "rows_read": raw_rows,
        "rows_dropped": dropped,
        "posts": int(len(frame)),
        "labels": {label: int(frame[label].sum()) for label in labels},
        "all_labels_positive": int(all_labels.sum()),
        "no_label_positive": int((frame[labels].sum(axis=1) == 0).sum()),
        "hard_negatives": int(hard_negative.sum()),
        "ordinary": int(frame["kind"].str.startswith("ordinary").sum()),
        "kinds": kinds,
        "splits": per_split,
        "length_chars": {"min": int(lengths.min()), "p10": int(lengths.quantile(0.1)),
                         "median": int(lengths.median()), "p90": int(lengths.quantile(0.9)),
                         "max": int(lengths.max()), "mean": round(float(lengths.mean()), 1)},
        "traditional_share": round(float(frame["text"].map(has_traditional).mean()), 4),
        "near_duplicate_groups": int((frame["group"].value_counts() > 1).sum()),
        "posts_in_near_duplicate_groups": int(frame["group"].duplicated(keep=False).sum()),
        "groups_straddling_splits": straddling,
        "writers": per_writer(frame, labels),
        "register": register(frame["text"]),
        "register_by_label": {label: register(frame.loc[frame[label] == 1, "text"]) for label in labels},
        "trigger_free": trigger_free(frame, params),
        "background": background,
    }
