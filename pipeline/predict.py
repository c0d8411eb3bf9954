"""Score posts with the trained model: a few on the command line, or a file of millions.

    python -m pipeline.predict "我决定参选本区人大代表，请大家联名推荐"
    python -m pipeline.predict --input posts.csv --output scored.csv --jobs 2 --summary
    cat posts.txt | python -m pipeline.predict --only-flagged --explain 3 > hits.jsonl

Each output row carries the input row's columns unchanged and, per label, ``<label>_prob`` (0–1) and
``<label>`` (0/1 at the model's threshold). Rows come out in input order, one per input row (unless
``--only-flagged`` is asked for). Results go to stdout or ``--output``; messages and progress to stderr.

SIGINT and SIGTERM end a run with exit code 130 or 143: the workers are stopped and the unfinished output
removed. Workers also die with this process when it is killed outright (SIGKILL).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipeline import streams
from pipeline.errors import ArgumentParser, Terminated, UserError, cli_entry

log = logging.getLogger("predict")

# The model of this process; worker processes inherit it when the pool forks.
_MODEL = None


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
    parser.add_argument("-m", "--model", help="model file (.joblib with its card beside it, or .skops)")
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


def parse_thresholds(items: list[str], labels: list[str]) -> dict[str, float]:
    from pipeline.model import check_thresholds

    thresholds = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep or label not in labels:
            raise UserError(f"--threshold {item!r}: expected LABEL=P with LABEL one of {', '.join(labels)}")
        try:
            thresholds[label] = float(value)
        except ValueError:
            raise UserError(f"--threshold {item!r}: {value!r} is not a number") from None
    return check_thresholds(thresholds, labels, "--threshold")


def argument_posts(texts: list[str]) -> list[str]:
    """Posts given as arguments, which must be UTF-8 (Python hands over invalid bytes as lone surrogates)."""
    posts = []
    for n, text in enumerate(texts, start=1):
        try:
            posts.append(os.fsencode(text).decode("utf-8"))
        except UnicodeError:
            raise UserError(f"post {n} given as an argument is not valid UTF-8 text") from None
    return posts


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _score(chunk: streams.Chunk, options: dict) -> tuple[dict[str, list], list[int]]:
    """Predictions for one chunk as columns of plain values (None in the rows that could not be read), and the
    indexes of the rows whose post was truncated."""
    errors = chunk.errors
    ok = [i for i, e in enumerate(errors) if e is None]
    frame = _MODEL.scores([chunk.texts[i] for i in ok], thresholds=options["thresholds"],
                          explain=options["explain"], max_chars=options["max_chars"])
    cut = frame.pop(streams.TRUNCATED_COLUMN)
    truncated = [ok[i] for i, was_cut in enumerate(cut.tolist()) if was_cut]
    if options["mark_truncated"]:
        frame[streams.TRUNCATED_COLUMN] = cut
    if len(ok) == len(errors):
        columns = {name: frame[name].tolist() for name in frame.columns}
    else:
        columns = {}
        for name in frame.columns:
            values: list = [None] * len(errors)
            for i, value in zip(ok, frame[name].tolist(), strict=True):
                values[i] = value
            columns[name] = values
    if options["mark"]:
        columns[streams.ERROR_COLUMN] = [e or "" for e in errors]
    return columns, truncated


@dataclass
class Done:
    """One chunk scored: counts for the summary, and its output rows, laid out as bytes where the format allows
    (then the chunk and its predictions are not sent back from the worker)."""

    rows: int
    scored: int
    written: int
    flagged: dict[str, int]
    truncated: list[int]
    proba: np.ndarray | None  # the scored rows' probabilities, for --summary
    rendered: streams.Rendered | None
    chunk: streams.Chunk | None
    predictions: dict[str, list] | None


def _process(chunk: streams.Chunk, options: dict) -> Done:
    """Score a chunk, keep the flagged rows if asked, and lay out its output: all a worker does for a chunk."""
    predictions, truncated = _score(chunk, options)
    labels = _MODEL.labels
    rows, scored = len(chunk), sum(e is None for e in chunk.errors)
    proba = None
    if options["summary"]:
        read = [i for i, error in enumerate(chunk.errors) if error is None]
        proba = np.array([[predictions[f"{label}_prob"][i] for label in labels] for i in read], dtype=float)
    flagged = {label: sum(value == 1 for value in predictions[label]) for label in labels}
    if options["only_flagged"]:
        keep = [any(predictions[label][i] == 1 for label in labels) for i in range(rows)]
        chunk = chunk.subset(keep)
        predictions = {name: [value for value, kept in zip(values, keep, strict=True) if kept]
                       for name, values in predictions.items()}
    rendered = streams.render(chunk, predictions, options["format"])
    if rendered is not None:
        return Done(rows, scored, len(chunk), flagged, truncated, proba, rendered, None, None)
    return Done(rows, scored, len(chunk), flagged, truncated, proba, None, chunk, predictions)


def _die_with_parent(parent: int) -> None:
    """Make this worker end when the process that forked it ends, however it ends (SIGKILL included)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    else:  # elsewhere, watch for the parent's end
        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:  # the parent ended before the line above took effect
        os._exit(1)


