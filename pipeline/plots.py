"""The evaluation's plot data per label, written with DVCLive for ``dvc plots`` and read back by the report.

DVCLive lays its folder out as ``plots/custom/<name>.json`` (``Live.log_plot``) and ``plots/sklearn/<name>.json``
(``Live.log_sklearn_plot``); the names below put each kind of chart in a folder of its own, one file per label.
dvc.yaml's ``plots:`` section names the same files: a new kind of chart needs its entries there too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline import files
from pipeline.errors import UserError

if TYPE_CHECKING:
    from dvclive import Live

# kind -> (DVCLive's subfolder, the key of the JSON list for DVCLive's scikit-learn plots, or None for a plain list)
LAYOUT = {"pr": ("custom", None), "threshold": ("custom", None), "calibration": ("sklearn", "calibration"),
          "confusion": ("sklearn", None)}
CALIBRATION_BINS = 10


def open_live(folder: Path) -> Live:
    """DVCLive writing into ``folder``; dvcyaml=False: dvc.yaml's plots section names these files itself, and no
    experiment is saved from inside a stage."""
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        return Live(dir=str(folder), dvcyaml=False, save_dvc_exp=False, report=None)
    except SCMError as err:  # DVCLive reads the git revision: a repository without a commit has none
        raise UserError(f"DVCLive cannot start in this git repository ({err}): commit once, then rerun") from None


def log_label(live: Live, label: str, pr: pd.DataFrame, thresholds: pd.DataFrame, y: np.ndarray,
              proba: np.ndarray, threshold: float) -> None:
    """Write one label's four plots: interpolated precision-recall of the model and the keyword baseline, scores
    by threshold, calibration (10 equal-width bins) and the confusion at the chosen threshold."""
    # The precision-recall curve and the threshold table are ours (two methods on one recall grid; the expected
    # flags per 10,000 posts), so they go through log_plot; calibration and confusion are DVCLive's own.
    live.log_plot(f"pr/{label}", pr, x="recall", y=["model", "keyword"])
    live.log_plot(f"threshold/{label}", thresholds, x="threshold", y=["precision", "recall", "f1"])
    live.log_sklearn_plot("calibration", y, proba, name=f"calibration/{label}", n_bins=CALIBRATION_BINS,
                          strategy="uniform")
    live.log_sklearn_plot("confusion_matrix", y, (proba >= threshold).astype(int), name=f"confusion/{label}")


def path(folder: Path, kind: str, label: str) -> Path:
    """Where DVCLive (with ``dir=folder``) writes the plot of ``kind`` for ``label``."""
    subfolder, _ = LAYOUT[kind]
    return Path(folder) / "plots" / subfolder / kind / f"{label}.json"


def read_label(folder: Path, label: str) -> dict[str, pd.DataFrame]:
    """The four plots of one label as tables: pr (recall, model, keyword), threshold (the threshold table),
    calibration (prob_pred, prob_true) and confusion (actual, predicted as 0/1, one row per test post)."""
    frames = {}
    for kind, (_, key) in LAYOUT.items():
        file = path(folder, kind, label)
        data = files.read_json(file, "plot data",
                               missing=f"{file} is missing: run the evaluate stage first (dvc repro)")
        frames[kind] = pd.DataFrame(data[key] if key else data)
    # DVCLive writes confusion classes as strings (for the confusion template); the report counts integers.
    confusion = frames["confusion"]
    frames["confusion"] = pd.DataFrame({column: confusion.get(column, pd.Series(dtype=str)).astype(int)
                                        for column in ("actual", "predicted")})
    return frames
