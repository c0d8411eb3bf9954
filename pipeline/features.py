"""Features of a segmented post, and the ``featurize`` stage that fits them on the training split.

Two TF-IDF weighted blocks side by side:

* ``words``: jieba tokens and token bigrams (:class:`WordNgramCounter`). One-character words (被, 约, 查) are
  kept, unlike scikit-learn's default ``token_pattern``.
* ``chars``: character 1–3-grams of the normalised text (:class:`CharNgramCounter`), robust to homophones,
  variant characters and segmentation errors.

Both counters turn a whole batch of posts into integer n-gram codes with NumPy and look them up in one hash
table, then scikit-learn's ``TfidfTransformer`` weights them. They count exactly what ``CountVectorizer`` would
(tests/test_features.py checks it) several times faster: building n-gram strings and counting them in Python, as
``CountVectorizer`` does, cost more than segmenting with rjieba.

Normalisation (``features.norm_floor_quantile``). Plain L2 normalisation turns a one-character post such as
``被`` into a unit vector on that one feature, as strong as a whole paragraph of evidence: the model then gave
``被`` alone a police_warning probability of 1.0. With a floor, each row (both blocks together) is divided by
``max(norm, floor)``, where the floor is that quantile of the training posts' norms: a post with enough text is
L2-normalised as usual, and a post with little text keeps its small raw norm, so it carries little evidence.
``null`` keeps plain per-block L2 normalisation.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.utils.extmath import row_norms

from pipeline.segment import Doc

log = logging.getLogger(__name__)

_BITS = 21  # every Unicode code point fits in 21 bits, so three of them fit in one int64
_MASK = (1 << _BITS) - 1


def ngram_codes(symbols: np.ndarray, doc_of: np.ndarray,
                ngram_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The n-grams of a batch of symbol sequences as (row, code) arrays.

    ``symbols`` holds every post's symbols (code points, or token ids) one after another, each below 2**21, with a
    0 wherever no n-gram may pass (between posts, at a space, at an unknown token); ``doc_of`` gives each position's
    row. A code packs up to three symbols: s for a unigram, s1<<21|s2 for a bigram, s1<<42|s2<<21|s3 for a trigram.
    Symbols are never 0, so codes of different lengths cannot collide.
    """
    rows, codes = [], []
    low, high = ngram_range
    for n in range(low, high + 1):
        if len(symbols) < n:
            continue
        code = symbols[: len(symbols) - n + 1].copy()
        valid = code != 0
        for k in range(1, n):
            nxt = symbols[k: len(symbols) - n + 1 + k]
            valid &= nxt != 0
            code = (code << _BITS) | nxt
        rows.append(doc_of[: len(symbols) - n + 1][valid])
        codes.append(code[valid])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(codes)


def decode_ngram(code: int) -> list[int]:
    """The symbols packed in an n-gram code, first to last."""
    symbols = []
    while code:
        symbols.append(code & _MASK)
        code >>= _BITS
    return symbols[::-1]


def decode_char_ngram(code: int) -> str:
    return "".join(map(chr, decode_ngram(code)))


