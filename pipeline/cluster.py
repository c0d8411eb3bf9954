"""Score a partitioned corpus on a Dask cluster: ``predict --cluster``, one output part per input file.

    python -m pipeline.predict --cluster local:2 --input 'posts/*.parquet' --output scored/
    python -m pipeline.predict --cluster tcp://head:8786 --input posts/ --output scored/ --format csv --resume

Each input file is one partition, read, scored and written by one task with the code local ``predict`` runs
(:func:`pipeline.streams.read_chunks`, ``predict._process``, :class:`pipeline.streams.Writer`), so a part holds
exactly the rows local predict writes for that file. Dask's own readers are not used: they re-parse CSV and JSON
with pandas, which would not keep the cells and JSON texts exactly as written.

The model reaches the workers through :class:`ModelPlugin`, once per worker process; a task carries only a file
name and a few options, so the scheduler's memory does not grow with the model or with the number of parts. A
part is written under a temporary name and renamed when complete; a worker lost mid-task has its task rerun by
Dask, so every part is complete or absent. ``_manifest.json`` in the output folder records each finished part
and its row counts (rewritten as parts finish, so ``--resume`` can continue an interrupted run); ``_SUCCESS``
marks a complete run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import hashlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import streams
from pipeline.errors import UserError
from pipeline.files import progress

try:
    from distributed import WorkerPlugin
except ImportError:  # Dask is an optional extra: --cluster says so when it is used
    WorkerPlugin = object

log = logging.getLogger("predict")

MANIFEST = "_manifest.json"
SUCCESS = "_SUCCESS"
MANIFEST_FORMAT = 1
PLUGIN = "weibo-signals-model"
_EXTENSION = {"parquet": ".parquet", "csv": ".csv", "tsv": ".tsv", "jsonl": ".jsonl"}
# The manifest is rewritten as parts finish, at most this often (and once at the end).
MANIFEST_EVERY_S = 2.0


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


def model_digest(model) -> str:
    """The SHA-256 the workers check the model file against: the card's (a ``.skops`` export: the file's)."""
    digest = model.card.get("model", {}).get("sha256") if isinstance(model.card.get("model"), dict) else None
    if digest is None or not str(model.source).endswith(".joblib"):
        from pipeline.files import sha256_file

        digest = sha256_file(model.source)
    return digest


class ModelPlugin(WorkerPlugin):
    """Loads the model once in each worker process (and again in a worker the nanny restarts).

    The model comes from ``path``, which every worker must be able to read, or from ``blob``, the file's bytes
    with its card, sent once per worker. Either way its SHA-256 must be ``sha256``, the digest of the file the
    client checked. jieba's cache goes to a folder of the worker's own, and the segmenter and OpenCC are warmed
    by scoring one post before the first task.
    """

    name = PLUGIN
    idempotent = False

    def __init__(self, path: str, sha256: str, blob: bytes | None = None, card: bytes | None = None):
        self.path, self.sha256, self.blob, self.card = path, sha256, blob, card

    def setup(self, worker) -> None:
        from pipeline import predict
        from pipeline.model_file import card_path, load_model

        folder = Path(worker.local_directory) / "weibo-signals"
        folder.mkdir(parents=True, exist_ok=True)
        path = Path(self.path)
        if self.blob is not None:
            path = folder / path.name
            path.write_bytes(self.blob)
            if self.card is not None:
                card_path(path).write_bytes(self.card)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != self.sha256:
            raise UserError(f"model {self.path} on worker {worker.address} is not the client's model (SHA-256 "
                            f"{digest[:12]}…, expected {self.sha256[:12]}…)")
        model = load_model(path)
        model.segmenter.cache_dir = str(folder / "jieba")
        model.predict_proba(["加载词典"])
        # As local predict does before it forks: the model's many objects move out of the collector's sight, so
        # its full collections during scoring no longer walk them all.
        gc.collect()
        gc.freeze()
        predict._MODEL = model

    def teardown(self, worker) -> None:
        from pipeline import predict

        predict._MODEL = None


def score_partition(partition: Partition, folder: str, options: dict) -> dict:
    """Read, score and write one part: the task a worker runs. Returns its manifest entry (and the tally for
    ``--summary``), nothing of the rows."""
    from pipeline import predict

    model = predict._MODEL
    if model is None:
        raise RuntimeError(f"the {PLUGIN} plugin has not loaded the model on this worker")
    tally = None
    if options["summary"]:
        from pipeline.prevalence import Tally

        cut = {**model.thresholds, **options["thresholds"]}
        # A seed per part: the parts' samples are independent, so merging them gives a uniform sample.
        tally = Tally(np.array([cut[label] for label in model.labels]), seed=options["index"])
    target = os.path.join(folder, partition.part)
    rows = scored = written = 0
    flagged = dict.fromkeys(model.labels, 0)
    truncated: list[int] = []
    success = False
    try:
        chunks = streams.read_chunks(partition.source, partition.fmt, options["chunk_size"], options["text_column"],
                                     options["encoding"], options["on_error"])
        writer = streams.Writer(target, options["format"])
        try:
            for chunk in chunks:
                done = predict._process(chunk, options)
                truncated += [rows + i + 1 for i in done.truncated]
                rows += done.rows
                scored += done.scored
                written += done.written
                for label in model.labels:
                    flagged[label] += done.flagged[label]
                if tally is not None and len(done.proba):
                    tally.add(done.proba)
                if done.rendered is not None:
                    writer.write_rendered(done.rendered)
                else:
                    writer.write_chunk(done.chunk, done.predictions)
            success = True
        finally:
            writer.close(success)
    except UserError as err:
        message = str(err)
        raise UserError(message if partition.source in message else f"{partition.source}: {message}") from None
    return {"part": partition.part, "input": partition.source, "input_bytes": partition.size, "rows": rows,
            "written": written, "scored": scored, "flagged": flagged, "bytes": os.path.getsize(target),
            "truncated": truncated[:10], "truncated_count": len(truncated), "tally": tally}


@contextlib.contextmanager
def connect(address: str) -> Iterator:
    """A client of the scheduler at ``address``, or of a LocalCluster started here (``local`` or ``local:N``)."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--cluster needs Dask: pip install 'weibo-signals[dask]' (or pip install -e '.[dask]')") \
            from None
    # Dask's INFO messages (scheduler started, worker registered…) would drown predict's own.
    logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger().level))
    found = re.fullmatch(r"local(?::(\d+))?", address)
    if found:
        from pipeline.predict import default_jobs

        workers = int(found[1]) if found[1] else default_jobs()
        if workers < 1:
            raise UserError("--cluster local:N needs N of at least 1")
        # One thread per worker process: scoring holds the GIL, so more threads would only share one core.
        # The workers' own logs are silenced: a task's error reaches this process and is reported here, once.
        # Dask's profiler samples every worker's stack 100 times a second, which costs pure-Python scoring a
        # good share of its speed: off (on a cluster started apart: DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=0).
        with (dask.config.set({"distributed.worker.profile.enabled": False}),
              LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.CRITICAL) as cluster,
              Client(cluster) as client):
            yield client
        return
    try:
        client = Client(address, timeout="30s")
    except OSError as err:
        raise UserError(f"cannot reach the Dask scheduler at {address}: {err}") from None
    with client:
        yield client


