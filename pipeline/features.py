"""The features of a segmented post as scikit-learn transformers, fitted in training (``featurize`` stage).

TF-IDF weighted blocks side by side:

* ``words``: jieba tokens and token bigrams (:class:`WordNgramCounter`). One-character words (被, 约, 查) are
  kept, unlike scikit-learn's default ``token_pattern``.
* ``chars``: character n-grams of the normalised text (:class:`CharNgramCounter`), robust to homophones,
  variant characters and segmentation errors.
* ``concepts`` (``features.concepts``): one feature per class of words of ``configs/concepts.yaml``, present when
  the post uses any of its words (:class:`ConceptCounter`, :mod:`pipeline.concepts`); with
  ``features.concept_pairs``, one more for each two classes the post uses together.

With ``features.scope_window``, the words after a negation, hypothetical or call are marked first
(:mod:`pipeline.scope`), so the word and character n-grams in scope are features of their own.

Both counters turn a whole batch of posts into integer n-gram codes with NumPy (:mod:`pipeline.ngrams`) and
look them up in a sorted vocabulary, then scikit-learn's ``TfidfTransformer`` weights them. They count exactly
what ``CountVectorizer`` would (tests/test_features.py checks it) several times faster: building n-gram strings
and counting them in Python, as ``CountVectorizer`` does, cost more than segmenting with rjieba.

Normalisation (``features.norm_floor_quantile``). Plain L2 normalisation turns a one-character post such as
``被`` into a unit vector on that one feature, as strong as a whole paragraph of evidence: the model then gave
``被`` alone a police_warning probability of 1.0. With a floor, each row (both blocks together) is divided by
``max(norm, floor)``, where the floor is that quantile of the training posts' norms: a post with enough text is
L2-normalised as usual, and a post with little text keeps its small raw norm, so it carries little evidence.
``null`` keeps plain per-block L2 normalisation.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.extmath import row_norms

from pipeline import ngrams
from pipeline.concepts import ConceptMatcher, read_concepts
from pipeline.scope import make_scope_marker
from pipeline.segmenter import Doc
from pipeline.vectors import norm_scale


class _NgramCounter(TransformerMixin, BaseEstimator):
    """Counts n-grams of integer symbols against a vocabulary of n-gram codes fitted on the training posts.

    Subclasses turn a batch of posts into symbols (:meth:`_symbols`); counting is NumPy over the whole batch.
    """

    _unit = "symbol"  # what an n-gram is made of, for messages

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), min_df: int = 2, max_df: float = 1.0,
                 max_features: int | None = None):
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def fit(self, X, y=None):
        low, high = self.ngram_range
        if not 1 <= low <= high <= 3:
            raise ValueError("ngram_range must satisfy 1 <= low <= high <= 3")
        posts = list(X)
        self._fit_symbols(posts)
        rows, codes = ngrams.ngram_codes(*self._symbols(posts), (low, high))
        vocabulary, df = ngrams.document_frequency(rows, codes)
        keep = (df >= self.min_df) & (df <= self.max_df * max(len(posts), 1)) & self._allowed(vocabulary)
        vocabulary, df = vocabulary[keep], df[keep]
        if self.max_features is not None and len(vocabulary) > self.max_features:
            top = np.sort(np.argsort(-df, kind="stable")[: self.max_features])
            vocabulary = vocabulary[top]
        if len(vocabulary) == 0:
            raise ValueError(f"no {self._unit} n-gram occurs often enough: lower min_df or add data")
        self.vocabulary_ = self._compact(vocabulary)
        return self

    def transform(self, X) -> sp.csr_matrix:
        posts = list(X)
        rows, codes = ngrams.ngram_codes(*self._symbols(posts), tuple(self.ngram_range))
        row, column, count = ngrams.counts(rows, ngrams.lookup(self.vocabulary_, codes), len(self.vocabulary_))
        return sp.csr_matrix((count, (row, column)), shape=(len(posts), len(self.vocabulary_)))

    def _fit_symbols(self, posts: list) -> None:
        """Learn whatever :meth:`_symbols` needs before the vocabulary is counted."""

    def _allowed(self, vocabulary: np.ndarray) -> np.ndarray:
        """Which n-gram codes may enter the vocabulary, whatever their frequency."""
        return np.ones(len(vocabulary), dtype=bool)

    def _symbols(self, posts: list) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _compact(self, vocabulary: np.ndarray) -> np.ndarray:
        return vocabulary


class CharNgramCounter(_NgramCounter):
    """Counts character n-grams of :class:`Doc` texts (or plain strings); symbols are code points."""

    _unit = "character"

    def _symbols(self, posts):
        return ngrams.char_symbols([doc.text if isinstance(doc, Doc) else doc for doc in posts])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([ngrams.decode_char_ngram(int(code)) for code in self.vocabulary_], dtype=object)


class WordNgramCounter(_NgramCounter):
    """Counts word n-grams of :class:`Doc` tokens; one-character words (被, 约, 查) are kept.

    Symbols are token ids. Fitting numbers the tokens seen in at least ``min_df`` training posts (a rarer token
    cannot be part of a kept n-gram), then keeps only the tokens of the kept n-grams. A token missing from that
    table breaks n-grams like the end of a post: no n-gram containing it is in the vocabulary anyway.
    """

    _unit = "word"

    def __init__(self, ngram_range: tuple[int, int] = (1, 3), min_df: int = 2, max_df: float = 1.0,
                 max_features: int | None = None, min_unigram_chars: int = 1):
        super().__init__(ngram_range=ngram_range, min_df=min_df, max_df=max_df, max_features=max_features)
        self.min_unigram_chars = min_unigram_chars

    def _allowed(self, vocabulary):
        # A one-character word (被, 我, 了) alone is a feature only when min_unigram_chars allows it; inside a word
        # bigram (被 带走) it always counts. Single characters as features mostly carry a writer's habits.
        if self.min_unigram_chars <= 1:
            return super()._allowed(vocabulary)
        short = np.array([0] + [len(t) < self.min_unigram_chars for t in self.tokens_.tolist()], dtype=bool)
        return ~((vocabulary <= ngrams.MASK) & short[vocabulary & ngrams.MASK])

    def _fit_symbols(self, posts):
        tokens = [doc.tokens for doc in posts]
        ids: dict[str, int] = {}
        flat = np.array([ids.setdefault(t, len(ids)) for doc in tokens for t in doc], dtype=np.int64)
        rows = np.repeat(np.arange(len(tokens)), [len(doc) for doc in tokens])
        _, df = ngrams.document_frequency(rows, flat)  # every id 0..len(ids)-1 occurs, so df is indexed by id
        common = np.array(list(ids), dtype=object)[df >= self.min_df]
        if len(common) >= ngrams.MASK:
            raise ValueError(f"{len(common):,} distinct words is more than word n-gram codes hold: raise min_df")
        self._set_tokens(common)

    def _compact(self, vocabulary):
        # Renumber the tokens of the kept n-grams 1..n; the codes change with them and are sorted again.
        parts = [(vocabulary >> (ngrams.BITS * k)) & ngrams.MASK for k in range(3)]  # last symbol first
        used = np.unique(np.concatenate(parts))
        used = used[used > 0]
        renumber = np.zeros(len(self.tokens_) + 1, dtype=np.int64)
        renumber[used] = np.arange(1, len(used) + 1)
        self._set_tokens(self.tokens_[used - 1])
        return np.sort(sum(renumber[part] << (ngrams.BITS * k) for k, part in enumerate(parts)))

    def _set_tokens(self, tokens: np.ndarray) -> None:
        """The token table (token id i + 1 is ``tokens_[i]``) and the look-up dict derived from it."""
        self.tokens_ = tokens
        self.token_ids_ = {token: i + 1 for i, token in enumerate(tokens.tolist())}

    def _symbols(self, posts):
        return ngrams.word_symbols([doc.tokens for doc in posts], self.token_ids_.get)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        tokens = self.tokens_
        return np.array([" ".join(tokens[s - 1] for s in ngrams.decode_ngram(code))
                         for code in self.vocabulary_.tolist()], dtype=object)


class ConceptCounter(TransformerMixin, BaseEstimator):
    """1 where a post's normalised text has one of a concept's terms (:mod:`pipeline.concepts`), else 0; with
    ``pairs``, also 1 for each two concepts it has together."""

    def __init__(self, concepts: tuple = (), pairs: bool = False):
        self.concepts = concepts
        self.pairs = pairs

    def fit(self, X, y=None):
        if not self.concepts:
            raise ValueError("no concepts to count")
        self.matcher_ = ConceptMatcher(self.concepts, self.pairs)
        return self

    def transform(self, X) -> sp.csr_matrix:
        texts = [doc.text if isinstance(doc, Doc) else doc for doc in X]
        row, column = self.matcher_.presence(texts)
        return sp.csr_matrix((np.ones(len(row)), (row, column)), shape=(len(texts), self.matcher_.n_features))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array(self.matcher_.names, dtype=object)


class FlooredL2Norm(TransformerMixin, BaseEstimator):
    """Divides each row by ``max(its L2 norm, floor) ** power * floor ** (1 - power)``; the floor is a quantile of
    the fitted rows' norms. With ``power`` 1 that is ``max(norm, floor)``."""

    def __init__(self, quantile: float = 0.5, power: float = 1.0):
        self.quantile = quantile
        self.power = power

    def fit(self, X, y=None):
        if not 0.0 <= self.quantile <= 1.0:
            raise ValueError("quantile must be between 0 and 1")
        norms = row_norms(X)
        norms = norms[norms > 0]
        self.floor_ = float(np.quantile(norms, self.quantile)) if len(norms) else 1.0
        return self

    def transform(self, X) -> sp.csr_matrix:
        scale = norm_scale(row_norms(X), self.floor_, self.power)
        return sp.csr_matrix(sp.diags(scale.astype(X.dtype)) @ X)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


