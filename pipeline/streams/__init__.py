"""Posts files in, predictions out: reading an input in chunks and writing each chunk's rows in the same order.

Formats: CSV, TSV, JSON Lines, plain text (one post per line) and Parquet; ``.gz`` files are (de)compressed by
extension; ``-`` is stdin or stdout. Every input row becomes exactly one chunk row, and so one output row: a row
that cannot be read is an error naming its line, or, with ``on_error="mark"``, a JSON Lines row with an ``error``
message and no prediction.

A library (a noun): ``predict``, ``predict --cluster`` and the pool of ``suggest`` and ``keywords`` read with it.
Modules: :mod:`~pipeline.streams.chunks` (a chunk of rows, formats, JSON Lines records kept as written),
:mod:`~pipeline.streams.readers`, :mod:`~pipeline.streams.layout` (output rows as text or Arrow) and
:mod:`~pipeline.streams.writers`. Importing it costs only the standard library: pyarrow is imported for Parquet.
"""

from pipeline.streams.chunks import ERROR_COLUMN, FORMATS, TRUNCATED_COLUMN, Chunk, Record, format_of
from pipeline.streams.layout import Rendered, render
from pipeline.streams.readers import Reader, check_encoding, count_rows, read_chunks
from pipeline.streams.writers import Writer, check_distinct

__all__ = ["ERROR_COLUMN", "FORMATS", "TRUNCATED_COLUMN", "Chunk", "Reader", "Record", "Rendered", "Writer",
           "check_distinct", "check_encoding", "count_rows", "format_of", "read_chunks", "render"]
