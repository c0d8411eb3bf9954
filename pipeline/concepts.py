"""Concept features: one feature per class of words the labeling guide names (``configs/concepts.yaml``).

A post has a concept when its normalised text contains any of the concept's terms. The n-gram features learn one
weight per word, so a word the training posts rarely use carries little evidence, however plain its meaning: an
ordinary crime named by a word no writer used (聚赌, where the corpus says 盗窃). A concept pools its terms, so
what the model learns from the posts that use some of them carries over to the rest. The model still learns each
concept's weight, per label, from the data; the table only says which words belong together.

With ``pairs``, every two concepts found in the same post are a feature too (``<police>+<speech_cause>``): an
n-gram model adds up the evidence of each word on its own, so a post that names the police, or speech, or an
election, looks a little like a report of each; the pair says they were named together, which is what the guide's
definitions ask for (an actor, an act and its cause; a person and a campaign act).

Matching runs on the normalised text (:mod:`pipeline.text`): simplified characters, lower case, no punctuation,
aliases written as the plain word; so terms are read in the same form and may not hold punctuation or spaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.scope import plain
from pipeline.word_lists import read_word_lists

# How a concept's feature is shown in explanations and reports.
NAME_FORMAT = "<{}>"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLAIN = re.compile(r"^[^\W_]+$")  # letters and digits only: what normalised text keeps


def read_concepts(path: str | Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The concept table (``name: [term, …]``) as (name, terms) pairs in file order, terms in simplified
    characters and lower case; a malformed table is a UserError."""
    concepts = read_word_lists(path, "concept table", "concept name")
    for name, terms in concepts.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise UserError(f"{path}: concept name {name!r} must be lower-case letters, digits and _")
        bad = [term for term in terms if not _PLAIN.match(term)]
        if bad:
            raise UserError(f"{path}: term {bad[0]!r} of concept {name!r} must be letters and digits only "
                            "(terms are matched on normalised text, which has no punctuation or spaces)")
    return tuple(concepts.items())


class ConceptMatcher:
    """Finds which concepts each text has: one compiled alternation per concept; with ``pairs``, also which two
    concepts it has together (one column per pair, after the concepts' own, in :func:`itertools.combinations`
    order)."""

    def __init__(self, concepts: Sequence[tuple[str, Sequence[str]]], pairs: bool = False):
        self.concepts = tuple((str(name), tuple(terms)) for name, terms in concepts)
        self.pairs = pairs
        self._patterns = [re.compile("|".join(map(re.escape, sorted(terms, key=len, reverse=True))))
                          for _, terms in self.concepts]
        self._pairs = np.array(list(combinations(range(len(self.concepts)), 2)) if pairs else [],
                               dtype=np.int64).reshape(-1, 2)

    @property
    def names(self) -> list[str]:
        names = [NAME_FORMAT.format(name) for name, _ in self.concepts]
        return names + [f"{names[a]}+{names[b]}" for a, b in self._pairs]

    @property
    def n_features(self) -> int:
        return len(self.concepts) + len(self._pairs)

    def presence(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, column) of every concept (and pair) found, sorted by row, then column (words in scope count as
        written: :mod:`pipeline.scope`)."""
        texts = [plain(text) for text in texts]
        found = np.zeros((len(texts), len(self.concepts)), dtype=bool)
        for column, pattern in enumerate(self._patterns):
            search = pattern.search
            found[[i for i, text in enumerate(texts) if search(text)], column] = True
        if len(self._pairs):
            found = np.hstack([found, found[:, self._pairs[:, 0]] & found[:, self._pairs[:, 1]]])
        row, column = np.nonzero(found)  # row-major: sorted as promised
        return row.astype(np.int64), column.astype(np.int64)
