"""The review queue: which unlabeled posts to label next, and reading the labels back.

    python -m pipeline.suggest -n 200                      # from the background pool, into review/
    python -m pipeline.suggest --pool month.jsonl.gz -n 100 --near-threshold 0.5 --random 0.3
    python -m pipeline.suggest import review/queue.csv     # or a Label Studio JSON export

The queue mixes four kinds of pick, in shares set by options: posts near a label's threshold, diverse picks, a
random slice of the posts the model flags and uniformly random posts (:mod:`pipeline.review_queue`). Posts already
labeled, and near-duplicates of them or of each other, are skipped.

Written to ``--output-dir``: ``queue.csv`` (for a spreadsheet: fill the empty label columns with 0 or 1),
``label_studio_tasks.json`` (tasks with the model's predictions as pre-annotations) and
``label_studio_config.xml`` (the labeling config to paste into the Label Studio project).

``import`` checks a filled CSV or a Label Studio JSON export as ``prepare`` checks labeled files, then writes the
posts to a new CSV in ``data/labeled/``, except posts of the background pool: their text is never copied, so
their labels are appended by id to ``paths.background_labels`` (:mod:`pipeline.review_labels`). ``dvc repro``
then retrains on them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from pipeline.config import load_params
from pipeline.errors import ArgumentParser, cli_entry
from pipeline.label_studio import model_version
from pipeline.pool import BACKGROUND, default_pool, read_pool, score_pool
from pipeline.review_labels import import_labels
from pipeline.review_queue import DEFAULT_SHARES, STRATEGIES, next_queue, write_queue

log = logging.getLogger("suggest")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["import"]:
        parser = ArgumentParser(prog="python -m pipeline.suggest import",
                                description="Add a labeled review queue (CSV) or Label Studio JSON export.")
        parser.add_argument("file", help="the filled queue.csv, any labeled CSV, or a Label Studio JSON export")
        parser.add_argument("--params", default="configs/params.yaml")
        args = parser.parse_args(argv[1:])
        args.command = "import"
        return args
    parser = ArgumentParser(prog="python -m pipeline.suggest",
                            description="Write the next posts worth labeling (then: suggest import FILE).")
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("-m", "--model", help="model file (default: models/model.npz)")
    parser.add_argument("--pool", help="unlabeled posts, any format predict reads (default: paths.background)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("-n", "--size", type=int, default=100, help="posts in the queue (default 100)")
    for name in STRATEGIES:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=DEFAULT_SHARES[name],
                            help=f"share of {name.replace('_', ' ')} picks (default {DEFAULT_SHARES[name]})")
    parser.add_argument("-o", "--output-dir", default="review", help="where the queue goes (default: review/)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.command = "suggest"
    args.shares = {name: getattr(args, name) for name in STRATEGIES}
    if args.size < 1:
        parser.error("--size must be at least 1")
    if any(v < 0 for v in args.shares.values()) or not np.isclose(sum(args.shares.values()), 1.0):
        parser.error("the shares (--near-threshold, --diverse, --confident, --random) must be >= 0 and add up to 1")
    return args


def suggest(args: argparse.Namespace) -> None:
    from pipeline.model_file import load_model

    params = load_params(args.params)
    model = load_model(args.model)
    pool_path = Path(args.pool) if args.pool else default_pool(params)
    is_background = pool_path.resolve() == params.root_path(params.paths.background)
    pool = score_pool(model, read_pool(pool_path, args.text_column, args.id_column, args.encoding), pool_path.name)
    table, labeled = next_queue(model, params, pool, BACKGROUND if is_background else pool_path.name, args.size,
                                args.shares, seed=args.seed)
    write_queue(table, Path(args.output_dir), model.labels, model.thresholds, model_version(model))
    counts = table["strategy"].value_counts().reindex(STRATEGIES, fill_value=0)
    log.info("%d posts in the pool, %d already labeled; queue of %d written to %s (%s)", len(pool), labeled,
             len(table), args.output_dir, ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(str(Path(args.output_dir) / "queue.csv"))


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "import":
        result = import_labels(Path(args.file), load_params(args.params))
        print(json.dumps(result, ensure_ascii=False))
    else:
        suggest(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
