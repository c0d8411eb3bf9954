"""Stage ``segment``: add a ``tokens`` column to the prepared labeled and background posts."""

from __future__ import annotations

import logging

from pipeline import files
from pipeline.config import load_params
from pipeline.errors import cli_entry, stage_args
from pipeline.segmenter import make_segmenter

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    """Stage ``segment``: add a ``tokens`` column to the prepared labeled and background posts."""
    args = stage_args("Segment the prepared posts with jieba.", argv)
    params = load_params(args.params)
    segmenter = make_segmenter(params)
    prepared = params.root_path(params.paths.prepared)
    out = params.root_path(params.paths.segmented)
    for name in files.PREPARED_TABLES:
        frame = files.read_table(prepared / f"{name}.parquet")
        docs = segmenter.transform(files.progress(frame["norm"].tolist(), desc=f"segment {name}"))
        frame["tokens"] = [list(doc.tokens) for doc in docs]
        files.write_parquet(frame, out / f"{name}.parquet")
        log.info("%s: %d posts, %d tokens", name, len(frame), sum(len(d.tokens) for d in docs))


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
