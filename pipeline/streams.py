"""Reading posts files in chunks and writing predictions in the same order, for ``predict``.

Formats: CSV, TSV, JSON Lines, plain text (one post per line) and Parquet; ``.gz`` inputs are decompressed
by extension; ``-`` is stdin or stdout. Every input row becomes exactly one chunk row, and so one output
row: a row that cannot be read is an error naming its line, or, with ``on_error="mark"``, a JSON Lines row
with an ``error`` message and no prediction.

Pass-through is exact. A CSV/TSV cell is read as the string a standard reader sees and written back as the
same string, quoted wherever a standard reader (Python's ``csv``, pandas) needs it. A JSON Lines value keeps
its JSON text: JSON Lines output is the input line with the prediction fields added before its closing brace,
and a table output holds a string value as itself and any other value as its JSON text (null as an empty
cell). A Parquet input's columns keep their Arrow types in Parquet output.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import gzip
import io as _io
import json
import os
import re
import signal
import stat
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from json.decoder import scanstring
from pathlib import Path
from typing import IO, Any, NamedTuple

from pipeline.errors import UserError

FORMATS = ("csv", "tsv", "jsonl", "txt", "parquet")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
               ".json": "jsonl", ".txt": "txt", ".text": "txt", ".parquet": "parquet", ".pq": "parquet"}
ERROR_COLUMN = "error"
TRUNCATED_COLUMN = "truncated"


class Record(NamedTuple):
    """A JSON Lines object as written: its line number, its text from ``{`` to ``}``, and each top-level
    value's JSON text by key."""

    number: int
    text: str
    fields: dict[str, str]


@dataclass
class Chunk:
    """Rows of the input in one of three shapes: ``rows`` of string cells under ``columns`` (CSV, TSV, text,
    arguments), JSON ``records`` (None for a line that is not a JSON object) or a Parquet ``batch``.

    ``texts`` holds the text of each row (None where the row is broken) and ``errors`` the reason for each
    broken row (None where the row is fine), both aligned with the rows. ``columns`` names the fields of
    every shape (for records: the keys seen in this chunk, in order of first appearance).
    """

    texts: list[str | None]
    errors: list[str | None]
    columns: list[str]
    rows: list[list[str]] | None = None
    records: list[Record | None] | None = None
    batch: Any = None
    first_line: int = 1

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: list[bool]) -> Chunk:
        """The rows where ``keep`` is true, with the same columns."""
        idx = [i for i, k in enumerate(keep) if k]
        batch = None
        if self.batch is not None:
            import pyarrow as pa

            # Typed indices: an empty Python list would be an array of nulls, which take() refuses.
            batch = self.batch.take(pa.array(idx, type=pa.int64()))
        return Chunk(texts=[self.texts[i] for i in idx], errors=[self.errors[i] for i in idx], columns=self.columns,
                     rows=None if self.rows is None else [self.rows[i] for i in idx],
                     records=None if self.records is None else [self.records[i] for i in idx],
                     batch=batch, first_line=self.first_line)


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


# --- paths ---------------------------------------------------------------------------------------------------

