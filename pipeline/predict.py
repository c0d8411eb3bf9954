"""Score posts with the trained model: a few on the command line, or a file of millions.

    python -m pipeline.predict "我决定参选本区人大代表，请大家联名推荐"
    python -m pipeline.predict --input posts.csv --output scored.csv --jobs 2 --summary
    cat posts.txt | python -m pipeline.predict --only-flagged --explain 3 > hits.jsonl

Each output row carries the input row's columns unchanged and, per label, ``<label>_prob`` (0–1) and
``<label>`` (0/1 at the model's threshold). Rows come out in input order, one per input row (unless
``--only-flagged`` is asked for). Results go to stdout or ``--output``; messages and progress to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from pipeline import streams
from pipeline.errors import ArgumentParser, UserError, cli_entry

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
                        help="print flagged counts and an error-corrected prevalence estimate to stderr at the end")
    parser.add_argument("-j", "--jobs", type=int, default=0,
                        help="processes that score: this one and N-1 forked workers (default 0: all cores)")
    parser.add_argument("--chunk-size", type=int, default=5000, help="rows read, scored and written at a time")
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
    return args


def parse_thresholds(items: list[str], labels: list[str]) -> dict[str, float]:
    thresholds = {}
    for item in items:
        label, sep, value = item.partition("=")
        if not sep or label not in labels:
            raise UserError(f"--threshold {item!r}: expected LABEL=P with LABEL one of {', '.join(labels)}")
        try:
            p = float(value)
        except ValueError:
            raise UserError(f"--threshold {item!r}: {value!r} is not a number") from None
        if not 0.0 <= p <= 1.0:
            raise UserError(f"--threshold {item!r}: the threshold must be between 0 and 1")
        thresholds[label] = p
    return thresholds


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def _score(texts: list[str | None], errors: list[str | None], thresholds: dict, explain: int,
           mark: bool) -> pd.DataFrame:
    """Predictions for one chunk; broken rows get an error message and no prediction."""
    ok = [i for i, e in enumerate(errors) if e is None]
    scored = _MODEL.scores([texts[i] for i in ok], thresholds=thresholds, explain=explain)
    if len(ok) == len(texts) and not mark:
        return scored
    scored.index = ok
    frame = scored.reindex(range(len(texts)))
    for column in _MODEL.labels:
        frame[column] = frame[column].astype("Int64")
    if mark:
        frame[streams.ERROR_COLUMN] = [e or "" for e in errors]
    return frame


@dataclass
class Done:
    """One chunk scored: counts for the summary, and its output rows, laid out as text where the format allows
    (then the chunk and its predictions are not sent back from the worker)."""

    rows: int
    scored: int
    flagged: dict[str, int]
    rendered: streams.Rendered | None
    chunk: streams.Chunk | None
    predictions: pd.DataFrame | None


def _process(chunk: streams.Chunk, options: dict) -> Done:
    """Score a chunk, keep the flagged rows if asked, and lay out its output: all a worker does for a chunk."""
    predictions = _score(chunk.texts, chunk.errors, options["thresholds"], options["explain"], options["mark"])
    labels = _MODEL.labels
    rows, scored = len(chunk), sum(e is None for e in chunk.errors)
    flagged = {label: int((predictions[label] == 1).sum()) for label in labels}
    if options["only_flagged"]:
        keep = (predictions[labels] == 1).any(axis=1).to_numpy()
        chunk, predictions = _subset(chunk, keep), predictions[keep]
    rendered = streams.render(chunk, predictions, options["format"])
    if rendered is not None:
        return Done(rows, scored, flagged, rendered, None, None)
    return Done(rows, scored, flagged, None, chunk, predictions)


def _processed(chunks: Iterator[streams.Chunk], jobs: int, options: dict) -> Iterator[Done]:
    """Process chunks in order: ``jobs`` processes score, this one and ``jobs - 1`` forked workers.

    The workers are kept fed (two chunks queued each); this process scores the chunks they have no room for, between
    reading and writing. One process fewer than a pool of ``jobs`` workers beside an idle parent: the same cores
    kept busy, and one process's working memory and copied pages less.
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
    pending: deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=jobs - 1, mp_context=context) as pool:
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


def prevalence(flag_rate: float, tpr: float | None, fpr: float | None) -> float | None:
    """Adjusted classify-and-count: (observed flag rate - FPR) / (TPR - FPR), clipped to [0, 1]."""
    if tpr is None or fpr is None or tpr - fpr <= 0:
        return None
    return min(1.0, max(0.0, (flag_rate - fpr) / (tpr - fpr)))


