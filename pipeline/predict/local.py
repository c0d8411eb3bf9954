"""predict on this machine: open the output, load the model, score the chunks in order, write them, summarise.

Scoring imports NumPy, the segmenter and OpenCC only (and pyarrow for Parquet, tqdm for a progress bar on a
terminal, the prevalence estimators for --summary): no scikit-learn, SciPy or pandas.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
import time

from pipeline import model_file
from pipeline.predict.parallel import ordered, warm_up
from pipeline.predict.source import Source
from pipeline.predictions import Options, parse_thresholds, score_chunk
from pipeline.streams import Writer, count_rows

log = logging.getLogger("predict")


class _NoBar:
    """The progress bar when none is shown: tqdm is not even imported."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(args: argparse.Namespace, source: Source):
    if args.quiet or not sys.stderr.isatty():
        return _NoBar()
    from pipeline.files import progress

    total = None if source.reader is None else count_rows(source.path, source.in_format)
    return progress(iter(()), desc="predict", total=total, disable=False)


def run(args: argparse.Namespace, source: Source, jobs: int, started: float) -> int:
    """Score ``source`` into ``args.output`` with ``jobs`` processes; 0 when every row was written."""
    from pipeline.model import MAX_CHARS

    rows = scored = chunks_scored = 0
    truncated: list[int] = []
    tally = writer = None
    success = False
    try:
        # Opened before the model is loaded: an output that cannot be written is reported at once.
        writer = Writer(args.output, source.out_format)
        model = model_file.load_model(args.model)
        overrides = parse_thresholds(args.threshold, model.labels)
        options = Options.of(model, overrides, source.out_format, args.max_chars, explain=args.explain,
                             mark=args.on_error == "mark", only_flagged=args.only_flagged, summary=args.summary)
        warm_up(model)
        loaded = time.perf_counter()
        log.info("model %s loaded in %.2f s", model.source, loaded - started)
        if args.summary:
            import numpy as np

            from pipeline.prevalence import Tally

            tally = Tally(np.array(options.thresholds))
        bar = _progress(args, source)
        work = functools.partial(score_chunk, model, options=options)
        with contextlib.closing(ordered(source.chunks, jobs, work)) as results:
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
        if writer is not None:
            writer.close(success)
    finished = time.perf_counter()
    log.info("%d rows in %.2f s: %.0f rows/s after the model was loaded, with %d job(s)", rows, finished - started,
             rows / (finished - loaded) if finished > loaded else 0.0, jobs if chunks_scored > 1 else 1)
    if truncated and args.max_chars is None:
        shown = ", ".join(map(str, truncated[:10])) + (", …" if len(truncated) > 10 else "")
        log.warning("%d post(s) longer than %d characters were scored on their first %d (rows %s); pass "
                    "--max-chars to set the cap and mark them in a 'truncated' column", len(truncated), MAX_CHARS,
                    MAX_CHARS, shown)
    if tally is not None:
        from pipeline.prevalence import tally_lines

        lines = [f"summary: {rows} rows read, {scored} scored, {rows - scored} unreadable",
                 *tally_lines(model, tally, overridden=set(overrides), false_alarms=args.false_alarms)]
        print("\n".join(lines), file=sys.stderr)
    return 0
