"""``python -m pipeline.predict``: see :mod:`pipeline.predict`."""

from pipeline.predict import cli

raise SystemExit(cli())
