"""Reading a posts file in chunks, in order: CSV, TSV, JSON Lines, text (one post per line) and Parquet.

A :class:`Reader` opens its file when it is made, so a missing or unreadable file, a folder or an unknown
encoding is reported at once, before the caller loads anything slow; the rows are read as the chunks are taken.
``.gz`` inputs are decompressed by extension; ``-`` is stdin.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io as _io
import os
import stat
import sys
import zlib
from collections.abc import Iterator
from typing import IO, Any

from pipeline.errors import UserError
from pipeline.streams.chunks import Chunk, Record, parse_record


def regular_file(path: str) -> bool:
    """Whether ``path`` (links followed) is a regular file, which can be read twice or replaced by a rename."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def check_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"unknown encoding {encoding!r}") from None


def _encoding_hint(sample: bytes) -> str:
    """A guess at the real encoding of bytes that failed to decode, for the error message."""
    import charset_normalizer

    guess = charset_normalizer.from_bytes(sample, cp_isolation=["gb18030", "big5"]).best() if sample else None
    if guess is None:
        return "; pass --encoding with the file's encoding (e.g. gbk or big5)"
    if guess.encoding == "big5":
        return "; it looks like Big5: pass --encoding big5"
    return "; it looks like GBK/GB18030: pass --encoding gbk"


def decode_error(path: str, err: UnicodeDecodeError, encoding: str) -> UserError:
    sample = bytes(err.object) if isinstance(err.object, bytes | bytearray) else b""
    name = "stdin" if path == "-" else path
    return UserError(f"{name} is not valid {encoding} text{_encoding_hint(sample)}")


def _open(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")  # noqa: SIM115  (closed by Reader.close)
    except FileNotFoundError:
        raise UserError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"input is a folder, not a file: {path}") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None


class Reader:
    """An input's rows in chunks of at most ``chunk_size``, in order, by iterating (once). A table input gives
    at least one chunk, so its header is written even when it has no rows. The file is closed when the rows are
    all read, when reading fails, or by :meth:`close`; stdin is left open."""

    def __init__(self, path: str, fmt: str, chunk_size: int, text_column: str = "text", encoding: str = "utf-8",
                 on_error: str = "fail"):
        if fmt not in _READERS:
            raise ValueError(f"no reader for format {fmt!r}")
        self.path, self.fmt, self.chunk_size = path, fmt, chunk_size
        self.text_column, self.encoding, self.on_error = text_column, encoding, on_error
        codec = check_encoding(encoding)
        self.codec = "utf-8-sig" if codec == "utf-8" else encoding  # a UTF-8 BOM is not part of the first cell
        self._file = None if path == "-" else _open(path)
        self.binary: IO[bytes] = sys.stdin.buffer if self._file is None else (
            gzip.GzipFile(fileobj=self._file, mode="rb") if path.endswith(".gz") else self._file)

    def __iter__(self) -> Iterator[Chunk]:
        try:
            yield from _READERS[self.fmt](self)
        except UnicodeDecodeError as err:
            raise decode_error(self.path, err, self.encoding) from None
        except (EOFError, zlib.error, OSError) as err:  # gzip.BadGzipFile is an OSError
            raise UserError(f"cannot read {self.path}: {err}") from None
        finally:
            self.close()

    def close(self) -> None:
        if self._file is not None:
            for handle in (self.binary, self._file):
                with contextlib.suppress(OSError):
                    handle.close()

    @contextlib.contextmanager
    def text(self, newline: str) -> Iterator[IO[str]]:
        """The input decoded, lines ending as ``newline`` says. The wrapper is detached afterwards, never closed:
        closing it would close stdin."""
        stream = _io.TextIOWrapper(self.binary, encoding=self.codec, errors="strict", newline=newline)
        try:
            yield stream
        finally:
            with contextlib.suppress(ValueError, OSError):
                stream.detach()


def read_chunks(path: str, fmt: str, chunk_size: int, text_column: str = "text", encoding: str = "utf-8",
                on_error: str = "fail") -> Reader:
    """The input's chunks (see :class:`Reader`); the file is opened now."""
    return Reader(path, fmt, chunk_size, text_column, encoding, on_error)


def _empty(path: str, what: str) -> UserError:
    return UserError(f"{path} is empty: expected {what}")


def _text_index(columns: list[str], text_column: str, path: str) -> int:
    found = [i for i, name in enumerate(columns) if name == text_column]
    if not found:
        raise UserError(f"{path} has no column {text_column!r} (columns: {', '.join(map(str, columns))}); "
                        "use --text-column")
    if len(found) > 1:
        raise UserError(f"{path} has {len(found)} columns named {text_column!r}: rename all but the one holding "
                        "the posts")
    return found[0]


