"""predict under kills, interrupts and a full disk: no orphan workers, no stray temporary files, no traceback.

These need real processes (signals, kills, pipes) or a real small file system; everything else about predict is
tested in-process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.predict import cli as predict_cli

ROOT = Path(__file__).resolve().parent.parent

ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}
POSTS = ["我决定参选本区人大代表，请大家联名推荐", "又被国保约去喝茶了", "", "周末约了老同学去茶馆喝茶",
         "警方提醒：谨防电信诈骗"]


def children(pid: int) -> set[int]:
    """Processes whose parent is ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pids: set[int]) -> set[int]:
    still = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            still.add(pid)
    return still


def wait_until(condition, timeout: float = 60.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.fixture(scope="module")
def big_input(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("signals") / "posts.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(300_000):
            handle.write(json.dumps({"id": i, "text": POSTS[i % len(POSTS)] + str(i)}, ensure_ascii=False) + "\n")
    return path


def start(model: Path, *args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline.predict", "--model", str(model), *map(str, args)],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def started_scoring(process: subprocess.Popen, out: Path, jobs: int) -> bool:
    """The run is under way: its temporary output exists and (with --jobs 2) its worker has been forked."""
    return bool(temp_files(out.parent)) and (jobs == 1 or bool(children(process.pid)))


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_stop_cleanly(tiny_model_path, big_input, tmp_path, jobs, signum, code):
    out = tmp_path / "scored.csv"
    process = start(tiny_model_path, "--input", big_input, "--output", out, "--jobs", jobs, "--chunk-size", "500",
                    start_new_session=True)
    assert wait_until(lambda: started_scoring(process, out, jobs) or process.poll() is not None)
    workers = children(process.pid)
    os.killpg(process.pid, signum)  # as a terminal's Ctrl-C or a service manager would: the whole group
    _, err = process.communicate(timeout=60)
    err = err.decode("utf-8")
    assert process.returncode == code, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] in ("interrupted", "terminated")
    assert wait_until(lambda: not alive(workers), timeout=10)
    assert list(tmp_path.iterdir()) == []  # no output and no temporary file


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_leaves_no_worker_and_the_next_run_sweeps_the_temporary_file(tiny_model_path, big_input, tmp_path,
                                                                             jobs):
    out = tmp_path / "scored.jsonl"
    # stderr shared with the workers: a worker that outlived its parent would keep this pipe open forever.
    process = start(tiny_model_path, "--input", big_input, "--output", out, "--jobs", jobs, "--chunk-size", "500")
    assert wait_until(lambda: started_scoring(process, out, jobs))
    workers = children(process.pid)
    assert len(workers) == jobs - 1
    process.kill()
    process.communicate(timeout=30)  # returns only once every holder of the pipes is gone
    assert wait_until(lambda: not alive(workers), timeout=10)
    # What a kill cannot clean up, the next run does.
    left = temp_files(tmp_path)
    assert left and not out.exists()
    (tmp_path / "small.txt").write_text("\n".join(POSTS) + "\n", encoding="utf-8")
    assert predict_cli(["--model", str(tiny_model_path), "-q", "--input", str(tmp_path / "small.txt"),
                        "--output", str(out)]) == 0
    assert temp_files(tmp_path) == [] and len(out.read_text(encoding="utf-8").splitlines()) == len(POSTS)


def test_a_live_runs_temporary_file_is_not_swept(tiny_model_path, tmp_path):
    out = tmp_path / "scored.jsonl"
    mine = tmp_path / f".scored.jsonl.{os.getppid()}.tmp"  # a process that is alive: our parent
    mine.write_text("in progress")
    assert predict_cli(["--model", str(tiny_model_path), "-q", "好", "--output", str(out)]) == 0
    assert mine.exists()


def test_process_substitution_input_with_a_progress_bar(tiny_model_path):
    command = (f"{sys.executable} -m pipeline.predict --model {tiny_model_path} --input-format jsonl "
               "--input <(printf '{\"id\": 1, \"text\": \"又被喝茶了\"}\\n{\"id\": 2, \"text\": \"好\"}\\n')")
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=ENV, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == [1, 2]


# --- a full disk -------------------------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 256 KB tmpfs, where the machine lets us mount one."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "csv.gz"])
def test_a_full_disk_keeps_the_previous_output(tiny_model_path, small_disk, tmp_path, capsys, fmt):
    out = small_disk / f"scored.{fmt}"
    out.write_bytes(b"previous complete output\n")
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (200 * 1024))
    source = tmp_path / "posts.txt"
    rng = __import__("random").Random(13)
    source.write_text("".join("".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(60)) + "\n"
                              for _ in range(3000)), encoding="utf-8")
    code = predict_cli(["--model", str(tiny_model_path), "-q", "--input", str(source), "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.strip().splitlines() == [f"error: cannot write {out}: No space left on device"]
    assert out.read_bytes() == b"previous complete output\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", out.name]


def test_a_disk_that_fills_at_close_keeps_the_previous_output(tiny_model_path, small_disk, capsys):
    out = small_disk / "scored.jsonl"
    out.write_bytes(b"previous complete output\n")
    # Leave less room than one buffered block: the writes fit in memory and the disk fills when the file is closed.
    (small_disk / "filler").write_bytes(b"\0" * (256 * 1024 - 4096 - 100))
    posts = ["又被国保约谈了" * 40] * 10
    code = predict_cli(["--model", str(tiny_model_path), "-q", *posts, "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err, err
    assert out.read_bytes() == b"previous complete output\n"