def summary_lines(model, flagged: dict[str, int], rows: int, scored: int, thresholds: dict) -> list[str]:
    lines = [f"summary: {rows} rows read, {scored} scored, {rows - scored} unreadable"]
    for label in model.labels:
        rate = flagged[label] / scored if scored else 0.0
        validation = model.card.get("validation", {}).get(label, {})
        tpr = validation.get("recall")
        fpr = validation.get("background_far")
        if fpr is None:
            fpr = validation.get("labeled_false_positive_rate")
        overridden = label in thresholds
        estimate = None if overridden else prevalence(rate, tpr, fpr)
        note = ("n/a (threshold overridden; the validation rates hold at the model's own threshold)" if overridden
                else "n/a" if estimate is None else f"{estimate:.4%} (~{estimate * scored:,.0f} posts)")
        lines.append(f"  {label}: {flagged[label]:,} flagged ({rate:.4%}); estimated prevalence {note}")
    return lines


def run(args: argparse.Namespace) -> int:
    global _MODEL
    from pipeline.model import load_model

    if args.quiet:
        logging.getLogger().setLevel(logging.WARNING)
    started = time.perf_counter()
    if args.input is None and not args.texts and sys.stdin.isatty():
        raise UserError("nothing to score: give posts as arguments, --input FILE, or lines on stdin")
    source = args.input if args.input is not None else "-"
    in_format = "txt" if args.texts else streams.format_of(source, args.input_format, default="txt")
    out_format = (args.format or (streams.format_of(args.output, None, "jsonl") if args.output != "-" else None)
                  or ("jsonl" if in_format in ("txt", "parquet") else in_format))
    if args.texts:
        chunks = iter([streams.Chunk(texts=list(args.texts), table=pd.DataFrame({args.text_column: args.texts}),
                                     errors=[None] * len(args.texts))])
    else:
        chunks = streams.read_chunks(source, in_format, args.chunk_size, args.text_column, args.encoding,
                                     args.on_error)
    streams.check_encoding(args.encoding)
    model = _MODEL = load_model(args.model)
    thresholds = parse_thresholds(args.threshold, model.labels)
    # Score one post now: jieba's dictionary and the OpenCC converter load on first use. Loading them here, before
    # any worker is forked, lets the workers share them instead of each loading its own copy.
    model.predict_proba(["加载词典"])
    loaded = time.perf_counter()
    log.info("model %s loaded in %.2f s", model.source, loaded - started)
    jobs = args.jobs or default_jobs()
    total = None if args.texts or args.quiet else streams.count_rows(source, in_format)
    writer = streams.Writer(args.output, out_format)
    rows = scored = chunks_scored = 0
    flagged = dict.fromkeys(model.labels, 0)
    success = False
    try:
        from pipeline.io import progress

        bar = progress(iter(()), desc="predict", total=total, disable=True if args.quiet else None)
        options = {"thresholds": thresholds, "explain": args.explain, "mark": args.on_error == "mark",
                   "only_flagged": args.only_flagged, "format": out_format}
        for done in _processed(chunks, jobs, options):
            bar.update(done.rows)
            chunks_scored += 1
            rows += done.rows
            scored += done.scored
            for label in model.labels:
                flagged[label] += done.flagged[label]
            if done.rendered is not None:
                writer.write_rendered(done.rendered)
            else:
                writer.write_table(done.chunk, done.predictions)
        bar.close()
        success = True
    finally:
        writer.close(success)
    done = time.perf_counter()
    log.info("%d rows in %.2f s: %.0f rows/s after the model was loaded, with %d job(s)", rows, done - started,
             rows / (done - loaded) if done > loaded else 0.0, jobs if chunks_scored > 1 else 1)
    if args.summary:
        for line in summary_lines(model, flagged, rows, scored, thresholds):
            print(line, file=sys.stderr)
    return 0


def _subset(chunk: streams.Chunk, keep) -> streams.Chunk:
    idx = [i for i, k in enumerate(keep) if k]
    return streams.Chunk(texts=[chunk.texts[i] for i in idx],
                         table=None if chunk.table is None else chunk.table.iloc[idx].reset_index(drop=True),
                         records=None if chunk.records is None else [chunk.records[i] for i in idx],
                         errors=[chunk.errors[i] for i in idx], first_line=chunk.first_line)


@cli_entry
def cli(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    return cli(argv)


if __name__ == "__main__":
    raise SystemExit(cli())
