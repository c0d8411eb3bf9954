"""Scope marking: the words right after a negation, a hypothetical or a call are features of their own.

"如果我参选人大代表" and "大家都应该去参选" share every n-gram of a declaration (参选, 参选人大代表), so an n-gram
model reads them as one, however many such posts it has seen as negatives. Marking scope, as sentiment analysis
marks the words after a negation (Das and Chen 2001; Pang, Lee and Vaithyanathan 2002), gives the words after a
cue (如果, 应该, 没, 不…) features apart from the same words asserted: 参选 after 如果 is not 参选. The cues are
``configs/scope_cues.yaml``; the scope is the next ``window`` words. Punctuation is dropped before segmenting
(``normalize.punctuation``), so the scope is counted in words, not clauses, and no restyling moves it.

A word in scope keeps its characters, each shifted by :data:`SHIFT` into planes 5 to 8 of Unicode, where no
character is assigned: its word and character n-grams are then distinct from the plain ones, and both feature
blocks see the mark with no change to how they count. :func:`readable` shows a marked run as ``¬`` and the plain
characters; :func:`plain` undoes the shift (the concepts match plain text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.segmenter import Doc
from pipeline.word_lists import read_word_lists

SHIFT = 0x50000
_LAST_SHIFTABLE = 0x3FFFF  # planes 0 to 3 (every assigned CJK character) shift into the unassigned planes 5 to 8
_SHIFTED = re.compile(f"[{chr(SHIFT)}-{chr(SHIFT + _LAST_SHIFTABLE)}]+")
# ASCII fast path for str.translate, shifting what the general path shifts: everything but whitespace.
_SHIFT_TABLE = {code: code + SHIFT for code in range(0x80) if not chr(code).isspace()}


def read_cues(path: str | Path) -> tuple[str, ...]:
    """The scope cues (``kind: [word, …]``) as one sorted tuple of words, simplified and lower case."""
    return tuple(sorted({cue for cues in read_word_lists(path, "scope cue list", "kind of cue").values()
                         for cue in cues}))


def shift(word: str) -> str:
    """The word as it appears in scope."""
    if word.isascii():
        return word.translate(_SHIFT_TABLE)
    return "".join(chr(ord(c) + SHIFT) if ord(c) <= _LAST_SHIFTABLE and not c.isspace() else c for c in word)


def plain(text: str) -> str:
    """The text with every marked character shifted back."""
    if not text or max(text) < chr(SHIFT):
        return text
    return _SHIFTED.sub(lambda m: "".join(chr(ord(c) - SHIFT) for c in m.group(0)), text)


def readable(name: str) -> str:
    """A feature name with each marked run shown as ``¬`` and its plain characters."""
    if not name or max(name) < chr(SHIFT):
        return name
    return _SHIFTED.sub(lambda m: "¬" + plain(m.group(0)), name)


class ScopeMarker:
    """Marks the ``window`` words after each cue in a batch of :class:`Doc`; stateless, a pipeline step in
    training (fit does nothing) and part of the vectorizer at scoring."""

    def __init__(self, cues: Sequence[str] = (), window: int = 3):
        self.cues = tuple(cues)
        self.window = int(window)

    def settings(self) -> dict:
        return {"cues": list(self.cues), "window": self.window}

    def get_params(self, deep: bool = True) -> dict:
        return {"cues": self.cues, "window": self.window}

    def set_params(self, **params) -> ScopeMarker:
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def fit(self, X=None, y=None) -> ScopeMarker:
        return self

    def transform(self, X: Iterable[Doc]) -> list[Doc]:
        cues = frozenset(self.cues)
        return [self.mark(doc, cues) for doc in X]

    def mark(self, doc: Doc, cues: frozenset) -> Doc:
        text, tokens = doc
        if not cues.intersection(tokens):
            return doc
        marked_tokens, pieces, position, left = [], [], 0, 0
        for token in tokens:
            if left > 0:
                found = text.find(token, position)
                if found >= 0:  # tokens are substrings of the text, in order
                    pieces.append(text[position:found])
                    pieces.append(shift(token))
                    position = found + len(token)
                marked_tokens.append(shift(token))
                left -= 1
            else:
                marked_tokens.append(token)
            if token in cues:
                left = self.window
        pieces.append(text[position:])
        return Doc("".join(pieces), tuple(marked_tokens))


def make_scope_marker(params) -> ScopeMarker | None:
    """The marker the config describes (``features.scope_window``; 0: no marking)."""
    window = params.features.scope_window
    if not window:
        return None
    return ScopeMarker(read_cues(params.root_path(params.paths.scope_cues)), window)