def _worker_init(parent: int) -> None:
    # The parent decides when to stop: a Ctrl-C reaches the whole process group, and the parent then ends the
    # workers itself. SIGTERM keeps its default (the parent's handler was inherited by the fork).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)


def _processed(chunks: Iterator[streams.Chunk], jobs: int, options: dict) -> Iterator[Done]:
    """Process chunks in order: ``jobs`` processes score, this one and ``jobs - 1`` forked workers.

    The workers are kept fed (two chunks queued each); this process scores the chunks they have no room for, between
    reading and writing. One process fewer than a pool of ``jobs`` workers beside an idle parent: the same cores
    kept busy, and one process's working memory and copied pages less. If the run stops early (an error, an
    interrupt, or the caller closing this generator), the workers are killed rather than waited for.
    """
    head = list(itertools.islice(chunks, 2))
    if len(head) < 2 or jobs == 1:
        for chunk in itertools.chain(head, chunks):
            yield _process(chunk, options)
        return
    import gc
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    # fork: the workers share the already loaded model and dictionary instead of loading their own. Freezing
    # the garbage collector first keeps it from touching (and so copying) those shared pages in every worker.
    gc.collect()
    gc.freeze()
    context = multiprocessing.get_context("fork")
    others = set(multiprocessing.active_children())
    pending: deque[Future] = deque()
    pool = ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context, initializer=_worker_init,
                               initargs=(os.getpid(),))
    finished = False
    try:
        for chunk in itertools.chain(head, chunks):
            if sum(not future.done() for future in pending) < 2 * (jobs - 1):
                pending.append(pool.submit(_process, chunk, options))
            else:
                here: Future = Future()
                here.set_result(_process(chunk, options))
                pending.append(here)
            # Bounded read-ahead keeps memory flat however large the input is.
            while len(pending) > 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
        finished = True
    finally:
        if not finished:
            for worker in set(multiprocessing.active_children()) - others:
                worker.kill()
        pool.shutdown(wait=True, cancel_futures=not finished)
        gc.unfreeze()


