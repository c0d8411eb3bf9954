"""The trained model: one scikit-learn pipeline (raw text in, probabilities out) and its model card.

``models/model.joblib`` holds the fitted ``Pipeline`` (normalise -> segment -> features -> classify);
``models/model_card.json`` beside it records the labels, thresholds, the model file's SHA-256, library
versions, data hashes, params and validation scores. :func:`load_model` checks the card before it loads
anything, so a truncated, tampered or swapped model file is refused rather than run.

Trust boundary: a joblib/pickle file runs code when loaded. Load only models this pipeline trained
(the SHA-256 check guards against corruption and mix-ups, not against an attacker who rewrites the card).
Models from someone else travel as ``.skops`` files (see ``pipeline.export``), which load only known types.
"""

from __future__ import annotations

import io as _io
import logging
import math
import numbers
import os
import platform
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import UserError

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path("models/model.joblib")
CARD_FORMAT = 1
STEPS = ("normalize", "segment", "features", "classify")
# Libraries whose version is recorded in the card and compared when a model is loaded.
VERSIONED = ("scikit-learn", "numpy", "scipy", "jieba", "rjieba", "opencc", "joblib", "pandas")
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


def card_path(model_path: str | Path) -> Path:
    """The card that belongs to a model file: ``model.joblib`` -> ``model_card.json``."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_card.json")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def check_versions(recorded: dict[str, str | None], where: str) -> None:
    """The version-skew rule: a different major version of scikit-learn, numpy or scipy is an error (pickles
    of their objects do not carry across); any other difference in those or in the segmenters is a warning."""
    current = library_versions()
    for name in VERSIONED:
        then, now = recorded.get(name), current.get(name)
        if then is None or now is None or then == now:
            continue
        if name in ("scikit-learn", "numpy", "scipy") and then.split(".")[0] != now.split(".")[0]:
            raise UserError(f"{where} was trained with {name} {then}, this environment has {now}: "
                            f"install {name}=={then} or retrain (make repro)")
        log.warning("%s was trained with %s %s, this environment has %s; predictions may differ slightly",
                    where, name, then, now)


@dataclass
class Model:
    """A loaded model: the fitted pipeline plus what its card says (labels, thresholds, validation rates)."""

    pipeline: Any
    card: dict
    source: str = "model"
    _coef: dict = field(default_factory=dict, repr=False)

    @property
    def labels(self) -> list[str]:
        return list(self.card["labels"])

    @property
    def thresholds(self) -> dict[str, float]:
        return {label: float(self.card["thresholds"][label]) for label in self.labels}

    def features(self, texts) -> Any:
        """The feature matrix of raw texts, through the same steps the pipeline runs."""
        steps = self.pipeline.named_steps
        return steps["features"].transform(steps["segment"].transform(steps["normalize"].transform(texts)))

    def proba_from_features(self, X) -> np.ndarray:
        linear = self._linear()
        if linear is None:
            outputs = self.pipeline.named_steps["classify"].predict_proba(X)
            return np.column_stack([p[:, 1] for p in outputs]) if len(outputs) else np.zeros((X.shape[0], 0))
        from scipy.special import expit

        weights, intercepts, slopes, offsets, folds = linear
        decisions = X @ weights
        decisions += intercepts
        fold_proba = expit(-(slopes * decisions + offsets))
        proba = np.zeros((X.shape[0], len(folds)))
        for j, columns in enumerate(folds):
            for column in columns:  # summed fold by fold, then divided: scikit-learn's order, so the same bits
                proba[:, j] += fold_proba[:, column]
            proba[:, j] /= len(columns)
        return proba

    def _linear(self):
        """The classifiers as one weight matrix, when every label is a sigmoid-calibrated linear model.

        ``CalibratedClassifierCV.predict_proba`` is the mean over folds of ``expit(-(a * (x.w + c) + b))``.
        Computed here with one sparse product for all labels and folds instead of one per fold (and without
        scikit-learn's input checks on every call): the same numbers, bit for bit (tests/test_model.py),
        about twice as fast on a chunk of posts.
        """
        if "_linear" not in self._coef:
            self._coef["_linear"] = _stacked_linear(self.pipeline.named_steps["classify"])
        return self._coef["_linear"]

    def predict_proba(self, texts, max_chars: int | None = None) -> np.ndarray:
        """Probabilities, one column per label in :attr:`labels` order (each post scored on at most ``max_chars``
        characters, default :data:`MAX_CHARS`)."""
        proba, _ = self._scored(check_posts(texts), max_chars, 0)
        return proba

    def _scored(self, texts: list[str], max_chars: int | None, explain: int) -> tuple[np.ndarray, dict]:
        """Probabilities and explanations of capped posts, computed in batches of bounded size."""
        cap = MAX_CHARS if max_chars is None else check_max_chars(max_chars)
        capped = [text[:cap] if isinstance(text, str) else text for text in texts]
        parts, why = [np.zeros((0, len(self.labels)))], {label: [] for label in self.labels}
        for start, stop in _batches(capped, BATCH_CHARS):
            X = self.features(capped[start:stop])
            parts.append(self.proba_from_features(X))
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
        proba, why = self._scored(texts, max_chars, explain)
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
        texts = check_posts(texts)
        frame = self.scores(texts, thresholds=thresholds, explain=explain, max_chars=max_chars)
        import pandas as pd

        # object dtype: pandas' default string storage (Arrow) rejects lone surrogates, which JSON can carry.
        frame.insert(0, "text", pd.Series(texts, dtype=object))
        return frame

    def coefficients(self, label: str) -> np.ndarray:
        """The label's linear weights, averaged over the calibrated cross-validation folds."""
        if label not in self._coef:
            j = self.labels.index(label)
            calibrated = self.pipeline.named_steps["classify"].estimators_[j]
            coefs = [c.estimator.coef_.ravel() for c in calibrated.calibrated_classifiers_]
            self._coef[label] = np.mean(coefs, axis=0)
        return self._coef[label]

    def feature_names(self) -> np.ndarray:
        if "_names" not in self._coef:
            from pipeline.text import readable

            names = self.pipeline.named_steps["features"].get_feature_names_out()
            self._coef["_names"] = np.array([readable(n.split("__", 1)[1]) for n in names], dtype=object)
        return self._coef["_names"]

    def explain(self, X, label: str, k: int) -> list[str]:
        """Per post, the k features that raised the label's score most, joined by ``|``.

        A word and a character n-gram can share a name (参选), so each post's top 2k positive contributions are
        taken, highest first, and the first k distinct names kept.
        """
        contrib = X.tocsr().multiply(self.coefficients(label)).tocsr()
        rows = np.repeat(np.arange(contrib.shape[0]), np.diff(contrib.indptr))
        positive = contrib.data > 0
        rows, values, index = rows[positive], contrib.data[positive], contrib.indices[positive]
        order = np.lexsort((-values, rows))  # by post, then contribution, highest first (stable on ties)
        rows, index = rows[order], index[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
        top = rank < 2 * k
        names = self.feature_names()[index[top]].tolist()
        counts = np.bincount(rows[top], minlength=contrib.shape[0]).tolist()
        out, start = [], 0
        for count in counts:
            out.append("|".join(list(dict.fromkeys(names[start:start + count]))[:k]))
            start += count
        return out


def _stacked_linear(classify):
    """Weights, intercepts, calibration slopes and offsets, one column per (label, fold), and each label's
    columns; None when any label is not a binary, sigmoid-calibrated linear model."""
    estimators, columns, intercepts, slopes, offsets, folds = [], [], [], [], [], []
    for calibrated in getattr(classify, "estimators_", []):
        label_columns = []
        for fold in getattr(calibrated, "calibrated_classifiers_", []):
            estimator = fold.estimator
            if (fold.method != "sigmoid" or len(fold.calibrators) != 1 or not hasattr(estimator, "coef_")
                    or list(estimator.classes_) != [0, 1] or list(fold.classes) != [0, 1]):
                return None
            label_columns.append(len(columns))
            estimators.append(estimator)
            columns.append(np.asarray(estimator.coef_, dtype=np.float64).ravel())
            intercepts.append(float(np.ravel(estimator.intercept_)[0]))
            slopes.append(float(fold.calibrators[0].a_))
            offsets.append(float(fold.calibrators[0].b_))
        if not label_columns:
            return None
        folds.append(label_columns)
    if not folds:
        return None
    weights = np.ascontiguousarray(np.column_stack(columns))
    # Each fold's coef_ becomes a view of its column, so the weights are held once, not twice (28 MB here);
    # scikit-learn reads the same numbers through the view.
    for column, estimator in enumerate(estimators):
        estimator.coef_ = weights[:, column][np.newaxis, :]
    return weights, np.array(intercepts), np.array(slopes), np.array(offsets), folds


def load_model(path: str | Path | None = None) -> Model:
    """Load and verify a model: a ``.joblib`` with its card beside it, or a self-contained ``.skops`` export.

    Without a path: ``$WEIBO_SIGNALS_MODEL`` if set, else ``models/model.joblib`` in the current project
    (the folder with ``dvc.yaml``) or in the checkout this package was installed from.
    """
    path = Path(path) if path is not None else _default_model_path()
    if path.suffix == ".skops":
        from pipeline.export import load_skops

        return load_skops(path)
    return _load_joblib(path)


def _default_model_path() -> Path:
    if os.environ.get("WEIBO_SIGNALS_MODEL"):
        return Path(os.environ["WEIBO_SIGNALS_MODEL"])
    local = Path.cwd() / DEFAULT_MODEL
    if local.exists() or (Path.cwd() / "dvc.yaml").exists():
        return local
    return PACKAGE_ROOT / DEFAULT_MODEL


def read_card(path: Path) -> dict:
    import json

    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"model card {path} is missing: the model cannot be verified; retrain with "
                        "make repro") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"model card {path} is unreadable ({err.__class__.__name__}); retrain with "
                        "make repro") from None
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or "model" not in card:
        raise UserError(f"model card {path} is not a card this version understands; retrain with make repro")
    return card


