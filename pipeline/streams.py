"""Reading posts files in chunks and writing predictions in the same order, for ``predict``.

Formats: CSV, TSV, JSON Lines, plain text (one post per line) and Parquet; ``.gz`` inputs are decompressed
by extension; ``-`` is stdin or stdout. Every input row becomes exactly one chunk row, and so one output
row: a row that cannot be read is an error naming its line, or, with ``on_error="mark"``, a row with an
``error`` message and no prediction.

CSV/TSV cells are read as strings and written back unchanged; JSON Lines records keep their keys and JSON
types (an ``id`` of mixed types passes through as written).
"""

from __future__ import annotations

import codecs
import contextlib
import gzip
import io as _io
import itertools
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd

from pipeline.errors import UserError

FORMATS = ("csv", "tsv", "jsonl", "txt", "parquet")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".json": "jsonl", ".txt": "txt", ".text": "txt", ".parquet": "parquet", ".pq": "parquet"}
ERROR_COLUMN = "error"


@dataclass
class Chunk:
    """Rows of the input: a table of pass-through columns (CSV/TSV/Parquet/text) or JSON records.

    ``texts`` holds the text of each row (None where the row is broken) and ``errors`` the reason for each
    broken row (None where the row is fine), both aligned with the rows.
    """

    texts: list[str | None]
    table: pd.DataFrame | None = None
    records: list[Any] | None = None
    errors: list[str | None] = field(default_factory=list)
    first_line: int = 1

    def __len__(self) -> int:
        return len(self.texts)


def format_of(path: str, explicit: str | None, default: str) -> str:
    """The format named explicitly, else by the file's extension (``.gz`` looked through), else the default."""
    if explicit:
        if explicit not in FORMATS:
            raise UserError(f"unknown format {explicit!r}: choose one of {', '.join(FORMATS)}")
        return explicit
    if path == "-":
        return default
    name = path[:-3] if path.endswith(".gz") else path
    suffix = Path(name).suffix.lower()
    if suffix not in _EXTENSIONS:
        raise UserError(f"cannot tell the format of {path} from its extension: pass --format/--input-format "
                        f"({', '.join(FORMATS)})")
    return _EXTENSIONS[suffix]


def _open_binary(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        handle = open(path, "rb")  # noqa: SIM115  (returned to the caller, who closes it)
    except FileNotFoundError:
        raise UserError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"input is a folder, not a file: {path}") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    if path.endswith(".gz"):
        return gzip.open(handle, "rb")
    return handle


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


def _text_stream(path: str, encoding: str) -> IO[str]:
    binary = _open_binary(path)
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    return _io.TextIOWrapper(binary, encoding=codec, errors="strict", newline="")


def check_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"unknown encoding {encoding!r}") from None


def read_chunks(path: str, fmt: str, chunk_size: int, text_column: str = "text", encoding: str = "utf-8",
                on_error: str = "fail") -> Iterator[Chunk]:
    """Yield the input in chunks of at most ``chunk_size`` rows, in order."""
    check_encoding(encoding)
    reader = {"csv": _read_delimited, "tsv": _read_delimited, "jsonl": _read_jsonl, "txt": _read_lines,
              "parquet": _read_parquet}[fmt]
    try:
        yield from reader(path, fmt, chunk_size, text_column, encoding, on_error)
    except UnicodeDecodeError as err:
        raise decode_error(path, err, encoding) from None
    except (EOFError, gzip.BadGzipFile, OSError) as err:
        raise UserError(f"cannot read {path}: {err}") from None


