"""A post's feature vector at scoring time, with NumPy only: the fitted featurizer's numbers, read from the model file.

Training fits scikit-learn transformers (:mod:`pipeline.features`); the model file keeps what they learned as
plain arrays (the vocabularies of n-gram codes, the word table, idf, the concepts' terms and whether their pairs
count, the normalisation floor), and
:class:`Vectorizer` computes the same vectors from them: counts, sublinear term frequency times idf, then each row
divided by ``max(its L2 norm, floor)`` (or each block by its own L2 norm when there is no floor). A label with a
norm power p below 1 divides by ``max(norm, floor) ** p * floor ** (1 - p)`` instead (:func:`norm_scale`): its
decision is the plain one times ``stretch ** (1 - p)``, where ``stretch = max(norm, floor) / floor`` is kept with the
rows (:class:`SparseRows`), so the vectors are computed once for every label. ``train`` checks
that the two agree on every labeled post.

A batch of vectors is a :class:`SparseRows`: the nonzero (row, column, value) triples, which is all
that scoring and explaining need, so SciPy stays out of the scoring path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipeline import ngrams
from pipeline.concepts import ConceptMatcher
from pipeline.scope import ScopeMarker, readable
from pipeline.segmenter import Doc


def norm_scale(norms: np.ndarray, floor: float, power: float) -> np.ndarray:
    """What each row is multiplied by: ``1 / (max(norm, floor) ** power * floor ** (1 - power))``. A row at or
    below the floor is divided by the floor whatever the power; above it, power 1 is plain L2 normalisation and
    a lower power lets a long row keep more of its length."""
    norms = np.maximum(norms, floor)
    return 1.0 / norms if power == 1 else 1.0 / (norms ** power * floor ** (1.0 - power))


@dataclass
class SparseRows:
    """Nonzero entries of an ``n_rows`` x ``n_columns`` matrix, in no particular order; ``stretch``: each row's
    ``max(norm, floor) / floor`` when the rows were divided by ``max(norm, floor)``."""

    n_rows: int
    n_columns: int
    row: np.ndarray
    column: np.ndarray
    value: np.ndarray
    stretch: np.ndarray | None = None

    def dot(self, weights: np.ndarray) -> np.ndarray:
        """The matrix product with one weight vector per row of ``weights`` (k x n_columns): n_rows x k."""
        out = np.empty((self.n_rows, len(weights)))
        for k, vector in enumerate(weights):
            out[:, k] = np.bincount(self.row, self.value * vector[self.column], minlength=self.n_rows)
        return out

    def row_norms(self) -> np.ndarray:
        return np.sqrt(np.bincount(self.row, self.value * self.value, minlength=self.n_rows))

    def scale_rows(self, scale: np.ndarray) -> None:
        self.value *= scale[self.row]


@dataclass
class Block:
    """One block of features: a sorted vocabulary of n-gram codes, their idf and the n-gram lengths counted."""

    vocabulary: np.ndarray
    idf: np.ndarray
    ngram_range: tuple[int, int]

    def vectors(self, symbols: tuple[np.ndarray, np.ndarray], n_rows: int, sublinear_tf: bool) -> SparseRows:
        rows, codes = ngrams.ngram_codes(*symbols, self.ngram_range)
        row, column, count = ngrams.counts(rows, ngrams.lookup(self.vocabulary, codes), len(self.vocabulary))
        tf = np.log(count) + 1.0 if sublinear_tf else count
        return SparseRows(n_rows, len(self.vocabulary), row, column, tf * self.idf[column])


@dataclass
class ConceptBlock:
    """The concepts' block: each concept's terms (:mod:`pipeline.concepts`) and idf (of each concept, then of
    each pair when ``pairs``); a concept counts once."""

    concepts: tuple[tuple[str, tuple[str, ...]], ...]
    idf: np.ndarray
    pairs: bool = False

    def __post_init__(self):
        self.matcher = ConceptMatcher(self.concepts, self.pairs)
        if self.idf.dtype.kind != "f" or len(self.idf) != self.matcher.n_features:
            raise ValueError("concept_idf does not match the concepts")

    @property
    def width(self) -> int:
        return self.matcher.n_features

    def vectors(self, texts: list[str]) -> SparseRows:
        row, column = self.matcher.presence(texts)
        return SparseRows(len(texts), self.width, row, column, self.idf[column])  # tf 1: log(1) + 1


class Vectorizer:
    """Word n-gram, character n-gram (and concept) TF-IDF of segmented posts, side by side, then normalised."""

    def __init__(self, words: Block, word_tokens: np.ndarray, chars: Block, sublinear_tf: bool,
                 floor: float | None, concepts: ConceptBlock | None = None, scope: ScopeMarker | None = None):
        self.words = words
        self.word_tokens = word_tokens
        self.chars = chars
        self.concepts = concepts
        self.scope = scope
        self.sublinear_tf = sublinear_tf
        self.floor = floor
        self._token_ids = {token: i + 1 for i, token in enumerate(word_tokens.tolist())}
        self._names: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return sum(self._widths())

    def _widths(self) -> list[int]:
        widths = [len(self.words.vocabulary), len(self.chars.vocabulary)]
        return widths + [self.concepts.width] if self.concepts is not None else widths

    def transform(self, texts: list[str], token_lists: list[tuple[str, ...]]) -> SparseRows:
        """The vectors of normalised texts and their tokens."""
        if self.scope is not None:
            docs = self.scope.transform(Doc(text, tokens) for text, tokens in zip(texts, token_lists, strict=True))
            texts, token_lists = [doc.text for doc in docs], [doc.tokens for doc in docs]
        n = len(texts)
        blocks = [self.words.vectors(ngrams.word_symbols(token_lists, self._token_ids.get), n, self.sublinear_tf),
                  self.chars.vectors(ngrams.char_symbols(texts), n, self.sublinear_tf)]
        if self.concepts is not None:
            blocks.append(self.concepts.vectors(texts))
        if self.floor is None:  # each block L2-normalised on its own (an all-zero row stays zero)
            for block in blocks:
                norms = block.row_norms()
                block.scale_rows(1.0 / np.where(norms > 0, norms, 1.0))
        offsets = np.cumsum([0, *self._widths()[:-1]])
        rows = SparseRows(n, self.n_features, np.concatenate([block.row for block in blocks]),
                          np.concatenate([block.column + offset for block, offset in zip(blocks, offsets)]),
                          np.concatenate([block.value for block in blocks]))
        if self.floor is not None:
            norms = np.maximum(rows.row_norms(), self.floor)
            rows.scale_rows(1.0 / norms)
            rows.stretch = norms / self.floor
        return rows

    def feature_names(self) -> np.ndarray:
        """Each column's n-gram: words joined by a space, then characters, then concepts (``<name>``)."""
        if self._names is None:
            tokens = self.word_tokens
            words = [" ".join(tokens[s - 1] for s in ngrams.decode_ngram(code))
                     for code in self.words.vocabulary.tolist()]
            chars = [ngrams.decode_char_ngram(code) for code in self.chars.vocabulary.tolist()]
            concepts = self.concepts.matcher.names if self.concepts is not None else []
            self._names = np.array([readable(name) for name in words + chars] + concepts, dtype=object)
        return self._names

    def settings(self) -> dict[str, Any]:
        concepts = self.concepts
        return {"word_ngrams": list(self.words.ngram_range), "char_ngrams": list(self.chars.ngram_range),
                "sublinear_tf": self.sublinear_tf, "floor": self.floor,
                "concepts": None if concepts is None else [[name, list(terms)] for name, terms in concepts.concepts],
                "concept_pairs": concepts is not None and concepts.pairs,
                "scope": None if self.scope is None else self.scope.settings()}

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"word_tokens": self.word_tokens, "word_vocabulary": self.words.vocabulary,
                  "word_idf": self.words.idf, "char_vocabulary": self.chars.vocabulary, "char_idf": self.chars.idf}
        if self.concepts is not None:
            arrays["concept_idf"] = self.concepts.idf
        return arrays

    @classmethod
    def from_file(cls, settings: dict[str, Any], arrays: dict[str, np.ndarray]) -> Vectorizer:
        """The vectorizer of a model file (a format-2 file has no concepts and no scope marking, a format-3 file no
        concept pairs)."""
        scope = None
        if settings.get("scope") is not None:
            scope = ScopeMarker([str(cue) for cue in settings["scope"]["cues"]], int(settings["scope"]["window"]))
        concepts = None
        if settings.get("concepts") is not None:
            table = tuple((str(name), tuple(str(t) for t in terms)) for name, terms in settings["concepts"])
            concepts = ConceptBlock(table, arrays["concept_idf"], bool(settings.get("concept_pairs", False)))
        return cls(words=Block(arrays["word_vocabulary"], arrays["word_idf"], tuple(settings["word_ngrams"])),
                   word_tokens=arrays["word_tokens"],
                   chars=Block(arrays["char_vocabulary"], arrays["char_idf"], tuple(settings["char_ngrams"])),
                   sublinear_tf=bool(settings["sublinear_tf"]), floor=settings["floor"], concepts=concepts,
                   scope=scope)