def _load_joblib(path: Path) -> Model:
    import hashlib

    import joblib

    if not path.exists():
        raise UserError(f"no trained model at {path}: run `make repro` first (or pass --model)")
    cpath = card_path(path)
    for attempt in (1, 2):
        card = read_card(cpath)
        try:
            blob = path.read_bytes()
        except OSError as err:
            raise UserError(f"cannot read model {path}: {err.strerror}") from None
        if hashlib.sha256(blob).hexdigest() == card["model"]["sha256"]:
            break
        if attempt == 1:
            continue  # a concurrent `dvc repro` may have replaced the model between the two reads
        raise UserError(f"model {path} does not match its card {cpath.name} (SHA-256 differs): the file is "
                        "truncated, modified or from another run; retrain with make repro")
    check_versions(card.get("versions", {}), str(path))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
        pipeline = joblib.load(_io.BytesIO(blob))
    return _checked(Model(pipeline=pipeline, card=card, source=str(path)))


def _checked(model: Model) -> Model:
    from sklearn.pipeline import Pipeline

    pipeline = model.pipeline
    if not isinstance(pipeline, Pipeline) or list(pipeline.named_steps) != list(STEPS):
        raise UserError(f"{model.source} is not a model of this project (unexpected pipeline steps)")
    n_outputs = len(pipeline.named_steps["classify"].estimators_)
    card = model.card
    if (not isinstance(card.get("labels"), list) or not isinstance(card.get("thresholds"), dict)
            or n_outputs != len(model.labels) or set(card["thresholds"]) != set(model.labels)):
        raise UserError(f"{model.source}: the card's labels do not match the model's outputs")
    _check_card_thresholds(card, model.labels, model.source)
    return model


def _check_card_thresholds(card: dict, labels: list[str], source: str) -> None:
    """The card's thresholds are numbers from 0 to 1, each the one its validation scores were measured at: an
    edited threshold would flip decisions that the card's figures no longer describe."""
    thresholds = check_thresholds(card["thresholds"], labels, f"the model card of {source}")
    validation = card.get("validation")
    for label, threshold in thresholds.items():
        scores = validation.get(label) if isinstance(validation, dict) else None
        validated = scores.get("threshold") if isinstance(scores, dict) else None
        if validated is None:
            continue
        if isinstance(validated, bool) or not isinstance(validated, numbers.Real) or float(validated) != threshold:
            raise UserError(f"the model card of {source}: the threshold of {label!r} ({threshold!r}) is not the one "
                            f"the model was validated at ({validated!r}): the card was edited; retrain with make "
                            "repro, or pass --threshold to choose another")
