"""The keyword baseline: what researchers do today, a search for terms and euphemisms per label.

``configs/lexicon.yaml`` maps each label to its terms. A post's baseline score is the number of distinct
terms it contains, and it is flagged when the score is at least 1. Matching runs on the post converted to
simplified characters and lower-cased, which is kinder to the baseline than a raw keyword search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.files import read_yaml
from pipeline.simplified import to_simplified


def read_lexicon(path: str | Path, labels: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Terms per label; every label must have a non-empty list of strings."""
    path = Path(path)
    raw = read_yaml(path, "lexicon")
    if not isinstance(raw, dict) or not isinstance(raw.get("terms"), dict):
        raise UserError(f"{path}: expected a 'terms' mapping of label to a list of terms")
    terms = raw["terms"]
    lexicon = {}
    for label in labels:
        words = terms.get(label)
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise UserError(f"{path}: terms.{label} must be a non-empty list of terms")
        lexicon[label] = sorted({w.strip().lower() for w in words})
    return lexicon


def keyword_scores(texts: list[str], terms: list[str]) -> np.ndarray:
    """Number of distinct terms found in each raw text, after conversion to simplified and lower case."""
    searched = [to_simplified(text).lower() if isinstance(text, str) else "" for text in texts]
    return np.array([sum(term in text for term in terms) for text in searched], dtype=float)
