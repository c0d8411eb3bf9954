"""Shared fixtures: the repository, a tiny project trained in-process, the project's segmenter, the real trained model,
a CLI runner, and a copy of the repository after one real `dvc repro` on the tiny data."""

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
BIN = Path(sys.executable).parent
# What a shell running the pipeline needs: DVC runs each stage's `python -m ...` through the shell.
PIPELINE_ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
                "PYTHONIOENCODING": "utf-8"}
# Not copied from the repository into a project copy: the data (the tiny fixtures take its place), the configs
# (tiny_project copies and adjusts them) and the pipeline's outputs, which the copy must make itself.
NOT_COPIED = ("data", "configs", "models", "reports")


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
    params["train"]["calibration_groups"] = "post"  # the fixture is one writer's file
    params["train"]["validation"] = "held_out"  # cross-fitting needs writer folds
    params["features"]["min_df"] = 1
    params["evaluate"]["bootstrap"] = 100
    for dotted, value in overrides.items():
        section, key = dotted.split("__")
        params[section][key] = value
    params_path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return params_path


def run_stages(params_path: Path, stages=("prepare", "segment", "featurize", "train", "evaluate", "report")) -> None:
    """Run pipeline stages in-process, in order, on a project made by :func:`tiny_project`."""
    import importlib

    for stage in stages:
        importlib.import_module(f"pipeline.{stage}").main(["--params", str(params_path)])


def sh(*args, cwd: Path) -> str:
    """Run a command of the pipeline's shell (dvc, git, python) in ``cwd``; it must succeed. Returns stdout."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, env=PIPELINE_ENV,
                            timeout=900)
    assert result.returncode == 0, f"{' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def repository_copy(folder: Path) -> Path:
    """The repository as its next commit would hold it (the files git tracks and the new ones it does not ignore),
    without data, configs or outputs, then the tiny project on top, committed to a git repository of its own;
    returns its params file."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode("utf-8").split("\0")
    for name in listed:
        source = ROOT / name
        if name and name.split("/")[0] not in NOT_COPIED and source.is_file():  # a deleted file is still listed
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    params_path = tiny_project(folder)
    # Committed, as a clone is: dvclive (in evaluate) asks git for the current revision.
    sh("git", "init", "-q", cwd=folder)
    sh("git", "add", "-A", cwd=folder)
    sh("git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false", "commit",
       "-q", "-m", "copy of the repository with the tiny data", cwd=folder)
    return params_path


def project_copy(project: Path, folder: Path) -> Path:
    """A copy of a project folder (with its DVC cache and lock, and its git repository) to change freely."""
    shutil.copytree(project, folder, symlinks=True)
    return folder


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
def repro_project(tmp_path_factory) -> Path:
    """A copy of the repository on the tiny data after one real `dvc repro`, shared by the end-to-end and integrity
    tests. Read it, never change it: a test that changes a project works on a :func:`project_copy` of it."""
    folder = tmp_path_factory.mktemp("repro")
    repository_copy(folder)
    sh(BIN / "dvc", "repro", cwd=folder)
    return folder


@pytest.fixture(scope="session")
def project_params():
    """The project's parameters, as configs/params.yaml sets them (frozen: no test can change them for another)."""
    from pipeline.config import load_params

    return load_params(ROOT / "configs" / "params.yaml")


@pytest.fixture(scope="session")
def project_segmenter(project_params):
    """The project's segmenter, its user dictionary included, fitted once."""
    from pipeline.segmenter import make_segmenter

    return make_segmenter(project_params).fit()


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


# --- predict in-process (tests/test_predict*.py, test_bad_input.py, test_hostile_input.py, test_cluster.py) ------
# Added by the predict work: fixtures below this line only (their imports here, to leave the top of the file alone).

import io  # noqa: E402
import json  # noqa: E402
from dataclasses import dataclass  # noqa: E402


@dataclass
class PredictRun:
    """What an in-process predict run gave: its exit code, stdout's bytes and stderr's text."""

    code: int
    out: bytes
    err: str

    def rows(self) -> list[dict]:
        """The run succeeded; its JSON Lines output."""
        assert self.code == 0, self.err
        return [json.loads(line) for line in self.out.decode("utf-8").splitlines()]


class TerminalStdin(io.TextIOWrapper):
    """Standard input that is a terminal (nothing piped in)."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def predict_run(tiny_model, tiny_model_path, monkeypatch, capsysbinary):
    """Run predict in-process by calling its entry function with an argv, as `python -m pipeline.predict` does:
    ``predict_run(*args, stdin=None, model=tiny_model_path, quiet=True) -> PredictRun``.

    The tiny model is loaded once per session (with its jieba dictionary): loading that path again returns it.
    ``stdin`` (str or bytes) is what is piped in; ``TerminalStdin`` stands for a terminal; by default nothing.
    """
    import pipeline.model_file
    from pipeline.predict import cli

    real_load = pipeline.model_file.load_model

    def load(path=None):
        if path is not None and Path(path).resolve() == tiny_model_path.resolve():
            return tiny_model
        return real_load(path)

    monkeypatch.setattr(pipeline.model_file, "load_model", load)

    def run(*args, stdin: str | bytes | io.TextIOWrapper | None = None, model: Path | None = tiny_model_path,
            quiet: bool = True) -> PredictRun:
        if not isinstance(stdin, io.TextIOWrapper):
            data = stdin.encode("utf-8") if isinstance(stdin, str) else (stdin or b"")
            stdin = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8")
        monkeypatch.setattr(sys, "stdin", stdin)
        argv = (["--model", str(model)] if model is not None else []) + (["-q"] if quiet else []) + list(map(str, args))
        capsysbinary.readouterr()
        code = cli(argv)
        out, err = capsysbinary.readouterr()
        return PredictRun(code, out, err.decode("utf-8", "replace"))

    return run