def _regular_file(path: str) -> bool:
    """Whether ``path`` (links followed) is a regular file, which can be read twice or replaced by a rename."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _identity(path: str, fd: int) -> tuple[int, int] | None:
    """Device and inode of a regular file named by ``path`` (``-``: the file behind ``fd``), links followed."""
    try:
        info = os.fstat(fd) if path == "-" else os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISREG(info.st_mode) else None


def check_distinct(source: str, target: str) -> None:
    """Refuse an output that is the input file, however it is named (symbolic or hard links, stdin/stdout)."""
    read, written = _identity(source, 0), _identity(target, 1)
    if read is not None and read == written:
        raise UserError(f"the output {'stdout' if target == '-' else target} is the input file "
                        f"{'stdin' if source == '-' else source}: write the results to another file")


# --- reading -------------------------------------------------------------------------------------------------

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


def _text_stream(path: str, encoding: str, newline: str) -> IO[str]:
    binary = _open_binary(path)
    codec = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    return _io.TextIOWrapper(binary, encoding=codec, errors="strict", newline=newline)


def check_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise UserError(f"unknown encoding {encoding!r}") from None


def read_chunks(path: str, fmt: str, chunk_size: int, text_column: str = "text", encoding: str = "utf-8",
                on_error: str = "fail") -> Iterator[Chunk]:
    """Yield the input in chunks of at most ``chunk_size`` rows, in order (a table input: at least one chunk,
    so its header is written even when it has no rows)."""
    check_encoding(encoding)
    reader = {"csv": _read_delimited, "tsv": _read_delimited, "jsonl": _read_jsonl, "txt": _read_lines,
              "parquet": _read_parquet}[fmt]
    try:
        yield from reader(path, fmt, chunk_size, text_column, encoding, on_error)
    except UnicodeDecodeError as err:
        raise decode_error(path, err, encoding) from None
    except (EOFError, zlib.error, OSError) as err:  # gzip.BadGzipFile is an OSError
        raise UserError(f"cannot read {path}: {err}") from None


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


def _read_delimited(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    # Posts can be long: the csv module's default limit (131,072 characters a cell) would refuse them.
    csv.field_size_limit(sys.maxsize)
    stream = _text_stream(path, encoding, newline="")
    reader = csv.reader(stream, delimiter="\t" if fmt == "tsv" else ",", quotechar='"', doublequote=True,
                        strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise _empty(path, f"a header line with a {text_column!r} column")
        index = _text_index(header, text_column, path)
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
                yield Chunk(texts=[r[index] for r in rows], errors=[None] * len(rows), columns=header, rows=rows,
                            first_line=first)
                yielded = True
                first, rows = reader.line_num + 1, []
        if rows or not yielded:
            yield Chunk(texts=[r[index] for r in rows], errors=[None] * len(rows), columns=header, rows=rows,
                        first_line=first)
    except csv.Error as err:
        raise UserError(f"{path}: line {reader.line_num}: malformed {fmt.upper()} ({err}): a cell that starts "
                        'with " must be quoted whole, its quotes doubled') from None
    finally:
        if path != "-":
            stream.close()


def _read_lines(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    # Lines end at LF only (CRLF too): a lone CR inside a post is part of the post.
    stream = _text_stream(path, encoding, newline="\n")
    try:
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
                    if path != "-":
                        raise _empty(path, "one post per line")
                    yield Chunk(texts=[], errors=[], columns=[text_column], rows=[])
                return
            yield Chunk(texts=batch, errors=[None] * len(batch), columns=[text_column], rows=[[t] for t in batch],
                        first_line=line)
            line += len(batch)
    finally:
        if path != "-":
            stream.close()


def _read_jsonl(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    stream = _text_stream(path, encoding, newline="\n")
    try:
        records: list[Record | None] = []
        texts: list[str | None] = []
        errors: list[str | None] = []
        first = 1
        number = 0
        for number, raw in enumerate(stream, start=1):
            if not raw.strip(" \t\r\n"):
                continue  # blank lines separate nothing in JSON Lines; they are not records
            record, text, problem = parse_record(raw, number, text_column)
            if problem is not None and on_error != "mark":
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
    finally:
        if path != "-":
            stream.close()


def _keys(records: list[Record | None]) -> list[str]:
    return list(dict.fromkeys(key for record in records if record is not None for key in record.fields))


def _not_json(name: str):
    raise ValueError(f"{name} is not JSON")


# Numbers are kept as written (never converted: no float rounding, no limit on digits); only validated.
_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_not_json)
_SPACE = re.compile(r"[ \t\r\n]*")


def parse_object(line: str) -> tuple[str, dict[str, str]]:
    """A JSON object's text (``{`` to ``}``) and the JSON text of each top-level value, by key (the last of a
    repeated key, as JSON readers do). Raises ValueError (JSONDecodeError) if the line is not one JSON value,
    TypeError if it is a value other than an object, RecursionError if it is nested too deeply."""
    start = _SPACE.match(line).end()
    if line[start:start + 1] != "{":
        _DECODER.decode(line)  # raises for invalid JSON
        raise TypeError("expected a JSON object")
    fields: dict[str, str] = {}
    i = _SPACE.match(line, start + 1).end()
    if line[i:i + 1] == "}":
        i += 1
    else:
        while True:
            if line[i:i + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", line, i)
            key, i = scanstring(line, i + 1)
            i = _SPACE.match(line, i).end()
            if line[i:i + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", line, i)
            i = _SPACE.match(line, i + 1).end()
            try:
                _, stop = _DECODER.scan_once(line, i)
            except StopIteration as err:
                raise json.JSONDecodeError("Expecting value", line, err.value) from None
            fields.pop(key, None)
            fields[key] = line[i:stop]
            i = _SPACE.match(line, stop).end()
            if line[i:i + 1] == ",":
                i = _SPACE.match(line, i + 1).end()
            elif line[i:i + 1] == "}":
                i += 1
                break
            else:
                raise json.JSONDecodeError("Expecting ',' delimiter", line, i)
    end = _SPACE.match(line, i).end()
    if end != len(line):
        raise json.JSONDecodeError("Extra data", line, end)
    return line[start:i], fields


def parse_record(line: str, number: int, text_column: str) -> tuple[Record | None, str | None, str | None]:
    """A JSON Lines line as (record, post, problem): a broken line keeps its fields where it is an object."""
    try:
        text, fields = parse_object(line)
    except json.JSONDecodeError as err:
        return None, None, f"not valid JSON ({err.msg} at column {err.colno})"
    except TypeError as err:
        return None, None, str(err)
    except RecursionError:
        return None, None, "not readable: JSON nested too deeply"
    except ValueError as err:
        return None, None, f"not valid JSON ({err})"
    record = Record(number, text, fields)
    if text_column not in fields:
        return record, None, f"no {text_column!r} field"
    raw = fields[text_column]
    if raw == "null":
        return record, "", None
    if raw[0] != '"':
        return record, None, f"field {text_column!r} is not a string"
    return record, json.loads(raw), None


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_cell(record: Record, key: str) -> str | None:
    """A JSON value as a table cell: a string as itself, null (or no such key) as None, anything else as its
    JSON text. A lone surrogate (\\ud800 in JSON) cannot be written as UTF-8: that is the user's error."""
    raw = record.fields.get(key)
    if raw is None or raw == "null":
        return None
    if raw[0] != '"':
        return raw
    value = json.loads(raw)
    if "\\" in raw and _SURROGATE.search(value):
        raise UserError(f"line {record.number}: field {key!r} holds a lone surrogate (an unpaired \\ud800-\\udfff "
                        "escape), which UTF-8 cannot encode: write JSON Lines (--format jsonl), which keeps it")
    return value


