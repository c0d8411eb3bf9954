"""What runs on a Dask worker for ``predict --cluster``: the model, loaded once per worker process by
:class:`ModelPlugin`, and :func:`score_partition`, the task that reads, scores and writes one part with the code
local ``predict`` runs (:class:`pipeline.streams.Reader`, :func:`pipeline.predictions.score_chunk`,
:class:`pipeline.streams.Writer`)."""

from __future__ import annotations

import gc
import hashlib
import os
from pathlib import Path

import numpy as np

from pipeline import streams
from pipeline.cluster.parts import Partition
from pipeline.errors import UserError
from pipeline.predictions import Options, score_chunk

try:
    from distributed import WorkerPlugin
except ImportError:  # Dask is an optional extra: --cluster says so when it is used
    WorkerPlugin = object

PLUGIN = "weibo-signals-model"

# The model of this worker process, set by ModelPlugin.setup.
_MODEL = None


def model_digest(model) -> str:
    """The SHA-256 the workers check the model file against: the card's, which loading the model verified."""
    digest = model.card.get("model", {}).get("sha256") if isinstance(model.card.get("model"), dict) else None
    if digest is None:
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
        global _MODEL
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
        model.score(["加载词典"])
        # As local predict does before it forks: the model's many objects move out of the collector's sight, so
        # its full collections during scoring no longer walk them all.
        gc.collect()
        gc.freeze()
        _MODEL = model

    def teardown(self, worker) -> None:
        global _MODEL
        _MODEL = None


def score_partition(partition: Partition, folder: str, options: Options, reading: dict, index: int) -> dict:
    """Read, score and write one part: the task a worker runs. ``reading`` holds the reader's settings
    (chunk_size, text_column, encoding, on_error); ``index`` is the part's number, the seed of its summary sample.
    Returns its manifest entry (and the tally for ``--summary``), nothing of the rows."""
    model = _MODEL
    if model is None:
        raise RuntimeError(f"the {PLUGIN} plugin has not loaded the model on this worker")
    tally = None
    if options.summary:
        from pipeline.prevalence import Tally

        # A seed per part: the parts' samples are independent, so merging them gives a uniform sample.
        tally = Tally(np.array(options.thresholds), seed=index)
    target = os.path.join(folder, partition.part)
    rows = scored = written = 0
    flagged = dict.fromkeys(options.labels, 0)
    truncated: list[int] = []
    success = False
    try:
        chunks = streams.read_chunks(partition.source, partition.fmt, reading["chunk_size"], reading["text_column"],
                                     reading["encoding"], reading["on_error"])
        try:
            writer = streams.Writer(target, options.format)
            try:
                for chunk in chunks:
                    done = score_chunk(model, chunk, options)
                    truncated += [rows + i + 1 for i in done.truncated]
                    rows += done.rows
                    scored += done.scored
                    written += done.written
                    for label in options.labels:
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
        finally:
            chunks.close()
    except UserError as err:
        message = str(err)
        raise UserError(message if partition.source in message else f"{partition.source}: {message}") from None
    return {"part": partition.part, "input": partition.source, "input_bytes": partition.size, "rows": rows,
            "written": written, "scored": scored, "flagged": flagged, "bytes": os.path.getsize(target),
            "truncated": truncated[:10], "truncated_count": len(truncated), "tally": tally}
