"""The report's charts: matplotlib figures as PNG data URIs, so the page stays one self-contained file.

Chinese text never goes into an image (it is HTML text in the report, rendered with the reader's CJK font): the
charts carry only numbers and English axis names.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

MODEL_COLOUR, KEYWORD_COLOUR = "#1f5fa8", "#d9822b"


@dataclass(frozen=True)
class Chart:
    """One inlined image: its data URI, what it shows (for the alt text) and its width in the page."""

    uri: str
    name: str
    width: int


def _pyplot():
    # Imported on first use and with the Agg backend: the report runs headless, and importing pyplot is slow.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "weibo-signals", "figure.max_open_warning": 0})
    return plt


def _figure_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pr_chart(label: str, pr: pd.DataFrame, metrics: dict) -> str:
    """Interpolated precision at each recall, model against keyword baseline, with each at its threshold."""
    fig, ax = _pyplot().subplots(figsize=(4.2, 3.4))
    ax.plot(pr["recall"], pr["model"], color=MODEL_COLOUR, label="model")
    ax.plot(pr["recall"], pr["keyword"], color=KEYWORD_COLOUR, linestyle="--", label="keyword baseline")
    for method, colour, marker in (("model", MODEL_COLOUR, "o"), ("keyword", KEYWORD_COLOUR, "s")):
        m = metrics[method]
        ax.scatter([m["recall"]], [m["precision"]], color=colour, marker=marker, zorder=3,
                   label=f"{method} at its threshold")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=f"{label}: precision-recall")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return _figure_uri(fig)


def threshold_chart(label: str, table: pd.DataFrame, chosen: float) -> str:
    """Precision, recall and F1 against the threshold, the chosen one marked."""
    fig, ax = _pyplot().subplots(figsize=(4.2, 3.4))
    for column, style in (("precision", "-"), ("recall", "--"), ("f1", "-.")):
        ax.plot(table["threshold"], table[column], linestyle=style, label=column)
    ax.axvline(chosen, color="grey", linewidth=0.8)
    ax.text(chosen, 0.03, f" chosen {chosen:.2f}", fontsize=7, color="grey")
    ax.set(xlabel="threshold", ylabel="score", xlim=(0, 1), ylim=(0, 1.02), title=f"{label}: scores by threshold")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return _figure_uri(fig)


def calibration_chart(label: str, calibration: pd.DataFrame) -> str:
    """Observed share of positives per bin of predicted probability (DVCLive's prob_pred, prob_true)."""
    fig, ax = _pyplot().subplots(figsize=(4.2, 3.4))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="perfect calibration")
    ax.plot(calibration["prob_pred"], calibration["prob_true"], marker="o", color=MODEL_COLOUR, label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed share positive", xlim=(0, 1), ylim=(0, 1.02),
           title=f"{label}: calibration (test)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _figure_uri(fig)


def confusion_matrix(confusion: pd.DataFrame) -> np.ndarray:
    """Counts of (actual, predicted) as a 2 x 2 matrix, rows actual 0/1, columns predicted 0/1."""
    return pd.crosstab(confusion["actual"], confusion["predicted"]).reindex(index=[0, 1], columns=[0, 1],
                                                                             fill_value=0).to_numpy()


def confusion_chart(label: str, confusion: pd.DataFrame) -> str:
    matrix = confusion_matrix(confusion)
    fig, ax = _pyplot().subplots(figsize=(3.2, 2.9))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value}", ha="center", va="center", fontsize=11,
                color="white" if value > matrix.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["0", "1"], yticklabels=["0", "1"], xlabel="predicted",
           ylabel="actual", title=f"{label}: confusion (test)")
    return _figure_uri(fig)


def label_charts(label: str, metrics: dict, frames: dict[str, pd.DataFrame]) -> list[Chart]:
    """The four charts of one label's section, from its metrics and its plot tables (``plots.read_label``)."""
    return [Chart(pr_chart(label, frames["pr"], metrics), "precision-recall curve", 440),
            Chart(threshold_chart(label, frames["threshold"], metrics["threshold"]),
                  "precision, recall and F1 by threshold", 440),
            Chart(calibration_chart(label, frames["calibration"]), "calibration curve", 440),
            Chart(confusion_chart(label, frames["confusion"]), "confusion matrix", 330)]