_TEXT_TYPES = ("string", "large_string", "string_view", "null")


def _read_parquet(path, fmt, chunk_size, text_column, encoding, on_error) -> Iterator[Chunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source: Any = path
    if path == "-" or path.endswith(".gz") or not _regular_file(path):
        # Parquet is read from its end: stdin, a pipe or a gzip stream is read into memory first.
        handle = _open_binary(path)
        try:
            source = pa.BufferReader(handle.read())
        finally:
            if path != "-":
                handle.close()
    try:
        parquet = pq.ParquetFile(source)
    except FileNotFoundError:
        raise UserError(f"input file not found: {path}") from None
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path} is not a readable Parquet file: {err}") from None
    schema = parquet.schema_arrow
    index = _text_index(schema.names, text_column, path)
    kind = schema.field(index).type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if str(kind) not in _TEXT_TYPES and not pa.types.is_string(kind) and not pa.types.is_large_string(kind):
        raise UserError(f"{path}: column {text_column!r} holds {kind}, not text: pass the column of posts with "
                        "--text-column")
    line = 1
    try:
        for batch in parquet.iter_batches(batch_size=chunk_size):
            texts = ["" if t is None else t for t in batch.column(index).to_pylist()]
            yield Chunk(texts=texts, errors=[None] * len(texts), columns=schema.names, batch=batch, first_line=line)
            line += len(texts)
    except (pa.ArrowException, OSError) as err:
        raise UserError(f"{path}: damaged Parquet data: {err}") from None
    if line == 1:
        yield Chunk(texts=[], errors=[], columns=schema.names, batch=schema.empty_table(), first_line=line)


def count_rows(path: str, fmt: str) -> int | None:
    """A quick row count for the progress bar's ETA: None unless the input is a regular file that can be read
    twice (stdin, a pipe or FIFO would be consumed) without decompressing it."""
    if path == "-" or path.endswith(".gz") or not _regular_file(path):
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