def _read_delimited(source: Reader) -> Iterator[Chunk]:
    path, fmt, chunk_size = source.path, source.fmt, source.chunk_size
    # Posts can be long: the csv module's default limit (131,072 characters a cell) would refuse them.
    csv.field_size_limit(sys.maxsize)
    with source.text(newline="") as stream:
        reader = csv.reader(stream, delimiter="\t" if fmt == "tsv" else ",", quotechar='"', doublequote=True,
                            strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise _empty(path, f"a header line with a {source.text_column!r} column")
            index = _text_index(header, source.text_column, path)
            width = len(header)
            rows: list[list[str]] = []
            first = 2
            yielded = False
            for row in reader:
                if len(row) != width:
                    if not row:
                        if width > 1:
                            continue  # a blank line between the rows of a table holds no cells
                        row = [""]  # in a one-column file it is an empty post
                    else:
                        raise UserError(f"{path}: line {reader.line_num}: {len(row)} fields where the header has "
                                        f"{width}: quote cells that hold a {'tab' if fmt == 'tsv' else 'comma'}")
                rows.append(row)
                if len(rows) == chunk_size:
                    yield Chunk(texts=[r[index] for r in rows], errors=[None] * len(rows), columns=header,
                                rows=rows, first_line=first)
                    yielded = True
                    first, rows = reader.line_num + 1, []
            if rows or not yielded:
                yield Chunk(texts=[r[index] for r in rows], errors=[None] * len(rows), columns=header, rows=rows,
                            first_line=first)
        except csv.Error as err:
            raise UserError(f"{path}: line {reader.line_num}: malformed {fmt.upper()} ({err}): a cell that "
                            'starts with " must be quoted whole, its quotes doubled') from None


def _read_lines(source: Reader) -> Iterator[Chunk]:
    chunk_size, column = source.chunk_size, [source.text_column]
    # Lines end at LF only (CRLF too): a lone CR inside a post is part of the post.
    with source.text(newline="\n") as stream:
        line = 1
        while True:
            batch = []
            for raw in stream:
                text = raw[:-1] if raw.endswith("\n") else raw
                batch.append(text[:-1] if text.endswith("\r") else text)
                if len(batch) == chunk_size:
                    break
            if not batch:
                if line == 1:
                    if source.path != "-":
                        raise _empty(source.path, "one post per line")
                    yield Chunk(texts=[], errors=[], columns=column, rows=[])
                return
            yield Chunk(texts=batch, errors=[None] * len(batch), columns=column, rows=[[t] for t in batch],
                        first_line=line)
            line += len(batch)


def _read_jsonl(source: Reader) -> Iterator[Chunk]:
    path, chunk_size, text_column = source.path, source.chunk_size, source.text_column
    with source.text(newline="\n") as stream:
        records: list[Record | None] = []
        texts: list[str | None] = []
        errors: list[str | None] = []
        first = 1
        for number, raw in enumerate(stream, start=1):
            if not raw.strip(" \t\r\n"):
                continue  # blank lines separate nothing in JSON Lines; they are not records
            record, text, problem = parse_record(raw, number, text_column)
            if problem is not None and source.on_error != "mark":
                raise UserError(f"{path}: line {number}: {problem} (use --on-error mark to keep going)")
            records.append(record)
            texts.append(text)
            errors.append(None if problem is None else f"line {number}: {problem}")
            if len(records) == chunk_size:
                yield Chunk(texts=texts, records=records, errors=errors, columns=_keys(records), first_line=first)
                records, texts, errors, first = [], [], [], number + 1
        if records:
            yield Chunk(texts=texts, records=records, errors=errors, columns=_keys(records), first_line=first)
        elif first == 1 and path != "-":
            raise _empty(path, "one JSON object per line")


def _keys(records: list[Record | None]) -> list[str]:
    return list(dict.fromkeys(key for record in records if record is not None for key in record.fields))


_TEXT_TYPES = ("string", "large_string", "string_view", "null")


def _read_parquet(source: Reader) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = source.path
    parquet_source: Any = path
    if path == "-" or path.endswith(".gz") or not regular_file(path):
        # Parquet is read from its end: stdin, a pipe or a gzip stream is read into memory first.
        parquet_source = pa.BufferReader(source.binary.read())
    source.close()  # a regular file is read by pyarrow itself, by name
    try:
        parquet = pq.ParquetFile(parquet_source)
    except FileNotFoundError:
        raise UserError(f"input file not found: {path}") from None
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path} is not a readable Parquet file: {err}") from None
    schema = parquet.schema_arrow
    index = _text_index(schema.names, source.text_column, path)
    kind = schema.field(index).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if str(kind) not in _TEXT_TYPES and not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
        raise UserError(f"{path}: column {source.text_column!r} holds {kind}, not text: pass the column of posts "
                        "with --text-column")
    line = 1
    try:
        for batch in parquet.iter_batches(batch_size=source.chunk_size):
            texts = ["" if t is None else t for t in batch.column(index).to_pylist()]
            yield Chunk(texts=texts, errors=[None] * len(texts), columns=schema.names, batch=batch, first_line=line)
            line += len(texts)
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path}: damaged Parquet data: {err}") from None
    if line == 1:
        yield Chunk(texts=[], errors=[], columns=schema.names, batch=schema.empty_table(), first_line=line)


_READERS = {"csv": _read_delimited, "tsv": _read_delimited, "jsonl": _read_jsonl, "txt": _read_lines,
            "parquet": _read_parquet}


def count_rows(path: str, fmt: str) -> int | None:
    """A quick row count for the progress bar's ETA: None unless the input is a regular file that can be read
    twice (stdin, a pipe or FIFO would be consumed) without decompressing it."""
    if path == "-" or path.endswith(".gz") or not regular_file(path):
        return None
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with contextlib.suppress(Exception):
            return pq.ParquetFile(path).metadata.num_rows
        return None
    lines = 0
    last = b"\n"
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(0, lines - 1) if fmt in ("csv", "tsv") else lines
