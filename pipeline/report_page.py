"""The HTML evaluation report: ``templates/report.html.j2`` rendered with Jinja2, and the filters it formats
figures with.

Autoescaping is on: a post's text, a writer's name or a label is text in the page, never markup, so a post
holding ``<script>`` shows as those characters. Undefined names are errors, so a renamed key in metrics.json
fails the report instead of leaving a blank.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import jinja2
import pandas as pd

from pipeline.charts import Chart
from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.text import readable

TEMPLATE = "report.html.j2"
# The report lists this many of each label's worst mistakes (reports/errors.csv holds more).
MISTAKES_SHOWN = 15


def _defined(value):
    # A filter formats its value itself, which would hide a missing key behind a TypeError: str() of a
    # StrictUndefined raises the UndefinedError that names the key.
    if isinstance(value, jinja2.Undefined):
        str(value)
    return value


def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if _defined(value) is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if _defined(value) is None else f"{value:.{digits}f}"


def _thousands(value: float, digits: int = 0) -> str:
    return f"{_defined(value):,.{digits}f}"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("pipeline", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=_pct, num=_num, thousands=_thousands, readable=readable)
    return env


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows: the evaluate stage's outputs, the data summary and the model card, and per
    label its threshold table and charts."""

    metrics: dict
    summary: dict
    card: dict
    features: dict
    errors: pd.DataFrame
    thresholds: dict[str, pd.DataFrame]
    charts: dict[str, list[Chart]]


def read_errors(path: Path) -> pd.DataFrame:
    """reports/errors.csv, its text read as written (a post reading "NA" stays "NA")."""
    try:
        return pd.read_csv(path, dtype={"text": str, "kind": str}, keep_default_na=False)
    except FileNotFoundError:
        raise UserError(f"{path} is missing: run the evaluate stage first (dvc repro)") from None


def _records(table: pd.DataFrame) -> list[dict]:
    # Missing values (no background posts: no expected flags) become None, which the template shows as such.
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def render(params: Params, data: ReportData) -> str:
    """The report page as one self-contained HTML string."""
    labels = list(params.labels)
    mistakes = {label: _records(data.errors[data.errors["label"] == label].head(MISTAKES_SHOWN))
                for label in labels}
    return environment().get_template(TEMPLATE).render(
        labels=labels, metrics=data.metrics, summary=data.summary, card=data.card, features=data.features,
        thresholds={label: _records(data.thresholds[label]) for label in labels}, charts=data.charts,
        mistakes=mistakes, confidence=params.evaluate.confidence, bootstrap=params.evaluate.bootstrap,
        lexicon_path=params.paths.lexicon, background_labels_path=params.paths.background_labels)