# --- the output's layout -------------------------------------------------------------------------------------

def output_columns(columns: list[str], added: list[str], fmt: str, path: str = "the input") -> list[str]:
    """The output's columns: the input's, then the predictions'. An input column named like a prediction
    column would be overwritten, and a repeated name cannot be a JSON key or a Parquet column: both refused."""
    clash = [name for name in added if name in columns]
    if clash:
        raise UserError(f"{path} has a column {clash[0]!r}, which predict writes: rename it (output columns: "
                        f"{', '.join(added)})")
    if fmt != "jsonl":
        odd = next((name for name in columns if _SURROGATE.search(name)), None)
        if odd is not None:
            raise UserError(f"{path} has a field name {odd!r} with a lone surrogate (an unpaired \\ud800-\\udfff "
                            "escape), which UTF-8 cannot encode: write JSON Lines (--format jsonl), which keeps it")
    if fmt not in ("csv", "tsv"):
        seen: set[str] = set()
        for name in columns:
            if name in seen:
                raise UserError(f"{path} has two columns named {name!r}: {fmt} output needs distinct names "
                                "(write CSV or TSV, or rename one)")
            seen.add(name)
    return [*columns, *added]


_QUOTE = {"csv": re.compile('[,"\r\n]'), "tsv": re.compile('[\t"\r\n]')}


def delimited(rows: Iterable[list[str]], fmt: str) -> str:
    """CSV/TSV lines: the one writer. A cell holding the separator, a quote, CR or LF is quoted (its quotes
    doubled), and so is the empty cell of a one-column row; Python's csv and pandas read every cell back as it
    was. (The csv module quotes a lone CR only when it ends its lines with one, hence this function.)"""
    separator, special = ("\t" if fmt == "tsv" else ","), _QUOTE[fmt]
    lines = []
    for row in rows:
        if len(row) == 1 and row[0] == "":
            lines.append('""\n')
            continue
        lines.append(separator.join('"' + cell.replace('"', '""') + '"' if special.search(cell) else cell
                                    for cell in row) + "\n")
    return "".join(lines)


def _text(value: Any) -> str:
    """A prediction or Parquet value as a CSV/TSV cell: None as empty, a string as itself, others as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(_jsonable(value), ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    """A Python value from Parquet as JSON can hold it (a non-finite float as null, a date as ISO text)."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _cells(chunk: Chunk, columns: list[str]) -> list[list[str]]:
    """The input's cells of every row, as text, under ``columns``."""
    if chunk.rows is not None:
        return chunk.rows
    if chunk.batch is not None:
        values = [[_text(v) for v in chunk.batch.column(i).to_pylist()] for i in range(chunk.batch.num_columns)]
        return [list(row) for row in zip(*values, strict=True)] if values else [[] for _ in range(len(chunk))]
    return [["" if record is None else (json_cell(record, key) or "") for key in columns]
            for record in chunk.records]


def _prediction_rows(predictions: dict[str, list], n: int) -> list[list[str]]:
    if not predictions:
        return [[] for _ in range(n)]
    return [[_text(v) for v in row] for row in zip(*predictions.values(), strict=True)]


def _json_lines(chunk: Chunk, predictions: dict[str, list]) -> str:
    added = list(predictions)
    extras = [dict(zip(added, row, strict=True)) for row in zip(*predictions.values(), strict=True)] \
        if added else [{} for _ in range(len(chunk))]
    lines = []
    if chunk.records is not None:
        for record, extra in zip(chunk.records, extras, strict=True):
            tail = json.dumps(extra, ensure_ascii=False)[1:-1]
            if record is None:
                lines.append("{" + tail + "}\n")
                continue
            output_columns(list(record.fields), added, "jsonl", f"line {record.number}")
            body = record.text[:-1].rstrip(" \t\r\n")
            lines.append(body + ("," if record.fields and tail else "") + tail + "}\n")
        return "".join(lines)
    columns = output_columns(chunk.columns, added, "jsonl")[:len(chunk.columns)]
    if chunk.rows is not None:
        rows: Iterable = chunk.rows
    else:
        rows = zip(*[[_jsonable(v) for v in chunk.batch.column(i).to_pylist()]
                     for i in range(chunk.batch.num_columns)], strict=True) if columns else [[]] * len(chunk)
    for row, extra in zip(rows, extras, strict=True):
        lines.append(json.dumps({**dict(zip(columns, row, strict=True)), **extra}, ensure_ascii=False) + "\n")
    return "".join(lines)


