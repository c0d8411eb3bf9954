"""A chunk of posts scored into the columns predict adds to each row, and laid out for output.

Per label ``<label>_prob`` (rounded to 6 decimals), ``<label>`` (0/1 at the threshold) and, with ``explain``,
``<label>_why``; then ``truncated`` when the cap was given explicitly, and ``error`` with ``--on-error mark``. A row
that could not be read gets None in every prediction column. Local ``predict`` (in this process or a forked
worker) and each task of ``predict --cluster`` score chunks with :func:`score_chunk`, so their outputs are the
same byte for byte. Scoring uses :meth:`pipeline.model.Model.score` (NumPy only), never pandas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import UserError
from pipeline.streams import ERROR_COLUMN, TRUNCATED_COLUMN, Chunk, Rendered, render


def parse_thresholds(items: list[str], labels: list[str]) -> dict[str, float]:
    """``--threshold LABEL=P`` overrides as a dict, each checked (a known label, a number from 0 to 1)."""
    from pipeline.model import check_thresholds

    thresholds = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep or label not in labels:
            raise UserError(f"--threshold {item!r}: expected LABEL=P with LABEL one of {', '.join(labels)}")
        try:
            thresholds[label] = float(value)
        except ValueError:
            raise UserError(f"--threshold {item!r}: {value!r} is not a number") from None
    return check_thresholds(thresholds, labels, "--threshold")


@dataclass(frozen=True)
class Options:
    """What decides a chunk's output columns and layout (small: it travels with every chunk to a worker)."""

    labels: tuple[str, ...]
    thresholds: tuple[float, ...]  # per label, the card's or the one given with --threshold
    format: str
    max_chars: int
    mark_truncated: bool = False  # a `truncated` column (the cap was given explicitly)
    explain: int = 0
    mark: bool = False  # --on-error mark: an `error` column
    only_flagged: bool = False
    summary: bool = False  # keep the scored rows' probabilities for the summary's tally

    @classmethod
    def of(cls, model, overrides: dict[str, float], fmt: str, max_chars: int | None, explain: int = 0,
           mark: bool = False, only_flagged: bool = False, summary: bool = False) -> Options:
        """The options of a run of ``model``: ``max_chars`` None is the default cap, not marked in the output."""
        from pipeline.model import MAX_CHARS

        cut = {**model.thresholds, **overrides}
        return cls(labels=tuple(model.labels), thresholds=tuple(cut[label] for label in model.labels), format=fmt,
                   max_chars=max_chars or MAX_CHARS, mark_truncated=max_chars is not None, explain=explain,
                   mark=mark, only_flagged=only_flagged, summary=summary)


@dataclass
class Scored:
    """One chunk scored: counts for the summary, and its output rows, laid out as bytes where the format allows
    (then the chunk and its predictions are not sent back from a worker)."""

    rows: int
    scored: int
    written: int
    flagged: dict[str, int]
    truncated: list[int]  # indexes (in the chunk) of the rows whose post was longer than the cap
    proba: np.ndarray | None  # the scored rows' probabilities as written (rounded), for --summary
    rendered: Rendered | None
    chunk: Chunk | None
    predictions: dict[str, list] | None


def predict_columns(model, chunk: Chunk, options: Options) -> tuple[dict[str, list], np.ndarray, list[int]]:
    """The prediction columns of every row of ``chunk`` as plain values (None in rows that could not be read), the
    scored rows' rounded probabilities, and the indexes of the rows whose post was truncated."""
    errors = chunk.errors
    ok = [i for i, error in enumerate(errors) if error is None]
    everything = len(ok) == len(errors)
    texts = chunk.texts if everything else [chunk.texts[i] for i in ok]
    proba, why = model.score(texts, options.max_chars, options.explain)
    rounded = np.round(proba, 6)
    decided = (proba >= np.array(options.thresholds)).astype(int)
    cut = [isinstance(text, str) and len(text) > options.max_chars for text in texts]
    columns: dict[str, list] = {}
    for j, label in enumerate(options.labels):
        columns[f"{label}_prob"] = rounded[:, j].tolist()
        columns[label] = decided[:, j].tolist()
        if options.explain:
            columns[f"{label}_why"] = why[label]
    if options.mark_truncated:
        columns[TRUNCATED_COLUMN] = [int(was_cut) for was_cut in cut]
    if not everything:
        for name, values in columns.items():
            spread: list = [None] * len(errors)
            for i, value in zip(ok, values, strict=True):
                spread[i] = value
            columns[name] = spread
    if options.mark:
        columns[ERROR_COLUMN] = [error or "" for error in errors]
    return columns, rounded, [ok[i] for i, was_cut in enumerate(cut) if was_cut]


def score_chunk(model, chunk: Chunk, options: Options) -> Scored:
    """Score a chunk, keep the flagged rows if asked, and lay out its output: all a worker does for a chunk."""
    predictions, rounded, truncated = predict_columns(model, chunk, options)
    rows, scored = len(chunk), len(rounded)
    flags = [predictions[label] for label in options.labels]
    flagged = {label: values.count(1) for label, values in zip(options.labels, flags, strict=True)}
    if options.only_flagged:
        keep = [any(values[i] == 1 for values in flags) for i in range(rows)]
        chunk = chunk.subset(keep)
        predictions = {name: [value for value, kept in zip(values, keep, strict=True) if kept]
                       for name, values in predictions.items()}
    proba = rounded if options.summary else None
    rendered = render(chunk, predictions, options.format)
    if rendered is not None:
        return Scored(rows, scored, len(chunk), flagged, truncated, proba, rendered, None, None)
    return Scored(rows, scored, len(chunk), flagged, truncated, proba, None, chunk, predictions)