def settings_of(args: argparse.Namespace, out_format: str, thresholds: dict, digest: str) -> dict:
    """What decides a part's content: a part written under other settings cannot be resumed."""
    return {"format": out_format, "model_sha256": digest, "thresholds": thresholds, "explain": args.explain,
            "only_flagged": args.only_flagged, "text_column": args.text_column, "encoding": args.encoding,
            "on_error": args.on_error, "max_chars": args.max_chars}


def read_manifest(folder: Path) -> dict | None:
    from pipeline.files import read_json

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
    from pipeline.files import write_json

    parts = [entries[p.part] for p in todo if p.part in entries]
    write_json({"format": MANIFEST_FORMAT, "complete": complete, "settings": settings, "parts": parts,
                "rows": sum(e["rows"] for e in parts), "written": sum(e["written"] for e in parts)},
               folder / MANIFEST)


def sweep_temporary(folder: Path, todo: list[Partition]) -> None:
    """Remove temporary files of parts whose writer was killed (none is running once the run is over)."""
    names = {p.part for p in todo}
    for entry in folder.iterdir():
        found = re.fullmatch(r"\.(?P<name>.+)\.\d+\.tmp", entry.name)
        if found and found["name"] in names:
            entry.unlink(missing_ok=True)


def load_on_workers(client, model, digest: str, ship: bool) -> int:
    """Register :class:`ModelPlugin` (every worker, present and future, loads the model); the number of workers."""
    source = Path(model.source).resolve()
    if ship:
        card = source.with_name(f"{source.stem}_card.json")
        plugin = ModelPlugin(str(source), digest, source.read_bytes(), card.read_bytes() if card.is_file() else None)
    else:
        plugin = ModelPlugin(str(source), digest)
    failed = [reply for reply in (client.register_plugin(plugin) or {}).values()
              if isinstance(reply, dict) and reply.get("status") == "error"]
    if failed:
        raise failed[0]["exception"]
    return len(client.scheduler_info().get("workers", {}))


def score_all(client, remaining: list[Partition], todo: list[Partition], folder: Path, options: dict, tag: str,
              quiet: bool) -> Iterator[dict]:
    """Submit one task per part and yield the parts' entries as they finish; the first failure cancels the rest."""
    from distributed import KilledWorker, as_completed

    index = {p.part: n for n, p in enumerate(todo)}
    futures = {client.submit(score_partition, p, str(folder.resolve()), {**options, "index": index[p.part]},
                             key=f"score-{p.part}-{tag}", pure=False): p for p in remaining}
    bar = progress(iter(()), desc="predict --cluster", total=len(remaining), disable=True if quiet else None)
    bar.unit = " parts"
    try:
        for future in as_completed(futures):
            if future.status == "error":
                error = future.exception()
                client.cancel(list(futures))
                if isinstance(error, KilledWorker):
                    raise UserError(f"{futures[future].source}: every worker that scored it died (out of memory?); "
                                    "the parts written so far stay: rerun with --resume") from None
                raise error
            entry = future.result()
            future.release()
            bar.update(1)
            yield entry
    finally:
        bar.close()


