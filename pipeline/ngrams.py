"""Word and character n-grams as integer codes, with NumPy only: shared by training and scoring.

A batch of posts becomes one array of symbols (code points for characters, token ids for words), with a 0
wherever no n-gram may pass (between posts, at a space, at an unknown token). An n-gram's code packs up to three
symbols of 21 bits each: s for a unigram, s1<<21|s2 for a bigram, s1<<42|s2<<21|s3 for a trigram. Symbols are
never 0, so codes of different lengths cannot collide. A vocabulary is a sorted array of codes, looked up with a
binary search, so counting a batch needs no Python loop per n-gram and no hash table to build at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

BITS = 21  # every Unicode code point fits in 21 bits, so three of them fit in one int64
MASK = (1 << BITS) - 1


def ngram_codes(symbols: np.ndarray, doc_of: np.ndarray,
                ngram_range: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The n-grams of a batch of symbol sequences as (row, code) arrays; ``doc_of`` gives each symbol's row."""
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
            code = (code << BITS) | nxt
        rows.append(doc_of[: len(symbols) - n + 1][valid])
        codes.append(code[valid])
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(codes)


def decode_ngram(code: int) -> list[int]:
    """The symbols packed in an n-gram code, first to last."""
    symbols = []
    while code:
        symbols.append(code & MASK)
        code >>= BITS
    return symbols[::-1]


def decode_char_ngram(code: int) -> str:
    return "".join(map(chr, decode_ngram(code)))


def char_symbols(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Code points of the texts one after another, 0 between texts and at spaces; and each position's row."""
    if not texts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    joined = "\0".join(texts)
    if joined.count("\0") != len(texts) - 1:  # a NUL inside a text would shift every later row
        joined = "\0".join(text.replace("\0", " ") for text in texts)
    points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(np.int64)
    doc_of = np.cumsum(points == 0)  # row of each position: separators seen before it
    points[points == 0x20] = 0  # a space separates like NUL: no n-gram spans two words
    return points, doc_of


def word_symbols(token_lists: Sequence[Sequence[str]],
                 token_id: Callable[[str, int], int]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of the posts one after another (``token_id(token, 0)``: 0 for an unknown token), 0 after each
    post; and each position's row."""
    lengths = np.array([len(tokens) + 1 for tokens in token_lists], dtype=np.int64)  # +1: the separator
    symbols = np.zeros(int(lengths.sum()), dtype=np.int64)
    words = np.ones(len(symbols), dtype=bool)
    words[np.cumsum(lengths) - 1] = False
    symbols[words] = [token_id(token, 0) for tokens in token_lists for token in tokens]
    return symbols, np.repeat(np.arange(len(token_lists)), lengths)


def document_frequency(rows: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes, sorted, and how many rows hold each (each (row, code) pair counted once)."""
    order = np.lexsort((codes, rows))
    rows, codes = rows[order], codes[order]
    first = np.ones(len(codes), dtype=bool)
    first[1:] = (codes[1:] != codes[:-1]) | (rows[1:] != rows[:-1])
    return np.unique(codes[first], return_counts=True)


def lookup(vocabulary: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each code's column in a sorted vocabulary, or -1 where it is not in it."""
    if len(vocabulary) == 0:
        return np.full(len(codes), -1, dtype=np.int64)
    index = np.searchsorted(vocabulary, codes)
    index[index == len(vocabulary)] = 0
    return np.where(vocabulary[index] == codes, index, -1)


def counts(rows: np.ndarray, columns: np.ndarray, n_columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, count) of the distinct pairs among ``columns >= 0``, sorted by row, then column."""
    hit = columns >= 0
    keys, tally = np.unique(rows[hit] * n_columns + columns[hit], return_counts=True)
    return keys // n_columns, keys % n_columns, tally.astype(np.float64)
