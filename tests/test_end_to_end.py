"""End to end: the real `dvc repro` on a tiny fixture copy of the project, then predict with its model."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli, tiny_project

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def sh(*args, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    tiny_project(project)
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    shutil.copytree(ROOT / "pipeline", project / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    sh("git", "init", "-q", cwd=project)
    sh(str(BIN / "dvc"), "init", "-q", cwd=project)
    sh(str(BIN / "dvc"), "config", "core.analytics", "false", cwd=project)
    sh(str(BIN / "dvc"), "repro", cwd=project)
    return project


def test_repro_makes_every_output(repro):
    for path in ("models/model.joblib", "models/model_card.json", "reports/metrics.json", "reports/report.html",
                 "reports/data_summary.json", "reports/errors.csv", "reports/plots/pr/candidacy.csv",
                 "reports/plots/confusion/police_warning.csv"):
        assert (repro / path).is_file(), path
    assert "up to date" in sh(str(BIN / "dvc"), "status", cwd=repro).lower()


def test_metrics_and_plots_are_readable_by_dvc(repro):
    shown = sh(str(BIN / "dvc"), "metrics", "show", cwd=repro)
    assert "candidacy.model.f1" in shown and "police_warning.keyword.f1" in shown
    sh(str(BIN / "dvc"), "plots", "show", "-o", "dvc_plots", cwd=repro)
    assert (repro / "dvc_plots" / "index.html").is_file()
    plots = json.loads(sh(str(BIN / "dvc"), "plots", "show", "--json", cwd=repro))
    assert not plots.get("errors"), plots["errors"]
    for label in ("candidacy", "police_warning"):
        for kind in ("precision at each recall", "against the decision threshold", "calibration", "confusion"):
            [chart] = [charts for name, charts in plots["data"].items() if name.startswith(label) and kind in name]
            assert chart and chart[0]["content"]["data"]["values"], (label, kind)


def test_changing_train_C_reruns_only_train_and_later(repro):
    params = repro / "configs" / "params.yaml"
    text = params.read_text(encoding="utf-8")
    params.write_text(text.replace("  C: 4.0", "  C: 0.5"), encoding="utf-8")
    try:
        status = sh(str(BIN / "dvc"), "status", cwd=repro)
        assert "train:" in status
        assert "prepare:" not in status and "segment:" not in status and "featurize:" not in status
    finally:
        params.write_text(text, encoding="utf-8")


def test_predict_with_the_model_it_made(repro, tmp_path):
    posts = tmp_path / "posts.csv"
    posts.write_text("id,text\n7,我决定参选本区人大代表，请大家联名推荐\nx-2,周末约了老同学去茶馆喝茶\n",
                     encoding="utf-8")
    out = tmp_path / "scored.csv"
    result = run_cli("-m", "pipeline.predict", "--model", str(repro / "models" / "model.joblib"),
                     "--input", str(posts), "--output", str(out), cwd=repro)
    assert result.returncode == 0, result.stderr.decode()
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["id"] for r in rows] == ["7", "x-2"]
    assert list(rows[0]) == ["id", "text", "candidacy_prob", "candidacy", "police_warning_prob", "police_warning"]
    for row in rows:
        assert 0.0 <= float(row["candidacy_prob"]) <= 1.0 and row["candidacy"] in ("0", "1")