def _read_delimited(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    stream = _text_stream(path, encoding)
    try:
        reader = pd.read_csv(stream, sep="\t" if fmt == "tsv" else ",", dtype=str, keep_default_na=False,
                             na_filter=False, chunksize=chunk_size, encoding=None)
        line = 1
        for frame in reader:
            frame.columns = [str(c).lstrip("\ufeff") for c in frame.columns]
            if text_column not in frame.columns:
                raise UserError(f"{path} has no column {text_column!r} (columns: {', '.join(frame.columns)}); "
                                "use --text-column")
            yield Chunk(texts=frame[text_column].tolist(), table=frame.reset_index(drop=True),
                        errors=[None] * len(frame), first_line=line)
            line += len(frame)
    except pd.errors.EmptyDataError:
        raise UserError(f"{path} is empty: expected a header line with a {text_column!r} column") from None
    except pd.errors.ParserError as err:
        raise UserError(f"{path}: malformed {fmt.upper()}: {str(err).strip().splitlines()[-1]}") from None
    finally:
        if path != "-":
            stream.close()


def _read_lines(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    stream = _text_stream(path, encoding)
    try:
        line = 1
        while batch := [raw.rstrip("\r\n") for raw in itertools.islice(stream, chunk_size)]:
            yield Chunk(texts=batch, table=pd.DataFrame({text_column: batch}), errors=[None] * len(batch),
                        first_line=line)
            line += len(batch)
    finally:
        if path != "-":
            stream.close()


def _read_jsonl(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    stream = _text_stream(path, encoding)
    try:
        records: list[Any] = []
        texts: list[str | None] = []
        errors: list[str | None] = []
        first = 1
        number = 0
        for number, raw in enumerate(stream, start=1):
            line = raw.strip()
            if not line:
                continue  # blank lines separate nothing in JSON Lines; they are not records
            record, text, problem = _parse_record(line, text_column)
            if problem is not None:
                if on_error != "mark":
                    raise UserError(f"{path}: line {number}: {problem} (use --on-error mark to keep going)")
                record = None
            records.append(record)
            texts.append(text)
            errors.append(None if problem is None else f"line {number}: {problem}")
            if len(records) == chunk_size:
                yield Chunk(texts=texts, records=records, errors=errors, first_line=first)
                records, texts, errors, first = [], [], [], number + 1
        if records:
            yield Chunk(texts=texts, records=records, errors=errors, first_line=first)
    finally:
        if path != "-":
            stream.close()


def _parse_record(line: str, text_column: str) -> tuple[Any, str | None, str | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        return None, None, f"not valid JSON ({err.msg} at column {err.colno})"
    if not isinstance(record, dict):
        return None, None, "expected a JSON object"
    if text_column not in record:
        return None, None, f"no {text_column!r} field"
    text = record[text_column]
    if text is None:
        text = ""
    if not isinstance(text, str):
        return None, None, f"field {text_column!r} is not a string"
    return record, text, None


def _read_parquet(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path == "-":
        source = pa.BufferReader(sys.stdin.buffer.read())
    elif path.endswith(".gz"):
        source = pa.BufferReader(_open_binary(path).read())
    else:
        source = path
    try:
        parquet = pq.ParquetFile(source)
    except FileNotFoundError:
        raise UserError(f"input file not found: {path}") from None
    except (pa.ArrowInvalid, OSError) as err:
        raise UserError(f"{path} is not a readable Parquet file: {err}") from None
    if text_column not in parquet.schema_arrow.names:
        raise UserError(f"{path} has no column {text_column!r} (columns: {', '.join(parquet.schema_arrow.names)}); "
                        "use --text-column")
    line = 1
    for batch in parquet.iter_batches(batch_size=chunk_size):
        frame = batch.to_pandas()
        texts = [t if isinstance(t, str) else "" for t in frame[text_column].tolist()]
        yield Chunk(texts=texts, table=frame, errors=[None] * len(frame), first_line=line)
        line += len(frame)


def count_rows(path: str, fmt: str) -> int | None:
    """A quick row count for the progress bar's ETA (None where it would cost a second pass over gzip/stdin)."""
    if path == "-" or path.endswith(".gz"):
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


class Writer:
    """Writes prediction chunks in order; a file is written to a temporary name and renamed when complete."""

    def __init__(self, path: str, fmt: str):
        self.path = path
        self.fmt = fmt
        self.columns: list[str] | None = None
        self._parquet = None
        self._tmp: Path | None = None
        if path == "-":
            if fmt == "parquet":
                raise UserError("Parquet output needs a file: pass --output FILE.parquet")
            sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
            self.handle: IO = sys.stdout
        else:
            target = Path(path)
            if target.is_dir():
                raise UserError(f"output is a folder, not a file: {path}")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                self._tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                raw = open(self._tmp, "wb")  # noqa: SIM115  (closed in close())
            except OSError as err:
                raise UserError(f"cannot write {path}: {err.strerror}") from None
            binary = gzip.open(raw, "wb") if path.endswith(".gz") else raw  # noqa: SIM115
            self._raw = raw
            # A lone surrogate (possible in JSON input) cannot be UTF-8: it is written as its \\uXXXX escape.
            self.handle = binary if fmt == "parquet" else _io.TextIOWrapper(binary, encoding="utf-8", newline="",
                                                                            errors="backslashreplace")

    def write_rendered(self, rendered: Rendered) -> None:
        """Write rows that :func:`render` laid out (possibly in a worker process), with the header first."""
        if self.fmt != "jsonl":
            if self.columns is None:
                self.columns = rendered.columns
                self.handle.write(_delimited(pd.DataFrame(columns=rendered.columns), self.fmt, header=True))
            elif rendered.columns != self.columns:  # never expected: a table input has one header
                raise UserError("the input's columns changed between chunks")
        self.handle.write(rendered.text)

    def write_table(self, chunk: Chunk, predictions: pd.DataFrame) -> None:
        """Write rows :func:`render` cannot lay out: Parquet, or JSON records written as a table."""
        frame = _as_table(chunk, predictions)
        first = self.columns is None
        if first:
            self.columns = list(frame.columns)
        elif list(frame.columns) != self.columns:
            extra = [c for c in frame.columns if c not in self.columns]
            if extra:
                raise UserError(f"input field {extra[0]!r} first appears after the first chunk; "
                                "write JSON Lines output (--format jsonl) to keep every field")
            frame = frame.reindex(columns=self.columns)
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(_without_surrogates(frame), preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.handle, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
            return
        self.handle.write(_delimited(frame, self.fmt, header=first))

    def close(self, success: bool) -> None:
        """Finish the output: on success rename the temporary file into place, otherwise remove it."""
        if self._parquet is not None:
            self._parquet.close()
        if self.path == "-":
            self.handle.flush()
            return
        try:
            self.handle.close()
            if self.handle is not self._raw:
                self._raw.close()
        finally:
            if success:
                os.replace(self._tmp, self.path)
            else:
                self._tmp.unlink(missing_ok=True)


@dataclass
class Rendered:
    """Output rows as text, ready to write: CSV/TSV rows without their header (and their columns), or JSON lines."""

    text: str
    columns: list[str]


def render(chunk: Chunk, predictions: pd.DataFrame, fmt: str) -> Rendered | None:
    """Lay out a chunk's output rows as text, or None where only the :class:`Writer` can (Parquet; JSON records
    written as a table, whose columns depend on the records seen before). Pure, so worker processes can do it."""
    if fmt == "jsonl":
        return Rendered(_jsonl_lines(chunk, predictions), [])
    if fmt in ("csv", "tsv") and chunk.table is not None:
        frame = _as_table(chunk, predictions)
        return Rendered(_delimited(frame, fmt, header=False), [str(c) for c in frame.columns])
    return None


def _delimited(frame: pd.DataFrame, fmt: str, header: bool) -> str:
    return frame.to_csv(None, sep="\t" if fmt == "tsv" else ",", index=False, header=header, lineterminator="\n")


def _jsonl_lines(chunk: Chunk, predictions: pd.DataFrame) -> str:
    rows = predictions.to_dict("records")
    if chunk.records is not None:
        base = [dict(r) if isinstance(r, dict) else {} for r in chunk.records]
    else:
        base = chunk.table.to_dict("records")
    lines = []
    for record, extra in zip(base, rows, strict=True):
        record.update({k: _json_value(v) for k, v in extra.items()})
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _without_surrogates(frame: pd.DataFrame) -> pd.DataFrame:
    """Parquet strings must be valid UTF-8: lone surrogates become their \\uXXXX escape, as in text outputs."""
    def fix(value):
        if isinstance(value, str) and _SURROGATE.search(value):
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value

    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].map(fix)
    return frame


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def _as_table(chunk: Chunk, predictions: pd.DataFrame) -> pd.DataFrame:
    if chunk.table is not None:
        base = chunk.table
    else:
        base = pd.DataFrame.from_records([r if isinstance(r, dict) else {} for r in chunk.records])
    base = base.reset_index(drop=True)
    clash = [c for c in predictions.columns if c in base.columns]
    base = base.drop(columns=clash)
    return pd.concat([base, predictions.reset_index(drop=True)], axis=1)
