"""The parts of a ``predict --cluster`` run: which input file becomes which output part, and the manifest that
records each finished part (so ``--resume`` can keep them)."""

from __future__ import annotations

import argparse
import glob
import os
from dataclasses import dataclass
from pathlib import Path

from pipeline import streams
from pipeline.errors import UserError
from pipeline.files import TEMPORARY, read_json, write_json

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
MANIFEST_FORMAT = 1
_EXTENSION = {"parquet": ".parquet", "csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl"}


@dataclass(frozen=True)
class Partition:
    """One input file and the output part it becomes."""

    source: str  # absolute path, as the workers see it (a shared file system)
    fmt: str
    part: str
    size: int


def input_files(pattern: str) -> list[str]:
    """The files of a glob or a folder, sorted by name: hidden files and ``_`` files (``_SUCCESS``) are skipped."""
    if os.path.isdir(pattern):
        names = [str(path) for path in Path(pattern).iterdir()
                 if path.is_file() and not path.name.startswith((".", "_"))]
    elif os.path.isfile(pattern):
        names = [pattern]
    else:
        names = [name for name in glob.glob(pattern) if os.path.isfile(name)
                 and not os.path.basename(name).startswith((".", "_"))]
    if not names:
        raise UserError(f"no input files match {pattern}")
    return sorted(os.path.abspath(name) for name in names)


def partitions(pattern: str, input_format: str | None, out_format: str) -> list[Partition]:
    files = input_files(pattern)
    if out_format == "txt":
        raise UserError("--cluster writes parquet, csv, tsv or jsonl parts, not txt")
    width = max(5, len(str(len(files) - 1)))
    found = []
    for n, source in enumerate(files):
        fmt = streams.format_of(source, input_format, default="txt")
        found.append(Partition(source, fmt, f"part-{n:0{width}d}{_EXTENSION[out_format]}", os.path.getsize(source)))
    return found


def settings_of(args: argparse.Namespace, out_format: str, thresholds: dict, digest: str) -> dict:
    """What decides a part's content: a part written under other settings cannot be resumed."""
    return {"format": out_format, "model_sha256": digest, "thresholds": thresholds, "explain": args.explain,
            "only_flagged": args.only_flagged, "text_column": args.text_column, "encoding": args.encoding,
            "on_error": args.on_error, "max_chars": args.max_chars}


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.exists():
        return None
    manifest = read_json(path)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise UserError(f"{path} is not a manifest this version understands: write to a new folder")
    return manifest


def finished_parts(manifest: dict | None, settings: dict, todo: list[Partition], folder: Path) -> dict[str, dict]:
    """The manifest's entries that ``--resume`` can keep: same settings, same input file, part present whole."""
    if manifest is None:
        return {}
    if manifest.get("settings") != settings:
        raise UserError(f"{folder} was written with other settings or another model: --resume needs the same "
                        "options (or drop --resume to rewrite every part)")
    wanted = {p.part: p for p in todo}
    kept = {}
    for entry in manifest.get("parts", []):
        partition = wanted.get(entry.get("part"))
        if (partition is not None and entry.get("input") == partition.source
                and entry.get("input_bytes") == partition.size and (folder / partition.part).is_file()
                and (folder / partition.part).stat().st_size == entry.get("bytes")):
            kept[partition.part] = entry
    return kept


def write_manifest(folder: Path, settings: dict, entries: dict[str, dict], todo: list[Partition],
                   complete: bool) -> None:
    parts = [entries[p.part] for p in todo if p.part in entries]
    write_json({"format": MANIFEST_FORMAT, "complete": complete, "settings": settings, "parts": parts,
                "rows": sum(e["rows"] for e in parts), "written": sum(e["written"] for e in parts)},
               folder / MANIFEST)


def drop_stale_parts(folder: Path, manifest: dict | None, todo: list[Partition]) -> None:
    """A fresh run: the parts of an earlier run that no input file makes now are removed."""
    current = {p.part for p in todo}
    for entry in (manifest or {}).get("parts", []):
        if entry.get("part") not in current and "/" not in str(entry.get("part")):
            (folder / str(entry.get("part"))).unlink(missing_ok=True)


def sweep_temporary(folder: Path, todo: list[Partition]) -> None:
    """Remove temporary files of parts whose writer was killed (none is running once the run is over)."""
    names = {p.part for p in todo}
    for entry in folder.iterdir():
        found = TEMPORARY.match(entry.name)
        if found and found["name"] in names:
            entry.unlink(missing_ok=True)
