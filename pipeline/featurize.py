"""Stage ``featurize``: fit the word and character n-gram (and concept) features on the training posts."""

from __future__ import annotations

import logging

import joblib

from pipeline import files
from pipeline.config import load_params
from pipeline.data import segmented_tables
from pipeline.errors import cli_entry, stage_args
from pipeline.features import docs_of, make_featurizer, training_posts

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    """Stage ``featurize``: fit the feature extractors on the training posts (labeled and background)."""
    args = stage_args("Fit the word and character n-gram (and concept) features on the training split.", argv)
    params = load_params(args.params)
    labeled, background = segmented_tables(params)
    train = training_posts(labeled, background)
    featurizer = make_featurizer(params).fit(docs_of(train))
    with files.atomic_path(params.root_path(params.paths.featurizer)) as tmp:
        joblib.dump(featurizer, tmp)
    blocks = {name: len(step.get_feature_names_out())
              for name, step in featurizer.named_steps["ngrams"].transformer_list}
    files.write_json({"training_posts": int(len(train)), "features": blocks, "total": sum(blocks.values())},
                     params.root_path(params.paths.features_report))
    log.info("fitted on %d posts: %s", len(train), blocks)


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
