"""End to end: the real `dvc repro` on a tiny fixture copy of the project, then predict with its model.

The repro runs once per session (``repro_project`` in conftest.py); these tests only read it, except the one that
edits params, which works on its own copy.
"""

import csv
import io
import json

import pytest
import yaml

from pipeline.model_file import load_model
from tests.conftest import BIN, project_copy, run_cli, sh

pytestmark = pytest.mark.slow
# Outputs by their key in params' paths: the tests read where they are as the pipeline does.
OUTPUTS = ("featurizer", "model", "model_card", "metrics", "report_html", "data_summary", "errors", "top_features",
           "test_predictions")


def test_repro_makes_every_output(repro_project):
    # The copy starts without any output (conftest.NOT_COPIED): each of these was written by its stage.
    paths = yaml.safe_load((repro_project / "configs" / "params.yaml").read_text(encoding="utf-8"))["paths"]
    for key in OUTPUTS:
        assert (repro_project / paths[key]).is_file(), paths[key]
    assert any(path.is_file() for path in (repro_project / paths["plots"]).rglob("*"))
    # DVC finds every output of every stage as dvc.lock records it (a missing or changed one is not up to date).
    assert "up to date" in sh(BIN / "dvc", "status", cwd=repro_project).lower()
    model = load_model(repro_project / paths["model"])
    assert model.labels == ["candidacy", "police_warning"]
    assert model.card["model"]["file"] == paths["model"]


def test_metrics_and_plots_are_readable_by_dvc(repro_project, tmp_path):
    shown = sh(BIN / "dvc", "metrics", "show", cwd=repro_project)
    assert "candidacy.model.f1" in shown and "police_warning.keyword.f1" in shown
    sh(BIN / "dvc", "plots", "show", "-o", tmp_path / "dvc_plots", cwd=repro_project)
    assert (tmp_path / "dvc_plots" / "index.html").is_file()
    plots = json.loads(sh(BIN / "dvc", "plots", "show", "--json", cwd=repro_project))
    assert not plots.get("errors"), plots["errors"]
    for label in ("candidacy", "police_warning"):
        for kind in ("precision at each recall", "against the decision threshold", "calibration", "confusion"):
            [chart] = [charts for name, charts in plots["data"].items() if name.startswith(label) and kind in name]
            assert chart and chart[0]["content"]["data"]["values"], (label, kind)


def test_changing_train_C_reruns_only_train_and_later(repro_project, tmp_path):
    project = project_copy(repro_project, tmp_path / "project")
    path = project / "configs" / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["train"]["C"] = params["train"]["C"] * 2
    path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    status = sh(BIN / "dvc", "status", cwd=project)
    assert "train:" in status
    assert "prepare:" not in status and "segment:" not in status and "featurize:" not in status


def test_predict_with_the_model_it_made(repro_project, tmp_path):
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\n7,我决定参选本区人大代表，请大家联名推荐\nx-2,周末约了老同学去茶馆喝茶\n",
                     encoding="utf-8")
    out = tmp_path / "scored.csv"
    result = run_cli("-m", "pipeline.predict", "--model", str(repro_project / "models" / "model.npz"),
                     "--input", str(posts), "--output", str(out), cwd=repro_project)
    assert result.returncode == 0, result.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == ["7", "x-2"]
    assert list(rows[0]) == ["id", "text", "candidacy_prob", "candidacy", "police_warning_prob", "police_warning"]
    for row in rows:
        assert 0.0 <= float(row["candidacy_prob"]) <= 1.0 and row["candidacy"] in ("0", "1")
    # Even the tiny model tells a declared candidacy from tea with a friend: each row has its own post's scores.
    assert float(rows[0]["candidacy_prob"]) > float(rows[1]["candidacy_prob"])
