"""The posts of a run: given as arguments, or an input file (or stdin) opened and its first chunk read, so that a
missing file, a wrong encoding or a missing text column is reported before anything slow is loaded."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from pipeline import streams
from pipeline.errors import UserError


def argument_posts(texts: list[str]) -> list[str]:
    """Posts given as arguments, which must be UTF-8 (Python hands over invalid bytes as lone surrogates)."""
    posts = []
    for n, text in enumerate(texts, start=1):
        try:
            posts.append(os.fsencode(text).decode("utf-8"))
        except UnicodeError:
            raise UserError(f"post {n} given as an argument is not valid UTF-8 text") from None
    return posts


@dataclass
class Source:
    """The posts of a run, checked: ``chunks`` yields them (the first chunk already read), ``path`` is the input
    file (``-``: stdin or the arguments), with the input and output formats."""

    chunks: Iterator[streams.Chunk]
    path: str
    in_format: str
    out_format: str
    reader: streams.Reader | None = None  # None: the posts were given as arguments

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()


def open_source(args: argparse.Namespace) -> Source:
    """Check the posts and formats, open the input and read its first chunk."""
    texts = argument_posts(args.texts)
    if args.input is None and not texts and sys.stdin.isatty():
        raise UserError("nothing to score: give posts as arguments, --input FILE, or lines on stdin")
    path = args.input if args.input is not None else "-"
    in_format = "txt" if texts else streams.format_of(path, args.input_format, default="txt")
    out_format = (args.format or (streams.format_of(args.output, None, "jsonl") if args.output != "-" else None)
                  or ("jsonl" if in_format in ("txt", "parquet") else in_format))
    streams.check_encoding(args.encoding)
    if texts:
        chunk = streams.Chunk(texts=texts, errors=[None] * len(texts), columns=[args.text_column],
                              rows=[[text] for text in texts])
        return Source(iter([chunk]), path, in_format, out_format)
    streams.check_distinct(path, args.output)
    reader = streams.read_chunks(path, in_format, args.chunk_size, args.text_column, args.encoding, args.on_error)
    try:
        chunks = iter(reader)
        first = list(itertools.islice(chunks, 1))
    except BaseException:
        reader.close()
        raise
    return Source(itertools.chain(first, chunks), path, in_format, out_format, reader)
