"""Score posts with the trained model: a few on the command line, or a file of millions.

    python -m pipeline.predict "我决定参选本区人大代表，请大家联名推荐"
    python -m pipeline.predict --input posts.csv --output scored.csv --jobs 2 --summary
    cat posts.txt | python -m pipeline.predict --only-flagged --explain 3 > hits.jsonl

Each output row carries the input row's columns unchanged and, per label, ``<label>_prob`` (0–1) and
``<label>`` (0/1 at the model's threshold). Rows come out in input order, one per input row (unless
``--only-flagged`` is asked for). Results go to stdout or ``--output``; messages and progress to stderr.

SIGINT and SIGTERM end a run with exit code 130 or 143: the workers are stopped and the unfinished output
removed. Workers also die with this process when it is killed outright (SIGKILL).

Modules: :mod:`~pipeline.predict.cli` (arguments, the entry point), :mod:`~pipeline.predict.source` (the input,
opened and checked before anything slow is imported), :mod:`~pipeline.predict.local` (a run on this machine) and
:mod:`~pipeline.predict.parallel` (forked workers, in order). Reading and writing files is the library
:mod:`pipeline.streams`; scoring a chunk is :mod:`pipeline.predictions`, shared with ``--cluster``
(:mod:`pipeline.cluster`). Importing this package costs the standard library only.
"""

# `cli` is the entry function (the console script `weibo-predict = "pipeline.predict:cli"`); binding it here
# hides the module of the same name as an attribute of the package: reach the module as pipeline.predict.cli
# through sys.modules or `from pipeline.predict.cli import …`.
from pipeline.predict.cli import cli, parse_args

__all__ = ["cli", "parse_args"]
