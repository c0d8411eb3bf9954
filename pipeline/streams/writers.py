"""Writing predictions in input order: to stdout, or to a file replaced only when it is complete.

A file is written to a temporary name beside it (beside the file a symbolic link points to) and renamed over it
when complete, so a failed or interrupted run leaves the previous output as it was; a device or pipe
(``/dev/stdout``, a FIFO) is written in place. Temporary files of killed runs are swept by the next run that
writes the same file.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import stat
import sys
from pathlib import Path
from typing import IO

from pipeline.errors import UserError
from pipeline.files import sweep_stale
from pipeline.streams.chunks import Chunk
from pipeline.streams.layout import Rendered, arrow_table, cells, delimited, output_columns, prediction_rows


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


def _reason(err: BaseException) -> str:
    """Why a write failed, in the system's words (``No space left on device``)."""
    errno = getattr(err, "errno", None)
    return os.strerror(errno) if errno else str(err)


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
            self._binary = self._raw
            return
        try:
            self._raw = self._open(path)
            self._binary = (gzip.GzipFile(filename=Path(path).name, mode="wb", fileobj=self._raw)
                            if path.endswith(".gz") else self._raw)
        except BaseException:
            # An interrupt (SIGINT, or SIGTERM raising) just after the temporary file was made: no caller holds
            # this writer to remove it.
            self._discard()
            raise

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
            try:
                return os.fdopen(fd, "wb")
            except BaseException:
                os.close(fd)
                raise
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
        rows = [row + extra for row, extra in zip(cells(chunk, names), prediction_rows(predictions, len(chunk)),
                                                  strict=True)]
        header = delimited([self.columns], self.fmt) if first else ""
        self._write((header + delimited(rows, self.fmt)).encode("utf-8"))

    def _write_parquet(self, chunk: Chunk, predictions: dict[str, list]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = arrow_table(chunk, self.columns, predictions)
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
