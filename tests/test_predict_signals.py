"""predict as a real process: kills, interrupts, a closed pipe, a full disk, `python -m`, the console script, and
what a run imports. No orphan workers, no stray temporary files, no traceback.

These need real processes (signals, kills, pipes, imports) or a real small file system; everything else about
predict is tested in-process (tests/test_predict.py and others, through the ``predict_run`` fixture).
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


def start(model: Path, *args, ignored: tuple[int, ...] = (), **kwargs) -> subprocess.Popen:
    """predict with the signal dispositions a terminal gives it (a test runner started in the background passes
    on SIGINT ignored), but for the ``ignored`` signals, as ``nohup`` or a shell's background job sets them."""
    def dispositions():
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)
    return subprocess.Popen([sys.executable, "-m", "pipeline.predict", "--model", str(model), *map(str, args)],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=dispositions, **kwargs)


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def started_scoring(process: subprocess.Popen, out: Path, jobs: int) -> bool:
    """The run is under way: rows have reached its temporary output and (with --jobs 2) its worker is forked."""
    written = [p for p in out.parent.iterdir() if p.name.endswith(".tmp") and p.stat().st_size > 0]
    return bool(written) and (jobs == 1 or bool(children(process.pid)))


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
    assert list(tmp_path.iterdir()) == [], err  # no output and no temporary file


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT])
def test_a_signal_ignored_by_the_caller_stays_ignored(tiny_model_path, tmp_path, signum):
    source = tmp_path / "posts.txt"
    source.write_text("".join(f"{POSTS[i % len(POSTS)]}{i}\n" for i in range(20_000)), encoding="utf-8")
    out = tmp_path / "scored.csv"
    process = start(tiny_model_path, "--input", source, "--output", out, "--chunk-size", "500", ignored=(signum,))
    assert wait_until(lambda: started_scoring(process, out, 1) or process.poll() is not None)
    process.send_signal(signum)  # as closing the terminal of `nohup predict … &` would
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode("utf-8")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 20_001  # the header and every row


@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_leaves_no_worker_and_the_next_run_sweeps_the_temporary_file(tiny_model_path, big_input, tmp_path,
                                                                             jobs, predict_run):
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
    assert predict_run("--input", tmp_path / "small.txt", "--output", out).code == 0
    assert temp_files(tmp_path) == [] and len(out.read_text(encoding="utf-8").splitlines()) == len(POSTS)


def test_a_live_runs_temporary_file_is_not_swept(predict_run, tmp_path):
    out = tmp_path / "scored.jsonl"
    mine = tmp_path / f".scored.jsonl.{os.getppid()}.tmp"  # a process that is alive: our parent
    mine.write_text("in progress")
    dead = tmp_path / f".scored.jsonl.{2**22 + 1}.tmp"  # above Linux's largest process id: no such process
    dead.write_text("left by a killed run")
    assert predict_run("好", "--output", out).code == 0
    assert mine.exists() and not dead.exists()


def test_process_substitution_input_with_a_progress_bar(tiny_model_path):
    command = (f"{sys.executable} -m pipeline.predict --model {tiny_model_path} --input-format jsonl "
               "--input <(printf '{\"id\": 1, \"text\": \"又被喝茶了\"}\\n{\"id\": 2, \"text\": \"好\"}\\n')")
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=ENV, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert [json.loads(line)["id"] for line in result.stdout.decode().splitlines()] == [1, 2]


def test_a_reader_that_stops_early_ends_the_run_quietly(tiny_model_path, big_input):
    # `predict … | head -1`: the pipe closes after one line; predict ends with exit 0, no traceback, no worker left.
    command = (f"{sys.executable} -m pipeline.predict --model {tiny_model_path} -q --jobs 2 --chunk-size 500 "
               f"--input {big_input} | head -1; echo \"exit ${{PIPESTATUS[0]}}\" >&2")
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=ENV, capture_output=True, timeout=120)
    err = result.stderr.decode("utf-8")
    assert json.loads(result.stdout.decode("utf-8"))["id"] == 0
    assert err.strip().splitlines() == ["exit 0"], err


def imported(stderr: bytes) -> set[str]:
    """The top-level packages a `python -X importtime` run imported."""
    lines = stderr.decode("utf-8", "replace").splitlines()
    return {line.split("|")[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}


HEAVY = {"sklearn", "scipy", "pandas"}


def test_python_m_scores_without_scikit_learn_scipy_or_pandas(tiny_model_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline.predict", "--model",
                             str(tiny_model_path), "我被约谈了"], cwd=ROOT, env=ENV, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["text"] == "我被约谈了"
    modules = imported(result.stderr)
    assert {"numpy", "jieba", "opencc", "pipeline"} <= modules
    assert not modules & (HEAVY | {"tqdm", "pyarrow"})  # tqdm: stderr is not a terminal; pyarrow: no Parquet


def test_an_input_error_comes_before_anything_heavy_is_imported(tiny_model_path, tmp_path):
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline.predict", "--model",
                             str(tiny_model_path), "--input", str(tmp_path / "nope.csv")], cwd=ROOT, env=ENV,
                            capture_output=True, timeout=120)
    err = [line for line in result.stderr.decode().splitlines() if not line.startswith("import time:")]
    assert result.returncode == 2 and err == [f"error: input file not found: {tmp_path / 'nope.csv'}"]
    assert not imported(result.stderr) & (HEAVY | {"numpy", "jieba", "rjieba", "opencc"})


def test_the_console_script(tiny_model_path):
    script = Path(sys.executable).with_name("weibo-predict")
    if not script.exists():
        pytest.skip("the package is not installed in this environment (pip install -e .)")
    result = subprocess.run([str(script), "--model", str(tiny_model_path), "-q", "--format", "csv", "又被喝茶了"],
                            cwd=ROOT, env=ENV, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    header, row = result.stdout.decode("utf-8").splitlines()
    assert header == "text,candidacy_prob,candidacy,police_warning_prob,police_warning"
    assert row.startswith("又被喝茶了,")


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
def test_a_full_disk_keeps_the_previous_output(predict_run, small_disk, tmp_path, fmt):
    out = small_disk / f"scored.{fmt}"
    out.write_bytes(b"previous complete output\n")
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (200 * 1024))
    source = tmp_path / "posts.txt"
    rng = __import__("random").Random(13)
    source.write_text("".join("".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(60)) + "\n"
                              for _ in range(1000)), encoding="utf-8")  # 180 KB of text: more than the room left
    result = predict_run("--input", source, "--output", out)
    code, err = result.code, result.err
    assert code == 2, err
    assert err.strip().splitlines() == [f"error: cannot write {out}: No space left on device"]
    assert out.read_bytes() == b"previous complete output\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", out.name]


def test_a_disk_that_fills_at_close_keeps_the_previous_output(predict_run, small_disk):
    out = small_disk / "scored.jsonl"
    out.write_bytes(b"previous complete output\n")
    # Leave less room than one buffered block: the writes fit in memory and the disk fills when the file is closed.
    (small_disk / "filler").write_bytes(b"\0" * (256 * 1024 - 4096 - 100))
    posts = ["又被国保约谈了" * 40] * 10
    result = predict_run(*posts, "--output", out)
    code, err = result.code, result.err
    assert code == 2 and "No space left on device" in err and "Traceback" not in err, err
    assert out.read_bytes() == b"previous complete output\n"
