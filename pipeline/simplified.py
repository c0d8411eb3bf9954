"""Traditional to simplified Chinese with OpenCC ``t2s``: the conversion normalised text, the word tables and the
keyword baseline all use."""

from __future__ import annotations

_SHARED: list = []


def converter():
    """The process's one OpenCC t2s converter, built on first use: it costs time, and a model may switch t2s off
    (the Normalizer, the word tables and the functions below all share it)."""
    if not _SHARED:
        import opencc  # imported lazily: the model may be loaded where t2s is switched off

        _SHARED.append(opencc.OpenCC("t2s"))
    return _SHARED[0]


def to_simplified(text: str) -> str:
    """The text with traditional characters converted to simplified (OpenCC t2s)."""
    return converter().convert(text) if text else text


def has_traditional(text: str) -> bool:
    """True when OpenCC's t2s would change the text: the post uses traditional characters."""
    return isinstance(text, str) and bool(text) and to_simplified(text) != text
