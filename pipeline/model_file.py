"""The model file: a fitted model as plain arrays and JSON, which loads without running any code.

``models/model.npz`` is a NumPy archive read with ``allow_pickle=False``: arrays of numbers and of fixed-width
strings, and one JSON document (``meta``) with the labels, thresholds and the settings of each step. Nothing in
it can name code to run, so a model from someone else is as safe to load as a CSV file. ``models/model_card.json``
beside it records the file's SHA-256, the training data, params, validation scores and a SHA-256 of the card
itself; :func:`load_model` checks both before it reads anything, so a truncated, edited or swapped file is
refused in one line.

The file's ``format`` version is the only compatibility rule: any NumPy reads the arrays, and no scikit-learn,
SciPy or pandas is needed to score. :func:`export` turns a fitted scikit-learn pipeline into a :class:`Model`;
``train`` checks that the two give the same probabilities before it saves.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import files
from pipeline.errors import UserError
from pipeline.model import Folds, Model, check_thresholds
from pipeline.segmenter import Segmenter
from pipeline.text import Normalizer
from pipeline.vectors import Block, ConceptBlock, Vectorizer

FORMAT = "weibo-signals/model"
FORMAT_VERSION = 4  # 2: a norm power per label; 3: concept features and scope marking; 4: concept pairs
READABLE_VERSIONS = (2, 3, 4)  # each an earlier format's file without what the later one added
CARD_FORMAT = 2
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = Path("models/model.npz")
# Recorded in the card, for the record: none of them decides whether a model loads.
RECORDED_VERSIONS = ("scikit-learn", "numpy", "scipy", "jieba", "rjieba", "opencc")
ARRAYS = {"word_tokens": "U", "word_vocabulary": "i", "word_idf": "f", "char_vocabulary": "i", "char_idf": "f",
          "weights": "f", "intercepts": "f", "slopes": "f", "offsets": "f"}


def export(pipeline, card: dict) -> Model:
    """The :class:`Model` of a fitted pipeline (normalize -> segment -> features -> classify) made in
    :func:`pipeline.recipe.build_pipeline`: sigmoid-calibrated binary linear classifiers, one per label."""
    steps = pipeline.named_steps
    featurizer, labels = steps["features"].named_steps, steps["classify"].estimators_
    union, scope = featurizer["ngrams"], featurizer.get("scope")
    blocks = dict(union.transformer_list)
    words, chars = blocks["words"], blocks["chars"]
    word_count, word_tfidf = words.named_steps["count"], words.named_steps["tfidf"]
    char_count, char_tfidf = chars.named_steps["count"], chars.named_steps["tfidf"]
    norms = [label.named_steps["norm"] for label in labels]
    floors = {None if norm == "passthrough" else float(norm.floor_) for norm in norms}
    if len(floors) != 1:
        raise ValueError("every label must share one normalisation floor")
    floor = floors.pop()
    powers = [1.0 if norm == "passthrough" else float(norm.power) for norm in norms]
    if floor is None and (word_tfidf.norm, char_tfidf.norm) != ("l2", "l2"):
        raise ValueError("each block must be L2-normalised when there is no floor")
    concepts = None
    if "concepts" in blocks:
        concept_count, concept_tfidf = blocks["concepts"].named_steps["count"], blocks["concepts"].named_steps["tfidf"]
        concepts = ConceptBlock(concept_count.matcher_.concepts, concept_tfidf.idf_.astype(np.float64),
                                concept_count.matcher_.pairs)
        if (concept_tfidf.sublinear_tf, concept_tfidf.norm) != (word_tfidf.sublinear_tf, word_tfidf.norm):
            raise ValueError("the concepts' block must be weighted and normalised as the n-gram blocks")
    vectorizer = Vectorizer(
        words=Block(word_count.vocabulary_, word_tfidf.idf_.astype(np.float64), tuple(word_count.ngram_range)),
        word_tokens=np.array(word_count.tokens_.tolist(), dtype=str),
        chars=Block(char_count.vocabulary_, char_tfidf.idf_.astype(np.float64), tuple(char_count.ngram_range)),
        sublinear_tf=bool(word_tfidf.sublinear_tf), floor=floor, concepts=concepts, scope=scope)
    if word_tfidf.sublinear_tf != char_tfidf.sublinear_tf:
        raise ValueError("both blocks must use the same term-frequency weighting")
    weights, intercepts, slopes, offsets, columns = [], [], [], [], []
    for label in labels:
        calibrated, label_columns = label.named_steps["linear"], []
        for fold in calibrated.calibrated_classifiers_:
            estimator = fold.estimator
            if (fold.method != "sigmoid" or len(fold.calibrators) != 1 or list(estimator.classes_) != [0, 1]
                    or not hasattr(estimator, "coef_")):
                raise ValueError("only sigmoid-calibrated binary linear classifiers can be saved")
            label_columns.append(len(weights))
            weights.append(np.asarray(estimator.coef_, dtype=np.float64).ravel())
            intercepts.append(float(np.ravel(estimator.intercept_)[0]))
            slopes.append(float(fold.calibrators[0].a_))
            offsets.append(float(fold.calibrators[0].b_))
        columns.append(label_columns)
    folds = Folds(np.vstack(weights), np.array(intercepts), np.array(slopes), np.array(offsets), columns, powers)
    return Model(normalizer=steps["normalize"], segmenter=steps["segment"], vectorizer=vectorizer, folds=folds,
                 card=card, source="the trained pipeline")


def _meta(model: Model) -> dict[str, Any]:
    return {"format": FORMAT, "version": FORMAT_VERSION, "labels": model.labels, "thresholds": model.thresholds,
            "normalizer": model.normalizer.settings(), "segmenter": model.segmenter.settings(),
            "vectorizer": model.vectorizer.settings(), "columns": model.folds.columns,
            "norm_powers": model.folds.powers}


def save(model: Model, path: str | Path) -> tuple[str, int]:
    """Write the model file (atomically, uncompressed so it loads fast); returns its SHA-256 and size."""
    folds = model.folds
    arrays = {**model.vectorizer.arrays(), "weights": folds.weights, "intercepts": folds.intercepts,
              "slopes": folds.slopes, "offsets": folds.offsets,
              "meta": np.frombuffer(json.dumps(_meta(model), ensure_ascii=False).encode("utf-8"), dtype=np.uint8)}
    with files.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        return files.sha256_file(tmp), tmp.stat().st_size


def card_path(model_path: str | Path) -> Path:
    """The card that belongs to a model file: ``model.npz`` -> ``model_card.json``."""
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_card.json")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in RECORDED_VERSIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _card_digest(card: dict) -> str:
    body = {key: value for key, value in card.items() if key != "card_sha256"}
    return hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def sealed(card: dict) -> dict:
    """The card with the SHA-256 of its own content, so an edit to any field is caught on load."""
    return {**card, "card_sha256": _card_digest(card)}


def read_card(path: Path) -> dict:
    card = files.read_json(path, "model card", missing=f"model card {path} is missing: the model cannot be "
                           "verified; retrain with make repro")
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT or not isinstance(card.get("model"), dict):
        raise UserError(f"model card {path} is not a card this version understands; retrain with make repro")
    if card.get("card_sha256") != _card_digest(card):
        raise UserError(f"model card {path} was edited after training (its SHA-256 differs): retrain with make "
                        "repro, or pass --threshold to choose other thresholds")
    return card


def default_model_path() -> Path:
    """``$WEIBO_SIGNALS_MODEL`` if set, else ``models/model.npz`` in the current project (the folder with
    ``dvc.yaml``) or in the checkout this package was installed from."""
    if os.environ.get("WEIBO_SIGNALS_MODEL"):
        return Path(os.environ["WEIBO_SIGNALS_MODEL"])
    local = Path.cwd() / DEFAULT_MODEL
    if local.exists() or (Path.cwd() / "dvc.yaml").exists():
        return local
    return PACKAGE_ROOT / DEFAULT_MODEL


def load_model(path: str | Path | None = None) -> Model:
    """Load and verify a model file and its card (see the module's docstring)."""
    path = Path(path) if path is not None else default_model_path()
    if not path.exists():
        raise UserError(f"no trained model at {path}: run `make repro` first (or pass --model)")
    cpath = card_path(path)
    for attempt in (1, 2):
        card = read_card(cpath)
        try:
            blob = path.read_bytes()
        except OSError as err:
            raise UserError(f"cannot read model {path}: {err.strerror}") from None
        if hashlib.sha256(blob).hexdigest() == card["model"].get("sha256"):
            break
        if attempt == 1:
            continue  # a concurrent `dvc repro` may have replaced the model between the two reads
        raise UserError(f"model {path} does not match its card {cpath.name} (SHA-256 differs): the file is "
                        "truncated, modified or from another run; retrain with make repro")
    return from_bytes(blob, card, str(path))


def from_bytes(blob: bytes, card: dict, source: str) -> Model:
    """The model in a file's bytes; anything but a model file of this format is a UserError."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except (ValueError, OSError, KeyError, UnicodeDecodeError, EOFError) as err:
        raise UserError(f"{source} is not a readable model file ({err.__class__.__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{source} is not a model file of this project")
    if meta.get("version") not in READABLE_VERSIONS:
        raise UserError(f"{source} is a model file of format version {meta.get('version')!r}; this version reads "
                        f"formats {READABLE_VERSIONS[0]}–{FORMAT_VERSION}: retrain with make repro, or use the "
                        "release that wrote it")
    try:
        model = _model(meta, arrays, card, source)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise UserError(f"{source}: the model file is damaged ({err.__class__.__name__}: {err})") from None
    if meta["labels"] != card.get("labels") or meta["thresholds"] != card.get("thresholds"):
        raise UserError(f"{source}: the card's labels or thresholds are not the model file's")
    check_thresholds(card["thresholds"], model.labels, f"the model card of {source}")
    return model


def _model(meta: dict, arrays: dict[str, np.ndarray], card: dict, source: str) -> Model:
    for name, kind in ARRAYS.items():
        if name not in arrays or arrays[name].dtype.kind != kind:
            raise ValueError(f"array {name} is missing or of the wrong type")
    vectorizer = Vectorizer.from_file(meta["vectorizer"], arrays)
    weights = arrays["weights"]
    columns = [[int(c) for c in label] for label in meta["columns"]]
    n_columns = len(arrays["intercepts"])
    if (weights.shape != (n_columns, vectorizer.n_features) or len(columns) != len(meta["labels"])
            or any(not label or not all(0 <= c < n_columns for c in label) for label in columns)
            or len(arrays["word_idf"]) != len(arrays["word_vocabulary"])
            or len(arrays["char_idf"]) != len(arrays["char_vocabulary"])):
        raise ValueError("array shapes do not agree")
    powers = [float(power) for power in meta["norm_powers"]]
    if len(powers) != len(columns) or not all(0 <= power <= 1 for power in powers):
        raise ValueError("norm_powers must hold one power from 0 to 1 per label")
    if vectorizer.floor is None and any(power != 1 for power in powers):
        raise ValueError("a norm power below 1 needs a normalisation floor")
    folds = Folds(weights, arrays["intercepts"], arrays["slopes"], arrays["offsets"], columns, powers)
    return Model(normalizer=Normalizer.from_settings(meta["normalizer"]),
                 segmenter=Segmenter.from_settings(meta["segmenter"]), vectorizer=vectorizer, folds=folds,
                 card=card, source=source)