@dataclass
class Rendered:
    """Output rows as UTF-8, ready to write: CSV/TSV rows without their header (and their columns), or JSON
    lines."""

    data: bytes
    columns: list[str] = field(default_factory=list)


def render(chunk: Chunk, predictions: dict[str, list], fmt: str) -> Rendered | None:
    """Lay out a chunk's output rows, or None where only the :class:`Writer` can (Parquet; JSON records written
    as a table, whose columns are those of the first chunk). Pure, so worker processes can do it."""
    if fmt == "jsonl":
        return Rendered(_json_lines(chunk, predictions).encode("utf-8"))
    if fmt in ("csv", "tsv") and chunk.records is None:
        columns = output_columns(chunk.columns, list(predictions), fmt)
        rows = [cells + extra for cells, extra in zip(_cells(chunk, chunk.columns),
                                                      _prediction_rows(predictions, len(chunk)), strict=True)]
        return Rendered(delimited(rows, fmt).encode("utf-8"), columns)
    return None


def _arrow_table(chunk: Chunk, columns: list[str], predictions: dict[str, list]):
    """A chunk's output as an Arrow table: Parquet columns keep their types, text and JSON values are strings."""
    import pyarrow as pa

    names = columns[:len(columns) - len(predictions)]
    if chunk.batch is not None:
        arrays = list(chunk.batch.columns)
    elif chunk.rows is not None:
        arrays = [pa.array([row[i] for row in chunk.rows], pa.string()) for i in range(len(names))]
    else:
        arrays = [pa.array([None if record is None else json_cell(record, key) for record in chunk.records],
                           pa.string()) for key in names]
    for name, values in predictions.items():
        kind = (pa.float64() if name.endswith("_prob") else
                pa.string() if name.endswith("_why") or name == ERROR_COLUMN else pa.int64())
        arrays.append(pa.array(values, kind))
    return pa.Table.from_arrays(arrays, names=columns)


# --- writing -------------------------------------------------------------------------------------------------

def _reason(err: BaseException) -> str:
    """Why a write failed, in the system's words (``No space left on device``)."""
    errno = getattr(err, "errno", None)
    return os.strerror(errno) if errno else str(err)


