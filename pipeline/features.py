"""Features of a segmented post, and the ``featurize`` stage that fits them on the training split.

Two TF-IDF weighted blocks side by side:

* ``words``: jieba tokens and token bigrams. One-character words (被, 约, 查) are kept: the analyzer is a
  callable, so scikit-learn's ``token_pattern`` (which drops them) is never used.
* ``chars``: character 1–3-grams of the normalised text, robust to homophones, variant characters and
  segmentation errors. They are counted by :class:`CharNgramCounter`, which turns a whole batch of posts
  into integer n-gram codes with NumPy and looks them up with a binary search: several times faster than
  building n-gram strings in Python, which would otherwise cost more than jieba itself.

Normalisation (``features.norm_floor_quantile``). Plain L2 normalisation turns a one-character post such as
``被`` into a unit vector on that one feature, as strong as a whole paragraph of evidence: the model then gave
``被`` alone a police_warning probability of 1.0. With a floor, each row (both blocks together) is divided by
``max(norm, floor)``, where the floor is that quantile of the training posts' norms: a post with enough text is
L2-normalised as usual, and a post with little text keeps its small raw norm, so it carries little evidence.
``null`` keeps plain per-block L2 normalisation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfTransformer, TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.extmath import row_norms

from pipeline.segment import Doc

log = logging.getLogger(__name__)

_BITS = 21  # every Unicode code point fits in 21 bits, so three of them fit in one int64
_MASK = (1 << _BITS) - 1


class TokenNgrams:
    """Analyzer for TfidfVectorizer: the word n-grams of a :class:`Doc`'s tokens, joined by a space."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 2)):
        self.ngram_range = tuple(ngram_range)

    def __call__(self, doc: Doc) -> list[str]:
        tokens = doc.tokens
        low, high = self.ngram_range
        grams = list(tokens) if low == 1 else []
        for n in range(max(low, 2), high + 1):
            grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return grams

    def __eq__(self, other) -> bool:
        return isinstance(other, TokenNgrams) and other.ngram_range == self.ngram_range

    def __repr__(self) -> str:
        return f"TokenNgrams(ngram_range={self.ngram_range})"