class _NgramCounter(TransformerMixin, BaseEstimator):
    """Counts n-grams of integer symbols against a vocabulary of n-gram codes fitted on the training posts.

    Subclasses turn a batch of posts into symbols (:meth:`_symbols`). Counting is NumPy over the whole batch, and
    the vocabulary look-up one hash-table probe per n-gram (a pandas Index), with no Python loop per n-gram.
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
        rows, codes = ngram_codes(*self._symbols(posts), (low, high))
        vocabulary, df = _document_frequency(rows, codes)
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
        rows, codes = ngram_codes(*self._symbols(posts), tuple(self.ngram_range))
        index = self._index().get_indexer(codes)
        hit = index >= 0
        counts = sp.csr_matrix((np.ones(int(hit.sum()), dtype=np.float64), (rows[hit], index[hit])),
                               shape=(len(posts), len(self.vocabulary_)))
        counts.sum_duplicates()
        return counts

    def _index(self):
        # A pandas Index builds its hash table on first use; it is rebuilt per process, never pickled.
        index = self.__dict__.get("_vocabulary_index")
        if index is None:
            import pandas as pd

            index = self.__dict__["_vocabulary_index"] = pd.Index(self.vocabulary_)
        return index

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_vocabulary_index", None)
        return state

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
        texts = [doc.text if isinstance(doc, Doc) else doc for doc in posts]
        if not texts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        joined = "\0".join(texts)
        if joined.count("\0") != len(texts) - 1:  # a NUL inside a text would shift every later row
            joined = "\0".join(text.replace("\0", " ") for text in texts)
        points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
        doc_of = np.cumsum(points == 0)  # row of each position: separators seen before it
        points[points == 0x20] = 0  # a space separates like NUL: no n-gram spans two words
        return points, doc_of

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([decode_char_ngram(int(code)) for code in self.vocabulary_], dtype=object)


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
        return ~((vocabulary <= _MASK) & short[vocabulary & _MASK])

    def _fit_symbols(self, posts):
        tokens = [doc.tokens for doc in posts]
        ids: dict[str, int] = {}
        flat = np.array([ids.setdefault(t, len(ids)) for doc in tokens for t in doc], dtype=np.int64)
        rows = np.repeat(np.arange(len(tokens)), [len(doc) for doc in tokens])
        _, df = _document_frequency(rows, flat)  # every id 0..len(ids)-1 occurs, so df is indexed by id
        common = np.array(list(ids), dtype=object)[df >= self.min_df]
        if len(common) >= _MASK:
            raise ValueError(f"{len(common):,} distinct words is more than word n-gram codes hold: raise min_df")
        self._set_tokens(common)

    def _compact(self, vocabulary):
        # Renumber the tokens of the kept n-grams 1..n; the codes change with them and are sorted again.
        parts = [(vocabulary >> (_BITS * k)) & _MASK for k in range(3)]  # last symbol first; 0 where shorter
        used = np.unique(np.concatenate(parts))
        used = used[used > 0]
        renumber = np.zeros(len(self.tokens_) + 1, dtype=np.int64)
        renumber[used] = np.arange(1, len(used) + 1)
        self._set_tokens(self.tokens_[used - 1])
        return np.sort(sum(renumber[part] << (_BITS * k) for k, part in enumerate(parts)))

    def _set_tokens(self, tokens: np.ndarray) -> None:
        """The token table (token id i + 1 is ``tokens_[i]``); the look-up dict is derived from it when needed."""
        self.tokens_ = tokens
        self.__dict__.pop("_ids", None)

    def _token_ids(self) -> dict[str, int]:
        ids = self.__dict__.get("_ids")
        if ids is None:
            ids = self.__dict__["_ids"] = {token: i + 1 for i, token in enumerate(self.tokens_.tolist())}
        return ids

    def _symbols(self, posts):
        get = self._token_ids().get
        lengths = np.array([len(doc.tokens) + 1 for doc in posts], dtype=np.int64)  # +1: a separator after each
        symbols = np.zeros(int(lengths.sum()), dtype=np.int64)
        ends = np.cumsum(lengths) - 1
        words = np.ones(len(symbols), dtype=bool)
        words[ends] = False
        symbols[words] = [get(t, 0) for doc in posts for t in doc.tokens]
        return symbols, np.repeat(np.arange(len(posts)), lengths)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_ids", None)
        return state

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        tokens = self.tokens_
        return np.array([" ".join(tokens[s - 1] for s in decode_ngram(code)) for code in self.vocabulary_.tolist()],
                        dtype=object)


def _document_frequency(rows: np.ndarray, codes: np.ndarray):
    """The distinct codes, sorted, and how many rows hold each (each (row, code) pair counted once)."""
    order = np.lexsort((codes, rows))
    rows, codes = rows[order], codes[order]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = (codes[1:] != codes[:-1]) | (rows[1:] != rows[:-1])
    return np.unique(codes[first], return_counts=True)


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


def make_featurizer(params) -> Pipeline:
    """The unfitted featurizer the config describes: word and character n-gram TF-IDF, then normalisation."""
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