def _terminated(signum, frame) -> None:
    # Later signals are ignored while the run cleans up (removing its unfinished output).
    signal.signal(signum, signal.SIG_IGN)
    raise Terminated(signum)


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (and SIGHUP) unwind the run like Ctrl-C does: workers stopped, unfinished output removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {signum: signal.signal(signum, _terminated) for signum in caught}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run(args: argparse.Namespace) -> int:
    with _sigterm_raises():
        if args.cluster:
            from pipeline.cluster import run as run_on_cluster

            return run_on_cluster(args)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    global _MODEL
    from pipeline.model import MAX_CHARS
    from pipeline.model_file import load_model

    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    started = time.perf_counter()
    texts = argument_posts(args.texts)
    if args.input is None and not texts and sys.stdin.isatty():
        raise UserError("nothing to score: give posts as arguments, --input FILE, or lines on stdin")
    source = args.input if args.input is not None else "-"
    in_format = "txt" if texts else streams.format_of(source, args.input_format, default="txt")
    out_format = (args.format or (streams.format_of(args.output, None, "jsonl") if args.output != "-" else None)
                  or ("jsonl" if in_format in ("txt", "parquet") else in_format))
    streams.check_encoding(args.encoding)
    if texts:
        chunks = iter([streams.Chunk(texts=texts, errors=[None] * len(texts), columns=[args.text_column],
                                     rows=[[text] for text in texts])])
    else:
        streams.check_distinct(source, args.output)
        chunks = streams.read_chunks(source, in_format, args.chunk_size, args.text_column, args.encoding,
                                     args.on_error)
    model = _MODEL = load_model(args.model)
    thresholds = parse_thresholds(args.threshold, model.labels)
    # Score one post now: jieba's dictionary and the OpenCC converter load on first use. Loading them here, before
    # any worker is forked, lets the workers share them instead of each loading its own copy.
    model.predict_proba(["加载词典"])
    loaded = time.perf_counter()
    log.info("model %s loaded in %.2f s", model.source, loaded - started)
    jobs = args.jobs or default_jobs()
    total = None if texts or args.quiet else streams.count_rows(source, in_format)
    writer = streams.Writer(args.output, out_format)
    rows = scored = chunks_scored = 0
    truncated: list[int] = []
    tally = None
    if args.summary:
        from pipeline.prevalence import Tally

        cut = {**model.thresholds, **thresholds}
        tally = Tally(np.array([cut[label] for label in model.labels]))
    success = False
    try:
        from pipeline.files import progress

        bar = progress(iter(()), desc="predict", total=total, disable=True if args.quiet else None)
        options = {"thresholds": thresholds, "explain": args.explain, "mark": args.on_error == "mark",
                   "only_flagged": args.only_flagged, "format": out_format, "summary": args.summary,
                   "max_chars": args.max_chars or MAX_CHARS, "mark_truncated": args.max_chars is not None}
        with contextlib.closing(_processed(chunks, jobs, options)) as results:
            for done in results:
                bar.update(done.rows)
                chunks_scored += 1
                truncated += [rows + i + 1 for i in done.truncated]
                rows += done.rows
                scored += done.scored
                if tally is not None:
                    tally.add(done.proba)
                if done.rendered is not None:
                    writer.write_rendered(done.rendered)
                else:
                    writer.write_chunk(done.chunk, done.predictions)
        bar.close()
        success = True
    finally:
        writer.close(success)
    done = time.perf_counter()
    log.info("%d rows in %.2f s: %.0f rows/s after the model was loaded, with %d job(s)", rows, done - started,
             rows / (done - loaded) if done > loaded else 0.0, jobs if chunks_scored > 1 else 1)
    if truncated and args.max_chars is None:
        shown = ", ".join(map(str, truncated[:10])) + (", …" if len(truncated) > 10 else "")
        log.warning("%d post(s) longer than %d characters were scored on their first %d (rows %s); pass "
                    "--max-chars to set the cap and mark them in a 'truncated' column", len(truncated), MAX_CHARS,
                    MAX_CHARS, shown)
    if args.summary:
        from pipeline.prevalence import tally_lines

        lines = [f"summary: {rows} rows read, {scored} scored, {rows - scored} unreadable",
                 *tally_lines(model, tally, overridden=set(thresholds), false_alarms=args.false_alarms)]
        print("\n".join(lines), file=sys.stderr)
    return 0


@cli_entry
def cli(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    return cli(argv)


if __name__ == "__main__":
    raise SystemExit(cli())