_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(target: Path) -> list[Path]:
    """Remove temporary files of ``target`` left by runs that were killed (their process is gone)."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            found = _TMP.match(entry.name)
            if found and found["name"] == target.name and not _alive(int(found["pid"])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM while the output is committed, so an interrupt cannot fall between close and rename."""
    held = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    except (AttributeError, ValueError, OSError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Writer:
    """Writes prediction chunks in order. A file is written to a temporary name beside it (beside the file a
    symbolic link points to) and renamed over it when complete; a device or pipe (``/dev/stdout``, a FIFO) is
    written in place. Temporary files of killed runs are swept when the next run writes the same file."""

    def __init__(self, path: str, fmt: str):
        self.path = path
        self.fmt = fmt
        self.columns: list[str] | None = None
        self._parquet = None
        self._tmp: Path | None = None
        self._target: Path | None = None
        self._mode = None
        if path == "-":
            if fmt == "parquet":
                raise UserError("Parquet output needs a file: pass --output FILE.parquet")
            sys.stdout.flush()
            self._raw: IO[bytes] = sys.stdout.buffer
        else:
            self._raw = self._open(path)
        self._binary = (gzip.GzipFile(filename=Path(path).name, mode="wb", fileobj=self._raw)
                        if path.endswith(".gz") else self._raw)

    def _open(self, path: str) -> IO[bytes]:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            info = None
        except OSError as err:
            raise UserError(f"cannot write {path}: {err.strerror}") from None
        if info is not None and stat.S_ISDIR(info.st_mode):
            raise UserError(f"output is a folder, not a file: {path}")
        try:
            # A device or pipe (also /dev/stdout or /proc/self/fd/1 when they lead to a file opened by the shell)
            # is written in place: replacing it would break it, or write to a file no one holds open.
            in_place = os.path.abspath(path).startswith(("/dev/", "/proc/"))
            if info is not None and (in_place or not stat.S_ISREG(info.st_mode)):
                return open(path, "wb")  # noqa: SIM115  (closed in close())
            target = Path(os.path.realpath(path))
            target.parent.mkdir(parents=True, exist_ok=True)
            sweep_stale(target)
            self._target = target
            self._tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            self._mode = stat.S_IMODE(info.st_mode) if info is not None else None
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            return os.fdopen(fd, "wb")
        except OSError as err:
            self._discard()
            raise UserError(f"cannot write {path}: {err.strerror}") from None

    def _write(self, data: bytes) -> None:
        try:
            self._binary.write(data)
        except BrokenPipeError:
            raise  # the reader went away (`| head`): handled at the CLI edge
        except OSError as err:
            raise UserError(f"cannot write {'stdout' if self.path == '-' else self.path}: {_reason(err)}") from None

    def write_rendered(self, rendered: Rendered) -> None:
        """Write rows that :func:`render` laid out (possibly in a worker process), with the header first."""
        if self.fmt != "jsonl":
            if self.columns is None:
                self.columns = rendered.columns
                self._write(delimited([rendered.columns], self.fmt).encode("utf-8"))
            elif rendered.columns != self.columns:  # never expected: a table input has one header
                raise UserError("the input's columns changed between chunks")
        self._write(rendered.data)

    def write_chunk(self, chunk: Chunk, predictions: dict[str, list]) -> None:
        """Write rows :func:`render` cannot lay out: Parquet, or JSON records written as a table."""
        first = self.columns is None
        if first:
            self.columns = output_columns(chunk.columns, list(predictions), self.fmt)
        names = self.columns[:len(self.columns) - len(predictions)]
        extra = [c for c in chunk.columns if c not in names]
        if extra:
            raise UserError(f"input field {extra[0]!r} first appears after the first chunk; write JSON Lines "
                            "output (--format jsonl) to keep every field, or raise --chunk-size")
        if self.fmt == "parquet":
            self._write_parquet(chunk, predictions)
            return
        rows = [cells + extra for cells, extra in zip(_cells(chunk, names), _prediction_rows(predictions, len(chunk)),
                                                      strict=True)]
        header = delimited([self.columns], self.fmt) if first else ""
        self._write((header + delimited(rows, self.fmt)).encode("utf-8"))

    def _write_parquet(self, chunk: Chunk, predictions: dict[str, list]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = _arrow_table(chunk, self.columns, predictions)
        try:
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._binary, table.schema.remove_metadata())
            self._parquet.write_table(table.cast(self._parquet.schema))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
            raise UserError(f"cannot write {self.path} as Parquet: {err}") from None
        except (OSError, pa.ArrowException) as err:
            raise UserError(f"cannot write {self.path}: {_reason(err)}") from None

    def close(self, success: bool) -> None:
        """Finish the output: on success flush it to disk and rename it into place, otherwise remove it."""
        if self.path == "-":
            if success:
                try:
                    self._raw.flush()
                except BrokenPipeError:
                    raise
                except OSError as err:
                    raise UserError(f"cannot write stdout: {_reason(err)}") from None
            return
        if not success:
            self._discard()
            return
        with _signals_held():
            try:
                if self._parquet is not None:
                    self._parquet.close()
                if self._binary is not self._raw:
                    self._binary.close()
                self._raw.flush()
                if self._tmp is not None:
                    os.fsync(self._raw.fileno())
                self._raw.close()
                if self._tmp is not None:
                    if self._mode is not None:
                        os.chmod(self._tmp, self._mode)
                    os.replace(self._tmp, self._target)
                    self._tmp = None
            except OSError as err:
                self._discard()
                raise UserError(f"cannot write {self.path}: {_reason(err)}") from None
            except Exception:
                self._discard()
                raise

    def _discard(self) -> None:
        """Close quietly and remove the temporary file: the previous output, if any, stays as it was."""
        if self._parquet is not None:
            with contextlib.suppress(Exception):
                self._parquet.close()
            self._parquet = None
        for handle in (getattr(self, "_binary", None), getattr(self, "_raw", None)):
            if handle is not None:
                with contextlib.suppress(Exception):
                    handle.close()
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None
