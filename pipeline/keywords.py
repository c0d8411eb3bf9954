"""Keyword discovery: the words a search for each label misses, and how good the lexicon's own words are.

    python -m pipeline.keywords                                   # over the background pool
    python -m pipeline.keywords --pool test                       # over the labeled test split (true labels)
    python -m pipeline.keywords --pool month.csv --seed-terms cdt_terms.txt --label police_warning

The model splits the pool into a target set (the posts it flags for a label; on the test split, the posts labeled
so) and the rest; the words and word pairs that separate the two, which the lexicon (``configs/lexicon.yaml``)
does not already cover, are ranked by the z-score of their log-odds ratio, each with its counts as a search box
would find them, its estimated precision and a few example ids (:mod:`pipeline.keyword_discovery`). The lexicon's
terms, and a user's list with ``--seed-terms``, are scored the same way, with their precision on the labeled test
split. The output ends with a Boolean query per label, ready to paste into a search box.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipeline.config import load_params
from pipeline.errors import ArgumentParser, UserError, cli_entry
from pipeline.keyword_discovery import read_seed_terms, read_test_split, report, search_pool
from pipeline.lexicon import read_lexicon


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m pipeline.keywords",
                            description="Find keywords the lexicon lacks, score the lexicon's, build a query.")
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("-m", "--model", help="model file (default: models/model.npz)")
    parser.add_argument("--pool", help="posts to search: any file predict reads, or 'test' for the labeled test "
                                       "split (default: paths.background)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--label", action="append", help="only this label (repeatable; default: all)")
    parser.add_argument("--seed-terms", type=Path, help="a file of terms, one per line, to score like the lexicon's")
    parser.add_argument("--top", type=int, default=20, help="new terms listed per label (default 20)")
    parser.add_argument("--min-count", type=int, default=3, help="a new term needs this many target posts (default 3)")
    parser.add_argument("--min-precision", type=float, default=0.5,
                        help="a new term needs this estimated precision (default 0.5)")
    args = parser.parse_args(argv)
    if args.top < 1 or args.min_count < 1 or not 0 <= args.min_precision <= 1:
        parser.error("--top and --min-count must be at least 1, --min-precision between 0 and 1")
    return args


@cli_entry
def main(argv: list[str] | None = None) -> int:
    from pipeline.model_file import load_model

    args = parse_args(argv)
    params = load_params(args.params)
    model = load_model(args.model)
    labels = args.label or model.labels
    unknown = [label for label in labels if label not in model.labels]
    if unknown:
        raise UserError(f"--label {unknown[0]!r}: the model's labels are {', '.join(model.labels)}")
    lexicon = read_lexicon(params.root_path(params.paths.lexicon), model.labels)
    seed_terms = read_seed_terms(args.seed_terms) if args.seed_terms else None
    test = read_test_split(params)
    pool = search_pool(model, params, labels, args.pool, test, args.text_column, args.id_column)
    for line in report(pool, labels, lexicon, test, seed_terms, args.top, args.min_count, args.min_precision):
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
