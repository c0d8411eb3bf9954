"""The project's word tables in configs/ (the concepts, the scope cues, the aliases), read into the form normalised
text has: simplified characters, lower case, each word once."""

from __future__ import annotations

from pipeline.errors import UserError
from pipeline.files import read_yaml
from pipeline.simplified import to_simplified


def read_word_lists(path, what: str, key: str) -> dict[str, tuple[str, ...]]:
    """A YAML mapping of a ``key`` to a non-empty list of words (the concept table, the scope cues), the words
    stripped, in simplified characters and lower case as normalised text has them, each once, in file order;
    anything else is a UserError."""
    raw = read_yaml(path, what)
    if not isinstance(raw, dict) or not raw:
        raise UserError(f"{path}: expected a mapping of a {key} to a list of words")
    lists = {}
    for name, words in raw.items():
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise UserError(f"{path}: {name!r} must map to a non-empty list of words")
        lists[name] = tuple(dict.fromkeys(to_simplified(w.strip()).lower() for w in words))
    return lists


def read_aliases(path) -> tuple[tuple[str, str], ...]:
    """The alias table (``canonical: [alias, …]``) as sorted (alias, canonical) pairs, aliases in simplified
    characters and lower case as they are matched; a malformed table or an alias given twice is a UserError."""
    raw = read_yaml(path, "alias table")
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of a plain word to a list of its aliases")
    pairs: dict[str, str] = {}
    for canonical, aliases in raw.items():
        if not isinstance(canonical, str) or not isinstance(aliases, list) or not all(
                isinstance(a, str) and a.strip() for a in aliases):
            raise UserError(f"{path}: {canonical!r} must map to a list of aliases (strings)")
        for alias in aliases:
            key = to_simplified(alias.strip()).lower()
            if key in pairs:
                raise UserError(f"{path}: alias {alias!r} is given twice")
            pairs[key] = canonical
    return tuple(sorted(pairs.items()))
