"""The client side of ``predict --cluster``: connect, load the model on every worker, submit one task per part,
keep the manifest up to date, and summarise."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pipeline import streams
from pipeline.cluster import parts
from pipeline.cluster.parts import SUCCESS, Partition
from pipeline.cluster.workers import ModelPlugin, model_digest, score_partition
from pipeline.errors import UserError
from pipeline.files import progress
from pipeline.predictions import Options, parse_thresholds

log = logging.getLogger("predict")

# The manifest is rewritten as parts finish, at most this often (and once at the end).
MANIFEST_EVERY_S = 2.0


@contextlib.contextmanager
def connect(address: str, default_workers: int = 1) -> Iterator:
    """A client of the scheduler at ``address``, or of a LocalCluster started here (``local`` for
    ``default_workers`` processes, or ``local:N``)."""
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
        workers = int(found[1]) if found[1] else default_workers
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


def load_on_workers(client, model, digest: str, ship: bool) -> int:
    """Register :class:`ModelPlugin` (every worker, present and future, loads the model); the number of workers."""
    from pipeline.model_file import card_path

    source = Path(model.source).resolve()
    if ship:
        card = card_path(source)
        plugin = ModelPlugin(str(source), digest, source.read_bytes(), card.read_bytes() if card.is_file() else None)
    else:
        plugin = ModelPlugin(str(source), digest)
    failed = [reply for reply in (client.register_plugin(plugin) or {}).values()
              if isinstance(reply, dict) and reply.get("status") == "error"]
    if failed:
        raise failed[0]["exception"]
    return len(client.scheduler_info().get("workers", {}))


def score_all(client, remaining: list[Partition], todo: list[Partition], folder: Path, options: Options,
              reading: dict, tag: str, quiet: bool) -> Iterator[dict]:
    """Submit one task per part and yield the parts' entries as they finish; the first failure cancels the rest."""
    from distributed import KilledWorker, as_completed

    index = {p.part: n for n, p in enumerate(todo)}
    futures = {client.submit(score_partition, p, str(folder.resolve()), options, reading, index[p.part],
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


def _check(args: argparse.Namespace) -> None:
    if args.texts or args.input in (None, "-"):
        raise UserError("--cluster needs --input: a glob or a folder of files")
    if args.output == "-":
        raise UserError("--cluster needs --output: a folder for the parts")
    if args.summary and args.resume:
        raise UserError("--summary cannot be combined with --resume: the parts of the earlier run are not "
                        "scored again; rerun without --resume for a summary")


def run(args: argparse.Namespace, default_workers: int = 1) -> int:
    """``predict --cluster``: score every input file into a part of the output folder."""
    from pipeline.model import MAX_CHARS
    from pipeline.model_file import load_model

    _check(args)
    started = time.perf_counter()
    out_format = args.format or "parquet"
    streams.check_encoding(args.encoding)
    todo = parts.partitions(args.input, args.input_format, out_format)
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--output {folder} is a file: --cluster writes a folder of parts")
    if any(str(folder.resolve()) == p.source for p in todo):
        raise UserError(f"the output {folder} is an input file")
    model = load_model(args.model)
    thresholds = parse_thresholds(args.threshold, model.labels)
    digest = model_digest(model)
    settings = parts.settings_of(args, out_format, thresholds, digest)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = parts.read_manifest(folder)
    entries = parts.finished_parts(manifest, settings, todo, folder) if args.resume else {}
    if not args.resume:
        parts.drop_stale_parts(folder, manifest, todo)
    (folder / SUCCESS).unlink(missing_ok=True)
    parts.write_manifest(folder, settings, entries, todo, complete=False)
    remaining = [p for p in todo if p.part not in entries]
    if entries:
        log.info("--resume: %d of %d parts already complete", len(entries), len(todo))
    options = Options.of(model, thresholds, out_format, args.max_chars, explain=args.explain,
                         mark=args.on_error == "mark", only_flagged=args.only_flagged, summary=args.summary)
    reading = {"chunk_size": args.chunk_size, "text_column": args.text_column, "encoding": args.encoding,
               "on_error": args.on_error}
    tallies = []
    with connect(args.cluster, default_workers) as client:
        workers = load_on_workers(client, model, digest, args.ship_model)
        log.info("model %s loaded on %d worker(s) in %.2f s", model.source, workers, time.perf_counter() - started)
        loaded = time.perf_counter()
        last = time.monotonic()
        try:
            for entry in score_all(client, remaining, todo, folder, options, reading,
                                   f"{digest[:8]}-{os.getpid()}-{started}", quiet=args.quiet):
                tallies.append(entry.pop("tally"))
                entries[entry["part"]] = entry
                if time.monotonic() - last > MANIFEST_EVERY_S:
                    parts.write_manifest(folder, settings, entries, todo, complete=False)
                    last = time.monotonic()
        finally:
            parts.write_manifest(folder, settings, entries, todo, complete=False)
    parts.sweep_temporary(folder, todo)
    parts.write_manifest(folder, settings, entries, todo, complete=True)
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

        tally = Tally.merged(tallies, np.array(options.thresholds))
        lines = [f"summary: {rows} rows read, {scored} scored, {rows - scored} unreadable",
                 *tally_lines(model, tally, overridden=set(thresholds), false_alarms=args.false_alarms)]
        print("\n".join(lines), file=sys.stderr)
    return 0
