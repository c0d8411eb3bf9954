"""Segmenting normalised posts into words with jieba (or its Rust port rjieba).

The model file stores the :class:`Segmenter`'s settings (the backend, the HMM setting and the user dictionary's
words), so predict segments exactly as training did. jieba's dictionary cache goes to an explicit
folder of the project (``paths.jieba_cache``), never ``/tmp/jieba.cache``; jieba writes it atomically
(temporary file, then rename), so concurrent processes cannot corrupt it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from pipeline.errors import UserError

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
BACKENDS = ("jieba", "rjieba")
# A token is kept when it holds a letter or digit, a placeholder or an emoji; bare punctuation is dropped.
_WORDLIKE = re.compile(r"[^\W_]|[\ue001-\ue004]|[\u2600-\u27bf\U0001f000-\U0001faff]")


class Doc(NamedTuple):
    """A normalised post and its tokens: what the feature extractors read."""

    text: str
    tokens: tuple[str, ...]


def read_user_dict(path: str | Path) -> tuple[tuple[str, int], ...]:
    """Read a jieba user dictionary (``word frequency [tag]`` per line, ``#`` comments) into (word, freq) pairs.

    Frequencies are required, so that jieba and rjieba weigh each word identically.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"user dictionary not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read user dictionary {path}: {err}") from None
    words: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            raise UserError(f"{path}:{number}: expected 'word frequency [tag]', got {line!r}")
        words[parts[0]] = int(parts[1])
    return tuple(sorted(words.items()))


class Segmenter:
    """Stateless: normalised strings in, :class:`Doc` (text and word tokens) out. The tokenizer is built on
    first use in each process."""

    def __init__(self, backend: str = "jieba", hmm: bool = True, user_words: Sequence[tuple[str, int]] = (),
                 cache_dir: str = ".cache/jieba"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.hmm = bool(hmm)
        self.user_words = tuple((str(word), int(freq)) for word, freq in user_words)
        self.cache_dir = cache_dir
        self._cut = None

    def settings(self) -> dict[str, Any]:
        """What decides the tokens, as JSON-ready values (the cache folder does not)."""
        return {"backend": self.backend, "hmm": self.hmm, "user_words": [list(pair) for pair in self.user_words]}

    @classmethod
    def from_settings(cls, settings: dict[str, Any], cache_dir: str = ".cache/jieba") -> Segmenter:
        return cls(backend=settings["backend"], hmm=settings["hmm"],
                   user_words=[tuple(pair) for pair in settings["user_words"]], cache_dir=cache_dir)

    def fit(self, X=None, y=None) -> Segmenter:
        """Nothing to learn; here so the segmenter can be a step of a scikit-learn pipeline in training."""
        return self

    def transform(self, X: Iterable[str]) -> list[Doc]:
        cut, wordlike = self._cutter(), _WORDLIKE.search
        # str.isalnum() is the regex's first branch, much cheaper, and true of almost every token.
        return [Doc(text, tuple([t for t in cut(text) if t.isalnum() or wordlike(t)])) for text in X]

    def tokens(self, text: str) -> tuple[str, ...]:
        return self.transform([text])[0].tokens

    def _cutter(self):
        if self._cut is None:
            self._cut = self._build_cutter()
        return self._cut

    def _build_cutter(self):
        if self.backend == "rjieba":
            import rjieba

            tokenizer = rjieba.Jieba()
            for word, freq in self.user_words:
                tokenizer.add_word(word, freq, None)
            hmm = bool(self.hmm)
            return lambda text: tokenizer.cut(text, hmm)
        jieba = import_jieba()
        jieba.setLogLevel(logging.WARNING)
        tokenizer = jieba.Tokenizer()
        tokenizer.tmp_dir = str(_writable_cache_dir(self.cache_dir))
        _initialize(tokenizer)
        for word, freq in self.user_words:
            tokenizer.add_word(word, freq)
        hmm = bool(self.hmm)
        return lambda text: tokenizer.lcut(text, HMM=hmm)


def import_jieba():
    """Import jieba without pkg_resources. jieba 0.42 imports it only to open its own data files, which costs
    a quarter of a second and a deprecation warning; without it, jieba opens the same files directly."""
    if "jieba" in sys.modules:
        return sys.modules["jieba"]
    blocked = "pkg_resources" not in sys.modules
    if blocked:
        sys.modules["pkg_resources"] = None  # makes `import pkg_resources` raise ImportError
    try:
        import jieba
    finally:
        if blocked:
            del sys.modules["pkg_resources"]
    return jieba


def _initialize(tokenizer) -> None:
    """jieba's own start-up, reading its dictionary cache faster. For the default dictionary jieba loads
    ``<tmp_dir>/jieba.cache`` with ``marshal.load`` on the open file (0.55 s here); ``marshal.loads`` of the
    file's bytes gives the same objects in 0.2 s. Without a readable cache jieba builds and writes it as usual."""
    import marshal

    if tokenizer.dictionary is None and not tokenizer.cache_file:  # jieba.DEFAULT_DICT: the cache needs no check
        try:
            tokenizer.FREQ, tokenizer.total = marshal.loads((Path(tokenizer.tmp_dir) / "jieba.cache").read_bytes())
            tokenizer.initialized = True
            return
        except (OSError, EOFError, ValueError, TypeError):
            pass
    tokenizer.initialize()


def _writable_cache_dir(configured: str) -> Path:
    """The configured cache folder (relative to the project), or the user's cache folder if it is not writable."""
    candidates = [Path(configured) if os.path.isabs(configured) else PACKAGE_ROOT / configured,
                  Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "weibo-signals" / "jieba"]
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    log.warning("no writable folder for jieba's cache; the dictionary is rebuilt in every process")
    return candidates[0]


def make_segmenter(params) -> Segmenter:
    """The segmenter the config describes, with the user dictionary's words inside it."""
    return Segmenter(backend=params.segment.backend, hmm=params.segment.hmm,
                     user_words=read_user_dict(params.root_path(params.paths.user_dict)),
                     cache_dir=params.paths.jieba_cache)