def char_ngram_codes(texts: Sequence[str], ngram_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """All character n-grams of a batch as (row, code) arrays; spaces separate and are never part of one.

    A code packs up to three code points: c for a unigram, c1<<21|c2 for a bigram, c1<<42|c2<<21|c3 for a
    trigram. Code point 0 never occurs in text, so codes of different lengths cannot collide.
    """
    if not texts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:  # a NUL inside a text would shift every later row
        joined = "\0".join(text.replace("\0", " ") for text in texts)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    doc_of = np.cumsum(points == 0)  # row of each position: separators seen before it
    points[points == 0x20] = 0  # a space separates like NUL: no n-gram spans two words
    rows, codes = [], []
    low, high = ngram_range
    for n in range(low, high + 1):
        if len(points) < n:
            continue
        code = points[: len(points) - n + 1].copy()
        valid = code != 0
        for k in range(1, n):
            nxt = points[k: len(points) - n + 1 + k]
            valid &= nxt != 0
            code = (code << _BITS) | nxt
        rows.append(doc_of[: len(points) - n + 1][valid])
        codes.append(code[valid])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(codes)


def decode_char_ngram(code: int) -> str:
    chars = []
    while code:
        chars.append(chr(code & _MASK))
        code >>= _BITS
    return "".join(reversed(chars))


class CharNgramCounter(TransformerMixin, BaseEstimator):
    """Counts character n-grams of :class:`Doc` texts (or plain strings) against a vocabulary fitted on them."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), min_df: int = 2, max_df: float = 1.0,
                 max_features: int | None = None):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def fit(self, X, y=None):
        texts = _texts(X)
        low, high = self.ngram_range
        if not 1 <= low <= high <= 3:
            raise ValueError("ngram_range must satisfy 1 <= low <= high <= 3")
        rows, codes = char_ngram_codes(texts, (low, high))
        # Document frequency: count each (row, code) pair once.
        order = np.lexsort((codes, rows))
        rows, codes = rows[order], codes[order]
        first = np.ones(len(codes), dtype=bool)
        first[1:] = (codes[1:] != codes[:-1]) | (rows[1:] != rows[:-1])
        vocabulary, df = np.unique(codes[first], return_counts=True)
        keep = (df >= self.min_df) & (df <= self.max_df * max(len(texts), 1))
        vocabulary, df = vocabulary[keep], df[keep]
        if self.max_features is not None and len(vocabulary) > self.max_features:
            top = np.sort(np.argsort(-df, kind="stable")[: self.max_features])
            vocabulary = vocabulary[top]
        if len(vocabulary) == 0:
            raise ValueError("no character n-gram occurs often enough: lower min_df or add data")
        self.vocabulary_ = vocabulary
        return self

    def transform(self, X) -> sp.csr_matrix:
        texts = _texts(X)
        rows, codes = char_ngram_codes(texts, tuple(self.ngram_range))
        index = np.searchsorted(self.vocabulary_, codes)
        index[index == len(self.vocabulary_)] = 0
        hit = self.vocabulary_[index] == codes
        counts = sp.csr_matrix((np.ones(int(hit.sum()), dtype=np.float64), (rows[hit], index[hit])),
                               shape=(len(texts), len(self.vocabulary_)))
        counts.sum_duplicates()
        return counts

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([decode_char_ngram(int(code)) for code in self.vocabulary_], dtype=object)


class FlooredL2Norm(TransformerMixin, BaseEstimator):
    """Divides each row by ``max(its L2 norm, floor)``; the floor is a quantile of the fitted rows' norms."""

    def __init__(self, quantile: float = 0.5):
        self.quantile = quantile

    def fit(self, X, y=None):
        if not 0.0 <= self.quantile <= 1.0:
            raise ValueError("quantile must be between 0 and 1")
        norms = row_norms(X)
        norms = norms[norms > 0]
        self.floor_ = float(np.quantile(norms, self.quantile)) if len(norms) else 1.0
        return self

    def transform(self, X) -> sp.csr_matrix:
        scale = 1.0 / np.maximum(row_norms(X), self.floor_)
        return sp.csr_matrix(sp.diags(scale.astype(X.dtype)) @ X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def _texts(X) -> list[str]:
    return [doc.text if isinstance(doc, Doc) else doc for doc in X]


def make_featurizer(params) -> Pipeline:
    """The unfitted featurizer the config describes: word and character n-gram TF-IDF, then normalisation."""
    cfg = params.features
    floored = cfg.norm_floor_quantile is not None
    block_norm = None if floored else "l2"
    words = TfidfVectorizer(analyzer=TokenNgrams(cfg.word_ngrams), lowercase=False, token_pattern=None,
                            min_df=cfg.min_df, max_df=cfg.max_df, sublinear_tf=cfg.sublinear_tf, norm=block_norm,
                            dtype=np.float32)
    chars = Pipeline([
        ("count", CharNgramCounter(ngram_range=cfg.char_ngrams, min_df=cfg.min_df, max_df=cfg.max_df,
                                   max_features=cfg.max_char_features)),
        ("tfidf", TfidfTransformer(sublinear_tf=cfg.sublinear_tf, norm=block_norm)),
    ])
    union = FeatureUnion([("words", words), ("chars", chars)])
    norm = FlooredL2Norm(cfg.norm_floor_quantile) if floored else "passthrough"
    return Pipeline([("ngrams", union), ("norm", norm)])


def docs_of(frame) -> list[Doc]:
    """The :class:`Doc` of each row of a segmented table (columns ``norm`` and ``tokens``)."""
    return [Doc(text, tuple(tokens)) for text, tokens in zip(frame["norm"], frame["tokens"], strict=True)]


def training_posts(labeled, background):
    """The posts the featurizer is fitted on: the training split of the labeled and of the background posts."""
    import pandas as pd

    return pd.concat([labeled[labeled["split"] == "train"], background[background["split"] == "train"]])


def feature_names(featurizer: Pipeline) -> np.ndarray:
    return featurizer.get_feature_names_out()


def main(argv: list[str] | None = None) -> None:
    """Stage ``featurize``: fit the feature extractors on the training posts (labeled and background)."""
    import joblib

    from pipeline import io
    from pipeline.config import load_params

    args = io.stage_args("Fit the word and character n-gram features on the training split.", argv)
    params = load_params(args.params)
    folder = params.root_path(params.paths.segmented)
    labeled = io.read_table(folder / "labeled.parquet")
    background = io.read_table(folder / "background.parquet")
    train = training_posts(labeled, background)
    featurizer = make_featurizer(params).fit(docs_of(train))
    with io.atomic_path(params.root_path(params.paths.featurizer)) as tmp:
        joblib.dump(featurizer, tmp)
    blocks = {name: len(step.get_feature_names_out())
              for name, step in featurizer.named_steps["ngrams"].transformer_list}
    io.write_json({"training_posts": int(len(train)), "features": blocks, "total": sum(blocks.values())},
                  params.root_path(params.paths.features_report))
    log.info("fitted on %d posts: %s", len(train), blocks)


if __name__ == "__main__":
    from pipeline.errors import cli_entry
    from pipeline.features import main as stage_main  # the importable module, so pickled classes resolve on load

    raise SystemExit(cli_entry(stage_main)())
