"""The trained model at scoring time: raw posts in, probabilities, decisions and the words behind them out.

A :class:`Model` is built from plain numbers (:mod:`pipeline.model_file` reads them from ``models/model.npz``):
the normaliser's and segmenter's settings, the :class:`~pipeline.vectors.Vectorizer`'s vocabularies and idf, and
per label the weights of its calibrated cross-validation folds. Scoring needs NumPy, the segmenter and OpenCC,
nothing of scikit-learn, SciPy or pandas (``scores`` and ``predict`` import pandas for their DataFrame).

Each label's probability is what scikit-learn's ``CalibratedClassifierCV`` (sigmoid) gives: the mean over folds
of ``1 / (1 + exp(a * (x . w + c) + b))``. ``train`` checks it against the fitted pipeline on every labeled post.
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.segmenter import Segmenter
from pipeline.text import Normalizer, readable
from pipeline.vectors import SparseRows, Vectorizer

log = logging.getLogger(__name__)

# A post is scored on at most this many characters: about 7 MB of working memory, some 700 Weibo posts long.
MAX_CHARS = 100_000
# Posts are scored in batches of at most this many characters, so a chunk of long posts stays within memory.
BATCH_CHARS = 2_000_000


def check_thresholds(thresholds: Any, labels: list[str], where: str) -> dict[str, float]:
    """Decision thresholds as floats, each a finite number from 0 to 1 for a known label: the one check for the
    card, ``--threshold`` and the API's ``thresholds=``."""
    if not isinstance(thresholds, dict):
        raise UserError(f"{where}: thresholds must map labels to numbers, not {type(thresholds).__name__}")
    checked = {}
    for label, value in thresholds.items():
        if label not in labels:
            raise UserError(f"{where}: unknown label {label!r} (labels: {', '.join(labels)})")
        if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
                or not 0.0 <= value <= 1.0):
            raise UserError(f"{where}: the threshold of {label!r} must be a number between 0 and 1, not {value!r}")
        checked[label] = float(value)
    return checked


def check_posts(texts: Any) -> list:
    """Posts as a list. One string is refused: iterating it would score each character as a post. (An item that
    is not a string, such as pandas' NaN for a missing cell, is scored as an empty post, as normalising does.)"""
    if isinstance(texts, str | bytes):
        raise TypeError("expected a list of posts, got one string: wrap it, e.g. model.predict([post])")
    return list(texts)


def _length(text: Any) -> int:
    return len(text) if isinstance(text, str) else 0


def check_max_chars(max_chars: Any) -> int:
    if isinstance(max_chars, bool) or not isinstance(max_chars, numbers.Integral) or max_chars < 1:
        raise UserError(f"max_chars must be a whole number of at least 1, not {max_chars!r}")
    return int(max_chars)


def _batches(texts: list[str], budget: int = BATCH_CHARS) -> list[tuple[int, int]]:
    """Consecutive (start, stop) ranges of ``texts`` holding at most ``budget`` characters (or one post)."""
    ranges, start, size = [], 0, 0
    for i, text in enumerate(texts):
        if size and size + _length(text) > budget:
            ranges.append((start, i))
            start, size = i, 0
        size += _length(text)
    if start < len(texts):
        ranges.append((start, len(texts)))
    return ranges


@dataclass
class Folds:
    """Per label, its calibrated folds: one column each in ``weights`` (columns x features), ``intercepts``,
    ``slopes`` and ``offsets``; ``columns[j]`` lists label j's columns, ``powers[j]`` its norm power
    (:mod:`pipeline.vectors`)."""

    weights: np.ndarray
    intercepts: np.ndarray
    slopes: np.ndarray
    offsets: np.ndarray
    columns: list[list[int]]
    powers: list[float]

    def proba(self, X: SparseRows, fold: int | None = None) -> np.ndarray:
        """Per label, the mean of its folds' calibrated probabilities, or fold ``fold``'s alone."""
        if fold is not None:
            return self.only(fold).proba(X)
        decisions = X.dot(self.weights)
        for power, columns in zip(self.powers, self.columns, strict=True):
            if power != 1:  # rows divided by max(norm, floor) ** power * floor ** (1 - power), not max(norm, floor)
                decisions[:, columns] *= (X.stretch ** (1.0 - power))[:, None]
        decisions += self.intercepts
        with np.errstate(over="ignore"):  # exp overflowing to inf gives the right limit, 0
            fold_proba = 1.0 / (1.0 + np.exp(self.slopes * decisions + self.offsets))
        proba = np.zeros((X.n_rows, len(self.columns)))
        for j, columns in enumerate(self.columns):
            for column in columns:  # summed fold by fold, then divided: scikit-learn's order
                proba[:, j] += fold_proba[:, column]
            proba[:, j] /= len(columns)
        return proba

    def only(self, fold: int) -> Folds:
        """The same labels with fold ``fold`` alone."""
        if not all(0 <= fold < len(columns) for columns in self.columns):
            raise ValueError(f"fold {fold} is not one of every label's folds")
        keep = [columns[fold] for columns in self.columns]
        return Folds(self.weights[keep], self.intercepts[keep], self.slopes[keep], self.offsets[keep],
                     [[j] for j in range(len(keep))], self.powers)

    def coefficients(self, j: int) -> np.ndarray:
        """Label j's weights averaged over its folds: each feature's pull on the score, for explanations."""
        return self.weights[self.columns[j]].mean(axis=0)