def run(args: argparse.Namespace) -> int:
    """``predict --cluster``: score every input file into a part of the output folder."""
    from pipeline.model import MAX_CHARS
    from pipeline.model_file import load_model
    from pipeline.predict import parse_thresholds

    if args.texts or args.input in (None, "-"):
        raise UserError("--cluster needs --input: a glob or a folder of files")
    if args.output == "-":
        raise UserError("--cluster needs --output: a folder for the parts")
    if args.summary and args.resume:
        raise UserError("--summary cannot be combined with --resume: the parts of the earlier run are not "
                        "scored again; rerun without --resume for a summary")
    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    started = time.perf_counter()
    out_format = args.format or "parquet"
    streams.check_encoding(args.encoding)
    todo = partitions(args.input, args.input_format, out_format)
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--output {folder} is a file: --cluster writes a folder of parts")
    if any(str(folder.resolve()) == p.source for p in todo):
        raise UserError(f"the output {folder} is an input file")
    model = load_model(args.model)
    thresholds = parse_thresholds(args.threshold, model.labels)
    digest = model_digest(model)
    settings = settings_of(args, out_format, thresholds, digest)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    entries = finished_parts(manifest, settings, todo, folder) if args.resume else {}
    if not args.resume and manifest is not None:  # a fresh run: parts of the earlier run that no input makes go
        current = {p.part for p in todo}
        for entry in manifest.get("parts", []):
            if entry.get("part") not in current and "/" not in str(entry.get("part")):
                (folder / str(entry.get("part"))).unlink(missing_ok=True)
    (folder / SUCCESS).unlink(missing_ok=True)
    write_manifest(folder, settings, entries, todo, complete=False)
    remaining = [p for p in todo if p.part not in entries]
    if entries:
        log.info("--resume: %d of %d parts already complete", len(entries), len(todo))
    options = {"thresholds": thresholds, "explain": args.explain, "mark": args.on_error == "mark",
               "only_flagged": args.only_flagged, "format": out_format, "summary": args.summary,
               "max_chars": args.max_chars or MAX_CHARS, "mark_truncated": args.max_chars is not None,
               "chunk_size": args.chunk_size, "text_column": args.text_column, "encoding": args.encoding,
               "on_error": args.on_error}
    tallies = []
    with connect(args.cluster) as client:
        workers = load_on_workers(client, model, digest, args.ship_model)
        log.info("model %s loaded on %d worker(s) in %.2f s", model.source, workers, time.perf_counter() - started)
        loaded = time.perf_counter()
        last = time.monotonic()
        try:
            for entry in score_all(client, remaining, todo, folder, options, f"{digest[:8]}-{os.getpid()}-{started}",
                                   quiet=args.quiet):
                tallies.append(entry.pop("tally"))
                entries[entry["part"]] = entry
                if time.monotonic() - last > MANIFEST_EVERY_S:
                    write_manifest(folder, settings, entries, todo, complete=False)
                    last = time.monotonic()
        finally:
            write_manifest(folder, settings, entries, todo, complete=False)
    sweep_temporary(folder, todo)
    write_manifest(folder, settings, entries, todo, complete=True)
    (folder / SUCCESS).write_text("", encoding="utf-8")
    rows = sum(e["rows"] for e in entries.values())
    scored = sum(e["scored"] for e in entries.values())
    done = time.perf_counter()
    log.info("%d rows in %d parts in %.2f s: %.0f rows/s after the model was loaded", rows, len(todo),
             done - started, sum(entries[p.part]["rows"] for p in remaining) / max(done - loaded, 1e-9))
    cut = [e for e in entries.values() if e["truncated_count"]]
    if cut and args.max_chars is None:
        shown = ", ".join(f"{e['part']} rows {', '.join(map(str, e['truncated']))}" for e in cut[:3])
        log.warning("%d post(s) longer than %d characters were scored on their first %d (%s%s); pass --max-chars "
                    "to set the cap and mark them in a 'truncated' column",
                    sum(e["truncated_count"] for e in cut), MAX_CHARS, MAX_CHARS, shown, ", …" if len(cut) > 3 else "")
    if args.summary:
        from pipeline.prevalence import Tally, tally_lines

        limits = {**model.thresholds, **thresholds}
        tally = Tally.merged(tallies, np.array([limits[label] for label in model.labels]))
        lines = [f"summary: {rows} rows read, {scored} scored, {rows - scored} unreadable",
                 *tally_lines(model, tally, overridden=set(thresholds), false_alarms=args.false_alarms)]
        print("\n".join(lines), file=sys.stderr)
    return 0

