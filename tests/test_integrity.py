"""Trust under interruption and concurrency: a killed `dvc repro`, parallel predicts, a shared jieba cache."""

import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import files
from tests.conftest import ROOT, tiny_project

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
       "PYTHONIOENCODING": "utf-8"}
POSTS = "\n".join(["又被国保约谈了", "周末约了老同学去茶馆喝茶", "我决定参选本区人大代表"] * 20) + "\n"


def sh(*args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=ENV, timeout=900)
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    folder = tmp_path_factory.mktemp("integrity")
    tiny_project(folder)
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    shutil.copytree(ROOT / "pipeline", folder / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    sh("git", "init", "-q", cwd=folder)
    sh(BIN / "dvc", "init", "-q", cwd=folder)
    sh(BIN / "dvc", "repro", cwd=folder)
    return folder


def predict(project, *args, stdin=POSTS):
    return subprocess.Popen([sys.executable, "-m", "pipeline.predict", "--model", "models/model.joblib", "-q", *args],
                            cwd=project, env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
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
    target = tmp_path / "model.joblib"
    target.write_bytes(b"old complete model")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_bytes(b"half of a new mo")
        raise RuntimeError("killed")
    assert target.read_bytes() == b"old complete model"
    assert list(tmp_path.iterdir()) == [target]


def _pids_running(fragment: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if fragment in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_sigkill_during_train_never_leaves_a_corrupt_model(project):
    sh(BIN / "dvc", "repro", cwd=project)
    repro = subprocess.Popen([BIN / "dvc", "repro", "--force", "--single-item", "train"], cwd=project, env=ENV,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not _pids_running("pipeline.train") and time.time() < deadline and repro.poll() is None:
        time.sleep(0.05)
    assert _pids_running("pipeline.train"), "the train stage never started"
    time.sleep(1.0)  # well inside the stage: imports done, fitting under way
    os.killpg(repro.pid, signal.SIGKILL)
    repro.wait()
    code, out, err = finish(predict(project))
    assert_clean_outcome(code, out, err)
    if code == 2:
        assert "no trained model" in err or "does not match its card" in err
    # The pipeline recovers: the next repro retrains and predict works again.
    sh(BIN / "dvc", "repro", cwd=project)
    code, out, err = finish(predict(project))
    assert code == 0, err


def test_two_predicts_and_a_repro_at_once(project, tmp_path):
    shutil.rmtree(project / ".cache", ignore_errors=True)  # both predicts build jieba's cache at once
    sh(BIN / "dvc", "repro", cwd=project)
    shutil.rmtree(project / ".cache", ignore_errors=True)
    reference = finish(predict(project, "--jobs", "1"))
    assert reference[0] == 0, reference[2]
    shutil.rmtree(project / ".cache", ignore_errors=True)
    first, second = predict(project, "--jobs", "1"), predict(project, "--jobs", "2", "--chunk-size", "7")
    repro = subprocess.Popen([BIN / "dvc", "repro", "--force", "train"], cwd=project, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    results = [finish(first), finish(second)]
    repro_out, repro_err = repro.communicate(timeout=900)
    assert repro.returncode == 0, repro_err.decode()
    for code, out, err in results:
        assert_clean_outcome(code, out, err)
        if code == 0:
            assert out == reference[1]
    # Whatever ran at once, the cache and the model are whole afterwards.
    for cache in (project / ".cache" / "jieba").glob("*.cache"):
        with open(cache, "rb") as handle:
            freq, total = marshal.load(handle)
        assert total > 0 and len(freq) > 100_000
    code, out, err = finish(predict(project))
    assert code == 0 and out == reference[1], err