@dataclass
class Model:
    """A loaded model: its steps, and what its card says (labels, thresholds, validation rates)."""

    normalizer: Normalizer
    segmenter: Segmenter
    vectorizer: Vectorizer
    folds: Folds
    card: dict
    source: str = "model"

    def __post_init__(self):
        self._coefficients: dict[str, np.ndarray] = {}
        self._names: np.ndarray | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {label: float(self.card["thresholds"][label]) for label in self.labels}

    def docs(self, texts: list) -> list:
        """The normalised and segmented posts (:class:`~pipeline.segmenter.Doc`)."""
        return self.segmenter.transform(self.normalizer.transform(texts))

    def features(self, texts: list) -> SparseRows:
        return self.features_of_docs(self.docs(texts))

    def features_of_docs(self, docs: list) -> SparseRows:
        return self.vectorizer.transform([doc.text for doc in docs], [doc.tokens for doc in docs])

    def proba_of_docs(self, docs: list) -> np.ndarray:
        """Probabilities of posts already normalised and segmented (one column per label)."""
        return self.folds.proba(self.features_of_docs(docs))

    def fold_proba(self, texts: list, fold: int) -> np.ndarray:
        """Probabilities from calibrated fold ``fold`` alone, one column per label: how the model scores a writer
        only the other folds saw (posts at most :data:`MAX_CHARS` long)."""
        return self.folds.proba(self.features(check_posts(texts)), fold=fold)

    def predict_proba(self, texts, max_chars: int | None = None) -> np.ndarray:
        """Probabilities, one column per label in :attr:`labels` order (each post scored on at most ``max_chars``
        characters, default :data:`MAX_CHARS`)."""
        proba, _ = self.score(check_posts(texts), max_chars, 0)
        return proba

    def score(self, texts: list, max_chars: int | None = None, explain: int = 0) -> tuple[np.ndarray, dict]:
        """Probabilities and, with ``explain`` = k, each post's k strongest features per label, in batches of
        bounded size; posts are capped at ``max_chars`` characters (default :data:`MAX_CHARS`)."""
        cap = MAX_CHARS if max_chars is None else check_max_chars(max_chars)
        capped = [text[:cap] if isinstance(text, str) else text for text in texts]
        parts, why = [np.zeros((0, len(self.labels)))], {label: [] for label in self.labels}
        for start, stop in _batches(capped, BATCH_CHARS):
            X = self.features(capped[start:stop])
            parts.append(self.folds.proba(X))
            for label in self.labels if explain else ():
                why[label].extend(self.explain(X, label, explain))
        return np.vstack(parts), why

    def scores(self, texts, thresholds: dict[str, float] | None = None, explain: int = 0,
               max_chars: int | None = None):
        """A DataFrame with ``<label>_prob`` and ``<label>`` (0/1) per label, and ``<label>_why`` with explain.

        Each post is scored on its first ``max_chars`` characters. Left at None, the cap is :data:`MAX_CHARS`;
        given, the frame also has ``truncated``: 1 where the post was longer than the cap.
        """
        import pandas as pd

        texts = check_posts(texts)
        cut = {**self.thresholds, **check_thresholds(thresholds or {}, self.labels, "thresholds")}
        proba, why = self.score(texts, max_chars, explain)
        columns: dict[str, Any] = {}
        for j, label in enumerate(self.labels):
            columns[f"{label}_prob"] = np.round(proba[:, j], 6)
            columns[label] = (proba[:, j] >= cut[label]).astype(int)
            if explain:
                columns[f"{label}_why"] = why[label]
        if max_chars is not None:
            columns["truncated"] = np.array([_length(text) > max_chars for text in texts], dtype=int)
        else:
            long = sum(_length(text) > MAX_CHARS for text in texts)
            if long:
                log.warning("%d post(s) longer than %d characters were scored on their first %d", long, MAX_CHARS,
                            MAX_CHARS)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(texts)))

    def predict(self, texts, thresholds: dict[str, float] | None = None, explain: int = 0,
                max_chars: int | None = None):
        """Score posts: a DataFrame with ``text`` and the columns of :meth:`scores`, as the CLI writes them."""
        import pandas as pd

        texts = check_posts(texts)
        frame = self.scores(texts, thresholds=thresholds, explain=explain, max_chars=max_chars)
        # object dtype: pandas' default string storage (Arrow) rejects lone surrogates, which JSON can carry.
        frame.insert(0, "text", pd.Series(texts, dtype=object))
        return frame

    def coefficients(self, label: str) -> np.ndarray:
        """The label's linear weights, averaged over the calibrated cross-validation folds."""
        if label not in self._coefficients:
            self._coefficients[label] = self.folds.coefficients(self.labels.index(label))
        return self._coefficients[label]

    def feature_names(self) -> np.ndarray:
        """Each feature's n-gram, placeholders shown as ``<url>``, ``<@>``…"""
        if self._names is None:
            self._names = np.array([readable(name) for name in self.vectorizer.feature_names()], dtype=object)
        return self._names

    def explain(self, X, label: str, k: int) -> list[str]:
        """Per post, the k features that raised the label's score most, joined by ``|``.

        A word and a character n-gram can share a name (参选), so each post's top 2k positive contributions are
        taken, highest first, and the first k distinct names kept.
        """
        values = X.value * self.coefficients(label)[X.column]
        positive = values > 0
        rows, values, index = X.row[positive], values[positive], X.column[positive]
        order = np.lexsort((-values, rows))  # by post, then contribution, highest first (stable on ties)
        rows, index = rows[order], index[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        top = rank < 2 * k
        names = self.feature_names()[index[top]].tolist()
        counts = np.bincount(rows[top], minlength=X.n_rows).tolist()
        out, start = [], 0
        for count in counts:
            out.append("|".join(list(dict.fromkeys(names[start:start + count]))[:k]))
            start += count
        return out
