"""The output's layout: the input's cells (or JSON text) and the predictions, as CSV/TSV, JSON Lines or Arrow.

Pass-through is exact. A CSV/TSV cell is written back as the string a standard reader saw, quoted wherever a
standard reader (Python's ``csv``, pandas) needs it. JSON Lines output is the input line with the prediction fields
added before its closing brace; a table output holds a JSON string value as itself and any other value as its JSON
text (null as an empty cell). A Parquet input's columns keep their Arrow types in Parquet output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import UserError
from pipeline.streams.chunks import ERROR_COLUMN, SURROGATE, Chunk, json_cell


def output_columns(columns: list[str], added: list[str], fmt: str, path: str = "the input") -> list[str]:
    """The output's columns: the input's, then the predictions'. An input column named like a prediction
    column would be overwritten, and a repeated name cannot be a JSON key or a Parquet column: both refused."""
    clash = [name for name in added if name in columns]
    if clash:
        raise UserError(f"{path} has a column {clash[0]!r}, which predict writes: rename it (output columns: "
                        f"{', '.join(added)})")
    if fmt != "jsonl":
        odd = next((name for name in columns if SURROGATE.search(name)), None)
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


# A cell is quoted when it holds the separator, a quote, CR or LF, or starts with a blank: pandas' C parser cuts an
# unquoted cell that opens with a long run of blanks (300,000 spaces read back as 37,859; pandas 3.1).
_QUOTE = {"csv": re.compile('^[ \t]|[,"\r\n]'), "tsv": re.compile('^ |[\t"\r\n]')}
_NEEDS_LOOK = {"csv": re.compile('["\r\n]|(?:^|,)[ \t]'), "tsv": re.compile('["\r\n]|(?:^|\t) ')}
_JSON = json.JSONEncoder(ensure_ascii=False)


def delimited(rows: Iterable[list[str]], fmt: str) -> str:
    """CSV/TSV lines: the one writer. A cell holding the separator, a quote, CR or LF, or starting with a blank, is
    quoted (its quotes doubled), and so is the empty cell of a one-column row; Python's csv and pandas read every
    cell back as it was. (The csv module quotes a lone CR only when it ends its lines with one, hence this
    function.)"""
    separator, special, look = ("\t" if fmt == "tsv" else ","), _QUOTE[fmt], _NEEDS_LOOK[fmt]
    lines = []
    for row in rows:
        if len(row) == 1 and row[0] == "":
            lines.append('""\n')
            continue
        line = separator.join(row)
        # Most rows need no quoting: one look at the joined line (a separator too many is one inside a cell).
        if line.count(separator) != len(row) - 1 or look.search(line):
            line = separator.join('"' + cell.replace('"', '""') + '"' if special.search(cell) else cell
                                  for cell in row)
        lines.append(line + "\n")
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


def cells(chunk: Chunk, columns: list[str]) -> list[list[str]]:
    """The input's cells of every row, as text, under ``columns``."""
    if chunk.rows is not None:
        return chunk.rows
    if chunk.batch is not None:
        values = [[_text(v) for v in chunk.batch.column(i).to_pylist()] for i in range(chunk.batch.num_columns)]
        return [list(row) for row in zip(*values, strict=True)] if values else [[] for _ in range(len(chunk))]
    return [["" if record is None else (json_cell(record, key) or "") for key in columns]
            for record in chunk.records]


def _text_column(values: list) -> list[str]:
    """A prediction column as CSV/TSV cells, as :func:`_text` gives them; the usual columns (all floats, all
    integers, all strings) without a Python call per value."""
    if None not in values:
        kinds = set(map(type, values))
        if kinds in ({float}, {int}):
            return list(map(repr, values))
        if kinds == {str}:
            return values
    return [_text(v) for v in values]


def prediction_rows(predictions: dict[str, list], n: int) -> list[list[str]]:
    if not predictions:
        return [[] for _ in range(n)]
    return [list(row) for row in zip(*map(_text_column, predictions.values()), strict=True)]


def _json_lines(chunk: Chunk, predictions: dict[str, list]) -> str:
    added = list(predictions)
    lines = []
    if chunk.records is not None:
        extras = [dict(zip(added, row, strict=True)) for row in zip(*predictions.values(), strict=True)] \
            if added else [{} for _ in range(len(chunk))]
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
    # One dict per row, the input's fields then the predictions' (output_columns refused any clash).
    names = [*columns, *added]
    values = zip(*predictions.values(), strict=True) if added else [()] * len(chunk)
    dumps = _JSON.encode
    for row, predicted in zip(rows, values, strict=True):
        lines.append(dumps(dict(zip(names, (*row, *predicted), strict=True))) + "\n")
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
        rows = [row + extra for row, extra in zip(cells(chunk, chunk.columns),
                                                  prediction_rows(predictions, len(chunk)), strict=True)]
        return Rendered(delimited(rows, fmt).encode("utf-8"), columns)
    return None


def arrow_table(chunk: Chunk, columns: list[str], predictions: dict[str, list]):
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

