"""Reading and writing the project's files: atomic writes, Parquet/JSON/YAML, hashes, progress bars.

pandas is imported only by the table functions, so the scoring path can use the rest without it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

PREPARED_TABLES = ("labeled", "background")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Finished outputs get the usual permissions (0666 less the umask), whatever the temporary file had.
FILE_MODE = 0o666 & ~_umask()


# What temporary_path names: the file being written and the writer's pid.
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.tmp$")


def temporary_path(path: Path) -> Path:
    """Where this process writes ``path`` before renaming it: ``.<name>.<pid>.tmp`` beside it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(target: Path) -> list[Path]:
    """Remove temporary files of ``target`` left by writers that were killed (their process is gone)."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            found = TEMPORARY.match(entry.name)
            if found and found["name"] == target.name and not _alive(int(found["pid"])):
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk and renamed over ``path``.

    A reader sees the old file or the new one, never half of one, even if the writer is killed; what a killed
    writer left behind is swept by the next write of the same file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = temporary_path(path)
    tmp.touch()
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(data: Any, path: str | Path) -> None:
    write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n", path)


def read_json(path: str | Path, what: str = "file", missing: str | None = None) -> Any:
    """A JSON file's content; a missing or unreadable file is a UserError naming ``what`` it is (``missing``: the
    message for a missing file, to say what to do)."""
    return _parsed(path, what, json.loads, (json.JSONDecodeError,), missing)


def read_yaml(path: str | Path, what: str, missing: str | None = None) -> Any:
    """A YAML file's content, as :func:`read_json`."""
    import yaml

    return _parsed(path, what, yaml.safe_load, (yaml.YAMLError,), missing)


def _parsed(path: str | Path, what: str, parse, errors: tuple, missing: str | None) -> Any:
    try:
        return parse(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(missing or f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, *errors) as err:
        raise UserError(f"cannot read {what} {path}: {err.__class__.__name__}") from None


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet file written by an earlier stage; a missing one means that stage has not run."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} is missing: run the earlier pipeline stages first (dvc repro)")
    import pandas as pd

    return pd.read_parquet(path)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def progress(items: Iterable, desc: str, total: int | None = None, disable: bool | None = None):
    """A progress bar on stderr, silent when stderr is not a terminal."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = not sys.stderr.isatty()
    return tqdm(items, desc=desc, total=total, disable=disable, unit=" posts", file=sys.stderr,
                dynamic_ncols=True, mininterval=0.5)
