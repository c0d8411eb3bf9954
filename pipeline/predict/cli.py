"""predict's command line: the arguments, and the checks of input and output made before anything slow.

The input is opened and its first chunk read (so a missing file, a wrong encoding or a missing text column is
reported at once) before the model, NumPy or the segmenter is imported; the output is opened before the model is
loaded (:mod:`pipeline.predict.local`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator

from pipeline import streams
from pipeline.errors import ArgumentParser, Terminated, cli_entry
from pipeline.predict.source import open_source


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="python -m pipeline.predict", description="Score Weibo posts for candidacy and police warnings.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("texts", nargs="*", help="posts to score (otherwise --input, or lines on stdin)")
    parser.add_argument("-i", "--input", help="file of posts: .csv .tsv .jsonl .txt .parquet (optionally .gz), or -")
    parser.add_argument("-o", "--output", default="-", help="where to write results (default: stdout)")
    parser.add_argument("--input-format", choices=streams.FORMATS, help="input format (default: by extension)")
    parser.add_argument("-f", "--format", choices=streams.FORMATS,
                        help="output format (default: by --output's extension, else the input's, else jsonl)")
    parser.add_argument("--text-column", default="text", help="column or field holding the post (default: text)")
    parser.add_argument("--encoding", default="utf-8", help="input encoding, e.g. gbk or big5 (default: utf-8)")
    parser.add_argument("--on-error", choices=("fail", "mark"), default="fail",
                        help="a JSON Lines row that cannot be read: stop (fail) or write it with an error column")
    parser.add_argument("-m", "--model", help="model file, its card beside it (default: models/model.npz)")
    parser.add_argument("-t", "--threshold", action="append", default=[], metavar="LABEL=P",
                        help="override a label's decision threshold, e.g. candidacy=0.7 (repeatable)")
    parser.add_argument("--explain", type=int, default=0, metavar="K",
                        help="add <label>_why: the K n-grams that raised each label's score most")
    parser.add_argument("--only-flagged", action="store_true", help="write only rows with at least one label 1")
    parser.add_argument("--summary", action="store_true",
                        help="print flagged counts and each label's estimated prevalence with a 95%% interval to "
                             "stderr at the end")
    parser.add_argument("--false-alarms", choices=("background", "labeled"), default="background",
                        help="the false-alarm rate --summary corrects with: of real background posts (inputs of "
                             "ordinary posts), or of the labeled validation negatives (inputs rich in hard "
                             "negatives, such as keyword-search hits)")
    parser.add_argument("-j", "--jobs", type=int, default=0,
                        help="processes that score: this one and N-1 forked workers (default 0: all cores)")
    parser.add_argument("--chunk-size", type=int, default=5000, help="rows read, scored and written at a time")
    parser.add_argument("--max-chars", type=int, metavar="N",
                        help="score each post on its first N characters and add a 'truncated' column (1 where a "
                             "post was longer); default 100000, with truncated rows named on stderr")
    parser.add_argument("--cluster", metavar="ADDRESS",
                        help="score on a Dask cluster: a scheduler's address, or local[:N] for N worker processes "
                             "here; --input is then a glob or folder and --output a folder of parts "
                             "(needs the dask extra)")
    parser.add_argument("--resume", action="store_true",
                        help="with --cluster: keep the parts the output folder's manifest lists as complete")
    parser.add_argument("--ship-model", action="store_true",
                        help="with --cluster: send the model file to the workers instead of having them read it")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no informational messages")
    args = parser.parse_args(argv)
    if args.texts and args.input:
        parser.error("give posts as arguments or --input, not both")
    if args.chunk_size < 1:
        parser.error("--chunk-size must be at least 1")
    if args.explain < 0:
        parser.error("--explain must be 0 or more")
    if args.jobs < 0:
        parser.error("--jobs must be 0 (all cores) or more")
    if args.max_chars is not None and args.max_chars < 1:
        parser.error("--max-chars must be at least 1")
    if (args.resume or args.ship_model) and not args.cluster:
        parser.error("--resume and --ship-model go with --cluster")
    return args


def _terminated(signum, frame) -> None:
    # Later signals are ignored while the run cleans up (removing its unfinished output).
    signal.signal(signum, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (and SIGHUP) unwind the run like Ctrl-C does: workers stopped, unfinished output removed. A signal
    the caller ignores stays ignored: under ``nohup`` a closed terminal must not end the run."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, _terminated) for signum in caught
                if signal.getsignal(signum) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _quiet(quiet: bool) -> Iterator[None]:
    """--quiet: warnings only, for this run (the level is put back for a caller that runs predict in-process)."""
    root = logging.getLogger()
    level = root.level
    if quiet:
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


def run(args: argparse.Namespace, started: float | None = None) -> int:
    """Score as the arguments say: here (with forked workers), or on a Dask cluster with ``--cluster``."""
    from pipeline.predict.parallel import default_jobs

    started = time.perf_counter() if started is None else started
    with _quiet(args.quiet), _sigterm_raises():
        if args.cluster:
            from pipeline.cluster import run as run_on_cluster

            return run_on_cluster(args, default_workers=default_jobs())
        source = open_source(args)
        try:
            from pipeline.predict.local import run as run_here

            return run_here(args, source, args.jobs or default_jobs(), started)
        finally:
            source.close()


@cli_entry
def cli(argv: list[str] | None = None) -> int:
    """``python -m pipeline.predict`` and ``weibo-predict``: score posts, print one-line errors (exit code 2)."""
    started = time.perf_counter()
    return run(parse_args(argv), started)
