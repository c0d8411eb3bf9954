"""Score a partitioned corpus on a Dask cluster: ``predict --cluster``, one output part per input file.

    python -m pipeline.predict --cluster local:2 --input 'posts/*.parquet' --output scored/
    python -m pipeline.predict --cluster tcp://head:8786 --input posts/ --output scored/ --format csv --resume

Each input file is one partition, read, scored and written by one task with the code local ``predict`` runs
(:class:`pipeline.streams.Reader`, :func:`pipeline.predictions.score_chunk`,
:class:`pipeline.streams.Writer`), so a part holds
exactly the rows local predict writes for that file. Dask's own readers are not used: they re-parse CSV and JSON
with pandas, which would not keep the cells and JSON texts exactly as written.

The model reaches the workers through :class:`ModelPlugin`, once per worker process; a task carries only a file
name and a few options, so the scheduler's memory does not grow with the model or with the number of parts. A
part is written under a temporary name and renamed when complete; a worker lost mid-task has its task rerun by
Dask, so every part is complete or absent. ``_manifest.json`` in the output folder records each finished part
and its row counts (rewritten as parts finish, so ``--resume`` can continue an interrupted run); ``_SUCCESS``
marks a complete run.

Modules: :mod:`~pipeline.cluster.parts` (input files, parts and the manifest), :mod:`~pipeline.cluster.workers`
(what runs on a worker) and :mod:`~pipeline.cluster.client` (connecting, submitting, summarising). Dask is imported
only when a run starts.
"""

from pipeline.cluster.parts import MANIFEST, SUCCESS

__all__ = ["MANIFEST", "SUCCESS", "run"]


def run(args, default_workers: int = 1) -> int:
    """``predict --cluster`` (see :func:`pipeline.cluster.client.run`)."""
    from pipeline.cluster.client import run as run_client

    return run_client(args, default_workers)
