"""Stage ``evaluate``: score the held-out test split, the background, challenge and real posts with the saved model
and the keyword baseline; write the metrics, the plot data, the errors and the model's most telling features.

The test posts go through the saved model from raw text, exactly as ``predict`` runs it.

What writes what: DVCLive writes the plot data (``paths.plots``/plots/, read by ``dvc plots`` through dvc.yaml and
by the report) and its own summary of the headline figures (``paths.plots``/metrics.json). reports/metrics.json
is written by hand: it holds confidence intervals, None for what was not measured, notes, per-writer tables and
lists of mistaken ids, none of which DVCLive's scalar metrics can hold.
"""

from __future__ import annotations

import logging

from pipeline import evaluation, files, plots
from pipeline.config import load_params
from pipeline.errors import cli_entry, stage_args
from pipeline.lexicon import read_lexicon
from pipeline.model_file import load_model

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    args = stage_args("Evaluate the saved model on the test split and the background posts.", argv)
    params = load_params(args.params)
    settings, paths = params.evaluate, params.paths
    model = load_model(params.root_path(paths.model))
    lexicon = read_lexicon(params.root_path(paths.lexicon), model.labels)
    prepared = params.root_path(paths.prepared)
    labeled, background, challenge, real = (files.read_table(prepared / f"{name}.parquet")
                                            for name in ("labeled", "background", "challenge", "real_dev"))
    test = labeled[labeled["split"] == "test"].reset_index(drop=True)
    background, found = evaluation.split_background(background[background["split"] == "test"])

    scores = evaluation.score_split(model, test, background, lexicon)
    metrics = evaluation.split_metrics(settings, scores)
    metrics["background"] = evaluation.background_summary(background)
    metrics["challenge"] = evaluation.challenge_scores(settings, model, challenge, lexicon)
    metrics["real_posts"] = evaluation.real_post_scores(settings, model, real, lexicon)
    metrics["background_positives"] = evaluation.background_positive_scores(model, found)

    with plots.open_live(params.root_path(paths.plots)) as live:
        for label in model.labels:
            y, proba = test[label].to_numpy(), scores.proba[:, model.labels.index(label)]
            plots.log_label(live, label, scores.pr_table(label), scores.threshold_table(label), y, proba,
                            model.thresholds[label])
            for method in evaluation.METHODS:
                for name in ("precision", "recall", "f1"):
                    live.log_metric(f"{label}/{method}/{name}", metrics[label][method][name], plot=False)
        for method in evaluation.METHODS:
            live.log_metric(f"macro/{method}/f1", metrics["macro"][method]["f1"], plot=False)

    # By hand, not DVCLive: intervals, None, notes, per-writer tables and id lists are beyond its scalar metrics.
    files.write_json(metrics, params.root_path(paths.metrics))
    files.write_parquet(evaluation.predictions(scores), params.root_path(paths.test_predictions))
    files.write_csv(evaluation.error_rows(test, scores.proba, model.labels, model.thresholds, settings.n_errors),
                    params.root_path(paths.errors))
    files.write_json({label: evaluation.top_features(model, label, settings.n_top_features) for label in model.labels},
                     params.root_path(paths.top_features))
    for line in evaluation.summary_lines(metrics, model.labels):
        log.info("%s", line)


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
