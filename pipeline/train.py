"""Stage ``train``: fit the classifiers, export the model as plain arrays, check the export against the fitted
pipeline on every labeled post, choose the thresholds on validation, and save the model file and its card
(:mod:`pipeline.training` holds the steps)."""

from __future__ import annotations

import logging

import joblib

from pipeline import files, model_file
from pipeline.config import load_params
from pipeline.data import segmented_tables
from pipeline.errors import cli_entry, stage_args
from pipeline.training import check_export, model_card, train, validate

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    args = stage_args("Train the per-label classifiers and choose their thresholds.", argv)
    params = load_params(args.params)
    labeled, background = segmented_tables(params)
    featurizer = joblib.load(params.root_path(params.paths.featurizer))
    pipeline, training = train(params, labeled, background, featurizer)
    model = model_file.export(pipeline, {"labels": list(params.labels)})
    checked = labeled["text"].tolist() + background.loc[background["labeled"], "text"].tolist()
    training["export_max_difference"] = check_export(pipeline, model, checked)
    thresholds, validation = validate(params, model, labeled, background, training.get("writer_folds"))
    summary = files.read_json(params.root_path(params.paths.data_summary))
    model.card = model_card(params, model, thresholds, validation, training, summary)
    model_path = params.root_path(params.paths.model)
    # The model first, then its card: a reader that sees the new card always finds the new model.
    digest, size = model_file.save(model, model_path)
    model.card["model"] = {"file": params.paths.model, "format": model_file.FORMAT,
                           "format_version": model_file.FORMAT_VERSION, "sha256": digest, "bytes": size}
    files.write_json(model_file.sealed(model.card), params.root_path(params.paths.model_card))
    log.info("saved %s (%.1f MB) and its card; the export matches the fitted pipeline to %.1g on %d posts",
             params.paths.model, size / 1e6, training["export_max_difference"], len(checked))


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
