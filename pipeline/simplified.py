"""Traditional to simplified Chinese with OpenCC ``t2s``: the conversion normalised text, the word tables and the
keyword baseline all use."""

from __future__ import annotations


def converter():
    """A new OpenCC t2s converter (a Normalizer builds its own on first use; the functions below share one)."""
    import opencc  # imported lazily: the model may be loaded where t2s is switched off

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """The text with traditional characters converted to simplified (OpenCC t2s)."""
    return _shared_converter().convert(text) if text else text


def has_traditional(text: str) -> bool:
    """True when OpenCC's t2s would change the text: the post uses traditional characters."""
    return isinstance(text, str) and bool(text) and to_simplified(text) != text


_SHARED: list = []


def _shared_converter():
    if not _SHARED:
        _SHARED.append(converter())
    return _SHARED[0]