def make_featurizer(params) -> Pipeline:
    """The unfitted featurizer the config describes: word and character n-gram TF-IDF, and the concepts' when
    ``features.concepts`` is on (each block L2-normalised when there is no floor; otherwise raw, and each label's
    classifier normalises rows its own way)."""
    cfg = params.features
    floored = cfg.norm_floor_quantile is not None
    block_norm = None if floored else "l2"
    words = Pipeline([
        ("count", WordNgramCounter(ngram_range=cfg.word_ngrams, min_df=cfg.min_df, max_df=cfg.max_df,
                                   min_unigram_chars=cfg.min_word_chars)),
        ("tfidf", TfidfTransformer(sublinear_tf=cfg.sublinear_tf, norm=block_norm)),
    ])
    chars = Pipeline([
        ("count", CharNgramCounter(ngram_range=cfg.char_ngrams, min_df=cfg.min_df, max_df=cfg.max_df,
                                   max_features=cfg.max_char_features)),
        ("tfidf", TfidfTransformer(sublinear_tf=cfg.sublinear_tf, norm=block_norm)),
    ])
    blocks = [("words", words), ("chars", chars)]
    if cfg.concepts:
        concepts = read_concepts(params.root_path(params.paths.concepts))
        blocks.append(("concepts", Pipeline([
            ("count", ConceptCounter(concepts, cfg.concept_pairs)),
            ("tfidf", TfidfTransformer(sublinear_tf=cfg.sublinear_tf, norm=block_norm)),
        ])))
    marker = make_scope_marker(params)
    return Pipeline(([("scope", marker)] if marker is not None else []) + [("ngrams", FeatureUnion(blocks))])


def make_norm(params, label: str):
    """The label's row normalisation, fitted with its classifier: the floored norm, or nothing when each block is
    L2-normalised on its own (``features.norm_floor_quantile: null``)."""
    cfg = params.features
    if cfg.norm_floor_quantile is None:
        return "passthrough"
    return FlooredL2Norm(cfg.norm_floor_quantile, cfg.power(label))


def docs_of(frame) -> list[Doc]:
    """The :class:`Doc` of each row of a segmented table (columns ``norm`` and ``tokens``)."""
    return [Doc(text, tuple(tokens)) for text, tokens in zip(frame["norm"], frame["tokens"], strict=True)]


def training_posts(labeled, background):
    """The posts the featurizer is fitted on: the training split of the labeled and of the background posts."""
    import pandas as pd

    return pd.concat([labeled[labeled["split"] == "train"], background[background["split"] == "train"]])
