"""Trust under interruption and concurrency: train killed while it saves, parallel predicts, a shared jieba cache.

Each test that changes a project works on its own copy of the session's reproduced project (conftest.py), so the
tests may run in any order.
"""

import json
import marshal
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline import files
from pipeline.errors import UserError
from pipeline.model_file import load_model
from tests.conftest import BIN, PIPELINE_ENV, project_copy, sh

pytestmark = pytest.mark.slow
POSTS = "\n".join(["又被国保约谈了", "周末约了老同学去茶馆喝茶", "我决定参选本区人大代表"] * 20) + "\n"
MODEL_FILES = ("model.npz", "model_card.json")

# `python -m pipeline.train`, except that the rename of one file (argv[1]) over its old version waits: the new file
# is complete beside it, the marker file (argv[2]) names it, and the process sleeps until the test kills it. The
# marker is itself written by a rename, so the test never reads half of it.
TRAIN_HELD_AT_RENAME = """
import os, runpy, sys, time
from pathlib import Path

target, marker = sys.argv[1], Path(sys.argv[2])
rename = os.replace

def held(src, dst, *args, **kwargs):
    if Path(dst).name == target:
        Path(f"{marker}.part").write_text(str(src), encoding="utf-8")
        rename(f"{marker}.part", marker)
        time.sleep(600)
    return rename(src, dst, *args, **kwargs)

os.replace = held
sys.argv = ["pipeline.train"]
runpy.run_module("pipeline.train", run_name="__main__", alter_sys=True)
"""


def predict(project, *args, stdin=POSTS):
    return subprocess.Popen([sys.executable, "-m", "pipeline.predict", "--model", "models/model.npz", "-q", *args],
                            cwd=project, env=PIPELINE_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE), stdin


def finish(popen_and_input):
    process, stdin = popen_and_input
    out, err = process.communicate(stdin.encode("utf-8"), timeout=600)
    return process.returncode, out.decode("utf-8"), err.decode("utf-8")


def assert_clean_outcome(code, out, err):
    """Either a complete result or a one-line refusal: never a traceback, never a partial answer."""
    assert "Traceback" not in err, err
    if code == 0:
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) == POSTS.count("\n")
    else:
        assert code == 2, err
        assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"old complete model")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_bytes(b"half of a new mo")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old complete model"
    assert list(tmp_path.iterdir()) == [target]


def kill_train_at_rename(project: Path, name: str, marker: Path) -> Path:
    """Run train in ``project`` and SIGKILL it just before it renames its new ``name`` into place; returns the
    complete new file it left beside the old one."""
    log = marker.with_suffix(".log")
    with open(log, "wb") as stderr:
        train = subprocess.Popen([sys.executable, "-c", TRAIN_HELD_AT_RENAME, name, str(marker)], cwd=project,
                                 env=PIPELINE_ENV, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            deadline = time.monotonic() + 600
            while not marker.exists():
                assert train.poll() is None, f"train ended without renaming {name}:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"train did not reach the rename of {name}"
                time.sleep(0.05)
        finally:
            train.kill()  # SIGKILL: no handler, no cleanup
            train.wait()
    assert train.returncode == -9
    return Path(marker.read_text(encoding="utf-8"))


@pytest.mark.parametrize("killed_before", MODEL_FILES)
def test_sigkill_while_train_saves_never_leaves_a_mismatched_model(repro_project, tmp_path, killed_before):
    project = project_copy(repro_project, tmp_path / "project")
    models = project / "models"
    old = {name: (models / name).read_bytes() for name in MODEL_FILES}
    texts = POSTS.splitlines()
    reference = load_model(models / "model.npz").predict_proba(texts)
    # Another C, so the new model differs from the old one and the test can tell which one is in place.
    path = project / "configs" / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8"))
    params["train"]["C"] = params["train"]["C"] / 4
    path.write_text(yaml.safe_dump(params, allow_unicode=True, sort_keys=False), encoding="utf-8")
    before = set(models.iterdir())

    written = kill_train_at_rename(project, killed_before, tmp_path / "renaming")

    assert written.parent == models and written.read_bytes() != old[killed_before]
    assert (models / "model_card.json").read_bytes() == old["model_card.json"]
    if killed_before == "model.npz":
        # Killed before the model's rename: the old model and card are whole, load and score as before.
        assert (models / "model.npz").read_bytes() == old["model.npz"]
        model = load_model(models / "model.npz")
        assert model.card == json.loads(old["model_card.json"])
        assert np.array_equal(model.predict_proba(texts), reference)
    else:
        # Killed between the new model's rename and its card's: the pair does not match and is refused in one line.
        assert (models / "model.npz").read_bytes() != old["model.npz"]
        with pytest.raises(UserError, match="does not match its card"):
            load_model(models / "model.npz")
        code, out, err = finish(predict(project))
        assert_clean_outcome(code, out, err)
        assert code == 2 and "does not match its card" in err
    # The killed run's temporary file is its only trace, and the next run goes through beside it.
    assert set(models.iterdir()) - before == {written}
    sh(BIN / "dvc", "repro", "train", cwd=project)
    assert set(models.iterdir()) - before <= {written}
    model = load_model(models / "model.npz")
    assert model.card["params"]["train"]["C"] == params["train"]["C"]
    assert model.predict_proba(texts).shape == reference.shape


def test_two_predicts_and_a_repro_at_once(repro_project, tmp_path):
    project = project_copy(repro_project, tmp_path / "project")
    shutil.rmtree(project / ".cache", ignore_errors=True)
    reference = finish(predict(project, "--jobs", "1"))
    assert reference[0] == 0, reference[2]
    shutil.rmtree(project / ".cache", ignore_errors=True)  # both predicts build jieba's cache at once
    first, second = predict(project, "--jobs", "1"), predict(project, "--jobs", "2", "--chunk-size", "7")
    # Only train: it starts at once, so the model is replaced while the predicts run (DVC deletes it first).
    repro = subprocess.Popen([BIN / "dvc", "repro", "--force", "--single-item", "train"], cwd=project,
                             env=PIPELINE_ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = [finish(first), finish(second)]
    repro_out, repro_err = repro.communicate(timeout=900)
    assert repro.returncode == 0, repro_err.decode()
    for code, out, err in results:
        assert_clean_outcome(code, out, err)
        if code == 0:
            assert out == reference[1]
    # Whatever ran at once, the cache and the model are whole afterwards.
    caches = list((project / ".cache" / "jieba").glob("*.cache"))
    assert caches
    for cache in caches:
        with open(cache, "rb") as handle:
            freq, total = marshal.load(handle)
        assert total > 0 and len(freq) > 100_000
    code, out, err = finish(predict(project))
    assert code == 0 and out == reference[1], err
