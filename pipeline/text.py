"""Normalising a Weibo post before segmentation; its settings are saved in the model so train and predict agree.

Decisions (each configurable, see ``normalize:`` in configs/params.yaml, and tested in tests/test_text.py):

* Unicode NFKC (full-width letters and digits to ASCII), then control, format (zero-width, bidi),
  surrogate and private-use characters removed: they carry no meaning and are used to dodge filters.
* Traditional to simplified characters with OpenCC ``t2s``; ASCII lower-cased.
* URLs, @mentions, repost markers ``//@name:`` and reply markers ``回复@name:`` become one placeholder
  symbol each (a private-use character, so jieba and the character n-grams both see one atomic unit).
  The text a repost quotes is kept: a repost is labelled by the whole text shown.
* ``#话题#``: the words are kept, the ``#`` marks dropped. ``[哈哈]`` emoji codes: the name is kept as words.
* Quotation marks of every style (“ ” 「 」 『 』 ‘ ’ …) become ASCII ``"`` and ``'``: users type whichever
  their input method gives, and the quote style carries no meaning.
* A character repeated more than ``max_repeat`` times is cut to ``max_repeat`` (哈哈哈哈哈, !!!!!!).
* Whitespace between two CJK characters is removed (参 选 -> 参选); other runs of whitespace become one space.
* ``punctuation: drop``: every punctuation mark and symbol (Unicode categories P and S: 。，！？"~【】, emoji
  pictographs) is removed, as if the post had been typed without it (12:00 reads as 1200, 我，3号楼 as 我3号楼); only
  between two Latin words does it leave a space, and spaces between CJK characters are then removed again.
  Punctuation is how a writer styles a post, not what it reports: the model trained on polished posts had learned
  。 and quotation marks as evidence, and real Weibo posts rarely end in 。. Dropped, adding, removing or changing
  punctuation cannot move a post's score.
* ``html_entities: decode``: HTML character references that crawled and exported posts carry (``&quot;``,
  ``&amp;``, ``&#8220;``) read as the characters they stand for, not as the words quot, amp, 8220.
* ``weibo_interface: drop``: text of Weibo's own interface that crawls and copy-paste capture along with a post:
  its link and video cards (``O网页链接``, ``L某某的微博视频``, ``L某某的秒拍视频``) are links, handled as ``urls``
  says; its ``展开全文`` / ``收起全文`` buttons (with the icon letter a crawl leaves, ``c`` or ``d``) are removed.
  None of it is what the writer typed.
* ``aliases`` (``configs/aliases.yaml``): slang and euphemisms written as the plain word (帽子叔叔 -> 警察,
  zf -> 政府), after conversion to simplified and lower case, so that what the model learns about the plain
  word carries over to its disguises.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from pipeline.simplified import converter
from pipeline.word_lists import read_aliases

# Placeholders: private-use characters, which real input can never contain (they are stripped first).
URL = "\ue001"
MENTION = "\ue002"
REPOST = "\ue003"
REPLY = "\ue004"
PLACEHOLDER_NAMES = {URL: "<url>", MENTION: "<@>", REPOST: "<repost>", REPLY: "<reply>"}
_BATCH_SEPARATOR = "\ue000"  # private use: stripped from every text before batching

_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u115f\u1160\u17b4\u17b5\u180b-\u180f"
                        r"\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
                        r"\ud800-\udfff\ue000-\uf8ff]|[\U000e0000-\U000e0fff\U000f0000-\U0010ffff]")
_SPACE = re.compile(r"[\s\u3000]+")
_HAS_SPACE = re.compile(r"\s")
# No brackets: on Weibo a link is often followed at once by an emoji code (http://t.cn/x[哈哈]).
_URL = re.compile(r"(?:https?://|www\.)[a-z0-9\-._~:/?#@!$&'()*+,;=%]+", re.IGNORECASE)
_REPOST = re.compile(r"//\s*@[^\s:/@]{1,30}\s*:?")
_REPLY = re.compile(r"回复\s*@[^\s:/@]{1,30}\s*:?")
_MENTION = re.compile(r"@[\w\-·]{1,30}")
_HASHTAG = re.compile(r"#([^#\n]{1,60})#")
_EMOJI = re.compile(r"\[([\w\u4e00-\u9fff]{1,8})\]")
# Weibo's interface as crawled (after t2s, before lower-casing): link and video cards (the icon is a capital O or
# L), and the buttons that fold a long post, each with the letter its icon leaves.
_WEIBO_CARD = re.compile(r"O?网页链接|L[^\sL]{1,30}?的(?:微博|秒拍|美拍)视频")
_WEIBO_BUTTON = re.compile(r"(?:(?:\.{3}|…)\s*)?展开全文\s*c?|收起全文\s*d?|(?:\.{3}|…)\s*展开\s*$")
_DOUBLE_QUOTES, _SINGLE_QUOTES = "“”„‟「」『』〝〞〟«»", "‘’‚‛"
_QUOTES = str.maketrans({**dict.fromkeys(_DOUBLE_QUOTES, '"'), **dict.fromkeys(_SINGLE_QUOTES, "'")})
_ANY_QUOTE = re.compile(f"[{_DOUBLE_QUOTES}{_SINGLE_QUOTES}]")
_CJK = "\u2e80-\u2fff\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_SPACE = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_ASCII_WORD = re.compile(r"[a-z0-9]+")
# Dropped punctuation first becomes this mark. Where the same post typed without the punctuation would have
# nothing, it goes: between two digits (12:00 -> 1200) and beside a CJK character (我，3号楼 -> 我3号楼, as 看，主要 ->
# 看主要 already was); elsewhere (between two Latin words) it becomes a space.
_GAP = "\x00"
_SILENT_GAP = re.compile(rf"(?<=\d)\x00+(?=\d)|(?<=[{_CJK}])\x00+|\x00+(?=[{_CJK}])")


@functools.cache
def _punctuation() -> dict[int, str]:
    """A ``str.translate`` table turning every punctuation mark and symbol (Unicode categories P* and S*) of the
    first three planes into :data:`_GAP` (then a space, or nothing between two digits), built on first use (about
    20 ms). A table, not a regex: the regex's class has 338 ranges and took 5.7 µs a post, the table 1 µs; runs of
    spaces are collapsed afterwards either way."""
    return {c: _GAP for c in range(0x30000) if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c))[0] in "PS"}


class Normalizer:
    """Stateless: a sequence of raw posts in, a list of normalised strings out. Its settings are plain values
    (:meth:`settings`), which the model file stores and :meth:`from_settings` reads back."""

    def __init__(self, t2s: bool = True, lowercase: bool = True, urls: str = "token", mentions: str = "token",
                 reposts: str = "token", hashtags: str = "text", emoji: str = "text", max_repeat: int = 3,
                 join_cjk_spaces: bool = True, punctuation: str = "keep", aliases: tuple = (),
                 html_entities: str = "keep", weibo_interface: str = "keep"):
        for name, value in (("urls", urls), ("mentions", mentions), ("reposts", reposts)):
            if value not in ("token", "drop", "keep"):
                raise ValueError(f"{name} must be token, drop or keep")
        for name, value in (("hashtags", hashtags), ("emoji", emoji)):
            if value not in ("text", "drop", "keep"):
                raise ValueError(f"{name} must be text, drop or keep")
        if isinstance(max_repeat, bool) or not isinstance(max_repeat, int) or max_repeat < 1:
            raise ValueError("max_repeat must be a whole number of at least 1")
        if punctuation not in ("keep", "drop"):
            raise ValueError("punctuation must be keep or drop")
        if html_entities not in ("keep", "decode"):
            raise ValueError("html_entities must be keep or decode")
        if weibo_interface not in ("keep", "drop"):
            raise ValueError("weibo_interface must be keep or drop")
        self.t2s = bool(t2s)
        self.lowercase = bool(lowercase)
        self.urls = urls
        self.mentions = mentions
        self.reposts = reposts
        self.hashtags = hashtags
        self.emoji = emoji
        self.max_repeat = max_repeat
        self.join_cjk_spaces = bool(join_cjk_spaces)
        self.punctuation = punctuation
        self.aliases = tuple((str(alias), str(word)) for alias, word in aliases)
        self.html_entities = html_entities
        self.weibo_interface = weibo_interface

    def settings(self) -> dict[str, Any]:
        """Everything that decides the output, as JSON-ready values."""
        return {"t2s": self.t2s, "lowercase": self.lowercase, "urls": self.urls, "mentions": self.mentions,
                "reposts": self.reposts, "hashtags": self.hashtags, "emoji": self.emoji,
                "max_repeat": self.max_repeat, "join_cjk_spaces": self.join_cjk_spaces,
                "punctuation": self.punctuation, "aliases": [list(pair) for pair in self.aliases],
                "html_entities": self.html_entities, "weibo_interface": self.weibo_interface}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Normalizer:
        return cls(**{**settings, "aliases": tuple(tuple(pair) for pair in settings.get("aliases", ()))})

    def fit(self, X=None, y=None) -> Normalizer:
        """Nothing to learn; here so the normaliser can be a step of a scikit-learn pipeline in training."""
        return self

    def transform(self, X: Iterable[str]) -> list[str]:
        texts = [_clean(text) for text in X]
        if self.html_entities == "decode":
            # Decoded, then cleaned again: a reference can stand for an invisible or private-use character.
            texts = [_clean(html.unescape(text)) if "&" in text else text for text in texts]
        if self.t2s:
            texts = self._to_simplified(texts)
        return [self._markup(text) for text in texts]

    def normalize(self, text: str) -> str:
        """Normalise one post. Anything that is not a string (None, NaN) counts as an empty post."""
        return self.transform([text])[0]

    def _to_simplified(self, texts: list[str]) -> list[str]:
        # One OpenCC call for the whole batch, joined by a character _clean has removed from every text.
        t2s = converter()
        parts = t2s.convert(_BATCH_SEPARATOR.join(texts)).split(_BATCH_SEPARATOR)
        if len(parts) != len(texts):  # never expected; keep rows aligned whatever OpenCC does
            parts = [t2s.convert(text) for text in texts]
        return parts

    def _markup(self, text: str) -> str:
        # Each pattern runs only when the text holds a character it needs (cheap substring tests): most posts
        # have no URL, mention, hashtag or emoji code, and a regex scan per post per pattern adds up.
        if self.weibo_interface == "drop" and ("视频" in text or "全文" in text or "展开" in text
                                               or "网页链接" in text):
            text = _replace(_WEIBO_CARD, text, self.urls, URL)
            text = _WEIBO_BUTTON.sub(" ", text)
        if self.lowercase:
            text = text.lower()
        if _ANY_QUOTE.search(text):
            text = text.translate(_QUOTES)
        if "://" in text or "www." in text.lower():
            text = _replace(_URL, text, self.urls, URL)
        if "@" in text:
            text = _replace(_REPOST, text, self.reposts, REPOST)
            text = _replace(_REPLY, text, self.mentions, REPLY)
            text = _replace(_MENTION, text, self.mentions, MENTION)
        if self.join_cjk_spaces and _HAS_SPACE.search(text):
            # After mentions (a space ends a name), before hashtags and emoji (whose spaces must stay).
            text = _CJK_SPACE.sub("", text)
        if self.hashtags != "keep" and "#" in text:
            text = _HASHTAG.sub(" \\1 " if self.hashtags == "text" else " ", text)
        if self.emoji != "keep" and "[" in text:
            text = _EMOJI.sub(" \\1 " if self.emoji == "text" else " ", text)
        text = _repeats(self.max_repeat).sub("\\1" * self.max_repeat, text)
        if self.aliases:
            table = _alias_table(self.aliases)
            text = _alias_pattern(self.aliases).sub(lambda match: table[match.group(0)], text)
        if self.punctuation == "drop":
            text = text.translate(_punctuation())
            text = _SILENT_GAP.sub("", text).replace(_GAP, " ")
            if self.join_cjk_spaces:
                text = _CJK_SPACE.sub("", text)
        return _SPACE.sub(" ", text).strip()


@functools.lru_cache(maxsize=8)
def _alias_table(aliases: tuple) -> dict[str, str]:
    return dict(aliases)


@functools.lru_cache(maxsize=8)
def _alias_pattern(aliases: tuple) -> re.Pattern:
    """One alternation of every alias, longest first; an ASCII alias (jc, zf) matches only as a whole ASCII word."""
    parts = []
    for alias in sorted(_alias_table(aliases), key=len, reverse=True):
        escaped = re.escape(alias)
        parts.append(rf"(?<![a-z0-9]){escaped}(?![a-z0-9])" if _ASCII_WORD.fullmatch(alias) else escaped)
    return re.compile("|".join(parts))


@functools.lru_cache(maxsize=8)
def _repeats(max_repeat: int) -> re.Pattern:
    # (.)\1\1\1+ rather than (.)\1{3,}: the same runs, matched about twice as fast by the re engine.
    return re.compile(r"(.)" + r"\1" * max_repeat + "+", re.DOTALL)


def _clean(text) -> str:
    """Remove invisible characters and apply NFKC (skipped when the text is already in NFKC, which is cheap)."""
    if not isinstance(text, str):
        return ""
    text = _INVISIBLE.sub("", text)
    if not unicodedata.is_normalized("NFKC", text):
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))  # NFKC can expose format characters
    return text


def _replace(pattern: re.Pattern, text: str, mode: str, placeholder: str) -> str:
    if mode == "keep":
        return text
    return pattern.sub(f" {placeholder} " if mode == "token" else " ", text)


def make_normalizer(params) -> Normalizer:
    """The normaliser the config describes (``normalize:``), with the alias table read in when it is on."""
    cfg = params.normalize
    return Normalizer(t2s=cfg.t2s, lowercase=cfg.lowercase, urls=cfg.urls, mentions=cfg.mentions,
                      reposts=cfg.reposts, hashtags=cfg.hashtags, emoji=cfg.emoji, max_repeat=cfg.max_repeat,
                      join_cjk_spaces=cfg.join_cjk_spaces, punctuation=cfg.punctuation,
                      html_entities=cfg.html_entities, weibo_interface=cfg.weibo_interface,
                      aliases=read_aliases(params.root_path(params.paths.aliases)) if cfg.aliases else ())


def readable(text: str) -> str:
    """Show placeholders as ``<url>``, ``<@>``, ``<repost>``, ``<reply>`` (for explanations and reports)."""
    for symbol, name in PLACEHOLDER_NAMES.items():
        text = text.replace(symbol, name)
    return text
