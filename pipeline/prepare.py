"""Stage ``prepare``: validate the labeled posts, normalise them, group near-duplicates and split.

Outputs (``paths.prepared``): ``labeled.parquet`` (id, source, writer, text, norm, kind, one column per label,
group, split), ``background.parquet`` (id, text, norm, labels by id, split; empty when the background corpus is
absent), ``challenge.parquet`` and ``real_dev.parquet``, plus ``reports/data_summary.json``.
"""

from __future__ import annotations

import logging

from pipeline import files
from pipeline.config import load_params
from pipeline.data import prepare
from pipeline.errors import cli_entry, stage_args

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    args = stage_args("Validate, normalise and split the labeled posts.", argv)
    params = load_params(args.params)
    tables, summary = prepare(params)
    out = params.root_path(params.paths.prepared)
    for name, table in tables.items():
        files.write_parquet(table, out / f"{name}.parquet")
    files.write_json(summary, params.root_path(params.paths.data_summary))
    log.info("%d labeled posts (%s), %d background posts, %d challenge posts, %d real development posts",
             summary["posts"], ", ".join(f"{k}={v}" for k, v in summary["labels"].items()), len(tables["background"]),
             len(tables["challenge"]), len(tables["real_dev"]))


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
