"""A pool of unlabeled posts, scored by the model: what ``suggest`` picks from and ``keywords`` searches.

A pool is any file ``predict`` reads (CSV, TSV, JSON Lines, text, Parquet, optionally gzipped), by default the
background corpus at ``paths.background``, read in place. Posts without an ``id`` get their row number
(``row-17``). Scoring keeps each post's normalised text and tokens, so callers need not segment twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import streams
from pipeline.config import Params
from pipeline.errors import UserError

CHUNK = 5000
# The pool name a review queue records for the background corpus: its posts come back as labels by id, never text.
BACKGROUND = "background"


@dataclass
class ScoredPool:
    """Posts of a pool with the model's probabilities (one column per label) and what the model read."""

    ids: np.ndarray
    texts: list[str]
    norms: list[str]
    tokens: list[tuple[str, ...]]
    proba: np.ndarray
    name: str

    def __len__(self) -> int:
        return len(self.ids)


def default_pool(params: Params) -> Path:
    path = params.root_path(params.paths.background)
    if not path.is_file():
        raise UserError(f"no pool given and the background corpus is not at {params.paths.background}: pass --pool")
    return path


def read_pool(path: str | Path, text_column: str = "text", id_column: str = "id", encoding: str = "utf-8",
              limit: int | None = None) -> pd.DataFrame:
    """The pool's ids and texts, in file order (at most ``limit`` posts)."""
    path = str(path)
    fmt = streams.format_of(path, None, default="txt")
    ids: list[str] = []
    texts: list[str] = []
    for chunk in streams.read_chunks(path, fmt, CHUNK, text_column, encoding):
        chunk_ids = _column(chunk, id_column)
        first = len(ids)
        ids.extend(i if i not in ("", "None", "nan") else f"row-{first + k + 1}" for k, i in enumerate(chunk_ids))
        texts.extend(t if isinstance(t, str) else "" for t in chunk.texts)
        if limit is not None and len(ids) >= limit:
            ids, texts = ids[:limit], texts[:limit]
            break
    if not ids:
        raise UserError(f"{path}: the pool holds no posts")
    frame = pd.DataFrame({"id": ids, "text": pd.Series(texts, dtype=object)})
    if frame["id"].duplicated().any():
        raise UserError(f"{path}: id {frame.loc[frame['id'].duplicated(), 'id'].iloc[0]!r} occurs twice in the pool")
    return frame


def _column(chunk: streams.Chunk, name: str) -> list[str]:
    """A column of a chunk as strings ("" where absent), whichever shape the reader gave the rows."""
    if chunk.rows is not None:
        if name not in chunk.columns:
            return [""] * len(chunk)
        k = chunk.columns.index(name)
        return [row[k] for row in chunk.rows]
    if chunk.records is not None:
        return [_field(record, name) for record in chunk.records]
    if chunk.batch is not None and name in chunk.batch.schema.names:
        return ["" if v is None else str(v) for v in chunk.batch.column(name).to_pylist()]
    return [""] * len(chunk)


def _field(record: streams.Record | None, name: str) -> str:
    """A JSON Lines record's top-level value as a string: ``"7"`` and ``7`` are both the id 7."""
    if record is None or name not in record.fields:
        return ""
    value = json.loads(record.fields[name])
    return "" if value is None else str(value)


def score_pool(model, frame: pd.DataFrame, name: str) -> ScoredPool:
    """Run the model's own steps chunk by chunk, keeping the normalised texts and tokens on the way."""
    from pipeline.files import progress

    norms: list[str] = []
    tokens: list[tuple[str, ...]] = []
    probas = []
    texts = frame["text"].tolist()
    bar = progress(iter(()), desc="score pool", total=len(texts))
    for start in range(0, len(texts), CHUNK):
        norm = model.normalizer.transform(texts[start:start + CHUNK])
        docs = model.segmenter.transform(norm)
        probas.append(model.proba_of_docs(docs))
        norms.extend(norm)
        tokens.extend(tuple(doc.tokens) for doc in docs)
        bar.update(len(norm))
    bar.close()
    proba = np.vstack(probas) if probas else np.zeros((0, len(model.labels)))
    return ScoredPool(frame["id"].to_numpy(dtype=object), texts, norms, tokens, proba, name)


class NearDuplicates:
    """Posts already taken (labeled or picked), to refuse new ones whose character 3-gram sets are as similar as
    ``prepare`` groups them (Jaccard at least ``data.near_duplicate_threshold``)."""

    def __init__(self, taken: list[str], threshold: float):
        from sklearn.feature_extraction.text import CountVectorizer

        self.threshold = threshold
        self._vectorizer = CountVectorizer(analyzer=_shingles, binary=True, dtype=np.int32)
        self._vectorizer.fit(list(taken) + ["\0\0\0"])
        self._taken = self._vectorizer.transform(taken).T.tocsc() if taken else None
        self._sizes = np.asarray(self._taken.sum(axis=0)).ravel() if taken else np.zeros(0)
        self._extra: list[set[str]] = []
        self._exact = set(taken)

    def admit(self, text: str) -> bool:
        """Whether ``text`` is new (no near-duplicate taken); if so it is taken."""
        if text in self._exact:
            return False
        grams = _shingles(text)
        if self._taken is not None and grams:
            row = self._vectorizer.transform([text])
            overlap = (row @ self._taken).toarray().ravel()
            union = len(set(grams)) + self._sizes - overlap
            if np.any(overlap >= self.threshold * np.maximum(union, 1)):
                return False
        own = set(grams)
        for other in self._extra:
            common = len(own & other)
            if common and common >= self.threshold * len(own | other):
                return False
        self._extra.append(own)
        self._exact.add(text)
        return True


def _shingles(text: str) -> list[str]:
    grams = [text[i:i + 3] for i in range(len(text) - 2)]
    return grams if grams else ([text] if text else [])
