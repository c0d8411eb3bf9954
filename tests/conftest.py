"""Shared fixtures: the repository, a tiny project trained in-process, the real trained model, a CLI runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def tiny_project(folder: Path, background: bool = True, **overrides) -> Path:
    """A copy of the project's configs with the tiny fixture data; returns its params file."""
    shutil.copytree(ROOT / "configs", folder / "configs")
    shutil.copytree(FIXTURES / "labeled", folder / "data" / "labeled")
    shutil.copytree(FIXTURES / "challenge", folder / "data" / "challenge")
    if background:
        shutil.copy(FIXTURES / "background.csv", folder / "data" / "background.csv")
    shutil.copy(FIXTURES / "background_labels.csv", folder / "data" / "background_labels.csv")
    params_path = folder / "configs" / "params.yaml"
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    params["paths"]["background"] = "data/background.csv"
    params["background"]["train_share"] = 0.5
    params["background"]["val_share"] = 0.25
    params["train"]["calibration_folds"] = 3
    params["features"]["min_df"] = 1
    params["evaluate"]["bootstrap"] = 100
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        params[section][key] = value
    params_path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return params_path


def run_stages(params_path: Path, stages=("prepare", "segment", "featurize", "train", "evaluate", "report")) -> None:
    import importlib

    for stage in stages:
        importlib.import_module(f"pipeline.{stage}").main(["--params", str(params_path)])


@pytest.fixture(scope="session")
def tiny_params(tmp_path_factory) -> Path:
    """A tiny project, trained and evaluated in-process once per session."""
    params_path = tiny_project(tmp_path_factory.mktemp("tiny"))
    run_stages(params_path)
    return params_path


@pytest.fixture(scope="session")
def tiny_model_path(tiny_params) -> Path:
    return tiny_params.parent.parent / "models" / "model.npz"


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path):
    from pipeline import load_model

    return load_model(tiny_model_path)


@pytest.fixture
def model_copy(tiny_model_path, tmp_path):
    """A copy of the tiny model and its card in a folder of its own, to damage or edit."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(tiny_model_path, folder / "model.npz")
    shutil.copy(tiny_model_path.with_name("model_card.json"), folder / "model_card.json")
    return folder / "model.npz"


@pytest.fixture(scope="session")
def real_model():
    """The model `make repro` trained on the full corpus (make test runs the pipeline first)."""
    path = ROOT / "models" / "model.npz"
    if not path.exists():
        pytest.fail("models/model.npz is missing: run `make repro` (make test does it first)")
    from pipeline import load_model

    return load_model(path)


def run_cli(*args: str, stdin: str | bytes | None = None, cwd: Path | None = None,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a module of the project as a user would, capturing bytes."""
    full_env = {**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})}
    data = stdin.encode("utf-8") if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, *args], input=data, capture_output=True, cwd=cwd or ROOT,
                          env=full_env, timeout=600)


@pytest.fixture
def cli():
    return run_cli
