"""Stage ``report``: one self-contained HTML page a researcher can read offline and trust.

Headline figures with their confidence intervals, the model against the keyword baseline, curves and
confusion matrices (PNG images inlined as data URIs), a threshold table with expected flags per 10,000
posts, the most telling features and the worst mistakes with their text. Chinese text is rendered as
HTML text, never inside the images, so it shows with whatever CJK font the reader's browser has.
"""

from __future__ import annotations

import logging

from pipeline import charts, files, plots, report_page
from pipeline.config import load_params
from pipeline.errors import cli_entry, stage_args

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    args = stage_args("Write the HTML evaluation report.", argv)
    params = load_params(args.params)
    paths = params.paths
    metrics = files.read_json(params.root_path(paths.metrics))
    tables = {label: plots.read_label(params.root_path(paths.plots), label) for label in params.labels}
    data = report_page.ReportData(
        metrics=metrics, summary=files.read_json(params.root_path(paths.data_summary)),
        card=files.read_json(params.root_path(paths.model_card)),
        features=files.read_json(params.root_path(paths.top_features)),
        errors=report_page.read_errors(params.root_path(paths.errors)),
        thresholds={label: tables[label]["threshold"] for label in params.labels},
        charts={label: charts.label_charts(label, metrics[label], tables[label]) for label in params.labels})
    page = report_page.render(params, data)
    files.write_text(page, params.root_path(paths.report_html))
    log.info("wrote %s (%.0f kB)", paths.report_html, len(page) / 1024)


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
