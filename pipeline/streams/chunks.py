"""A chunk of an input file's rows, the formats predict reads and writes, and JSON Lines records kept as written.

A JSON Lines line is parsed into a :class:`Record` that keeps its text and the JSON text of each top-level value:
numbers are validated but never converted (no float rounding, no limit on digits), so they can be written back
exactly as they were.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from json.decoder import scanstring
from pathlib import Path
from typing import Any, NamedTuple

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


SURROGATE = re.compile("[\ud800-\udfff]")


def json_cell(record: Record, key: str) -> str | None:
    """A JSON value as a table cell: a string as itself, null (or no such key) as None, anything else as its
    JSON text. A lone surrogate (\\ud800 in JSON) cannot be written as UTF-8: that is the user's error."""
    raw = record.fields.get(key)
    if raw is None or raw == "null":
        return None
    if raw[0] != '"':
        return raw
    value = json.loads(raw)
    if "\\" in raw and SURROGATE.search(value):
        raise UserError(f"line {record.number}: field {key!r} holds a lone surrogate (an unpaired \\ud800-\\udfff "
                        "escape), which UTF-8 cannot encode: write JSON Lines (--format jsonl), which keeps it")
    return value
