"""How fast predict starts and scores, against raw jieba measured in the same run (`make bench`).

    python benchmarks/predict_throughput.py                  # start-up, then throughput: raw jieba vs predict
    python benchmarks/predict_throughput.py --quick          # one round of each, start-up on 3 runs
    python benchmarks/predict_throughput.py --mode memory    # 2,000,000 posts through --jobs 2: peak memory
    python benchmarks/predict_throughput.py --mode all

The posts are the background corpus (/work/shared/corpora/weibo_background/posts.csv, ``paths.background``),
read in place by every process: never copied. Without it the benchmark says so and stops (exit 0). The memory
run cycles the same file through a pipe into ``predict --input -``: no file of 2,000,000 posts is written.

Every figure comes from this run on this machine; speeds are also ratios to raw ``jieba.lcut`` over the same
posts in the same run, because these machines are noisy. Phases:

- whole process: from starting ``python -m pipeline.predict`` to its exit (imports, model, reading, scoring,
  writing), posts / wall time;
- scoring phase: after the model is loaded and warmed up (predict's own log), reading, scoring and writing;
- raw jieba: ``jieba.lcut`` over the posts only, after jieba's dictionary is loaded and the posts are read;
- start-up: process start to the first prediction of one post on the command line, and its breakdown;
- memory: peak proportional set size (PSS) of predict and its workers together, sampled every half second
  (forked workers share the model's pages, which PSS counts once).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "weibo_background" / "posts.csv"
MODEL = ROOT / "models" / "model.npz"
# Reading a 400 MB process's smaps_rollup costs the kernel about 9 ms: sampled every 50 ms, three processes'
# worth took a third of a core from the runs being measured. predict's memory is flat, so half a second is enough.
SAMPLE_EVERY_S = 0.5
sys.path.insert(0, str(ROOT))


class PeakMemory:
    """Samples the summed PSS of a process and all its descendants until stopped."""

    def __init__(self, pid: int):
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        pids, stack = [], [self.pid]
        while stack:
            pid = stack.pop()
            pids.append(pid)
            stack.extend(children.get(pid, []))
        return pids

    @staticmethod
    def _pss_kb(pid: int) -> int:
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            return 0
        match = re.search(r"^Pss:\s+(\d+) kB", text, re.MULTILINE)
        return int(match.group(1)) if match else 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(self._pss_kb(pid) for pid in self._tree()))
            time.sleep(SAMPLE_EVERY_S)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 1024


def predict_command(model: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.predict", "--model", str(model), *args]


def run_predict(model: Path, *args: str, feed=None) -> dict:
    """Run the real CLI once (``feed`` writes its stdin); wall time, its own load and scoring times (from its
    log) and peak memory."""
    started = time.perf_counter()
    process = subprocess.Popen(predict_command(model, "--output", os.devnull, "--format", "csv", *args), cwd=ROOT,
                               stdin=subprocess.PIPE if feed else subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    memory = PeakMemory(process.pid)
    if feed:
        writer = threading.Thread(target=feed, args=(process.stdin,), daemon=True)
        writer.start()
    err = process.stderr.read()
    process.wait()
    wall = time.perf_counter() - started
    peak = memory.stop()
    log = err.decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"predict failed:\n{log}")
    load = float(re.search(r"loaded in ([\d.]+) s", log).group(1))
    rows, total = re.search(r"(\d+) rows in ([\d.]+) s", log).groups()
    return {"wall_s": wall, "load_s": load, "scoring_s": float(total) - load, "rows": int(rows), "peak_mb": peak}


RAW_JIEBA = """
import csv, logging, sys, time
import jieba
jieba.setLogLevel(logging.WARNING)
jieba.dt.tmp_dir = sys.argv[2]  # the project's cache folder, never jieba's default /tmp/jieba.cache
jieba.initialize()
csv.field_size_limit(sys.maxsize)
with open(sys.argv[1], encoding="utf-8", newline="") as handle:
    texts = [row["text"] for row in csv.DictReader(handle)]
started = time.perf_counter()
for text in texts:
    jieba.lcut(text)
print(len(texts), time.perf_counter() - started)
"""


def raw_jieba() -> dict:
    """The floor every jieba pipeline pays: jieba.lcut over the posts, after the dictionary and posts are loaded."""
    cache = ROOT / ".cache" / "jieba"
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", RAW_JIEBA, str(CORPUS), str(cache)], stdout=subprocess.PIPE)
    memory = PeakMemory(process.pid)
    out, _ = process.communicate()
    rows, scoring = out.split()
    return {"scoring_s": float(scoring), "wall_s": time.perf_counter() - started, "rows": int(rows),
            "peak_mb": memory.stop()}


def with_backend(backend: str, folder: Path) -> Path:
    """The trained model with its segmenter switched (and a sealed card that matches the new file)."""
    from pipeline import files, model_file
    from pipeline.segmenter import Segmenter

    model = model_file.load_model(MODEL)
    if model.segmenter.backend == backend:
        return MODEL
    model.segmenter = Segmenter.from_settings({**model.segmenter.settings(), "backend": backend})
    out = folder / f"model-{backend}.npz"
    digest, size = model_file.save(model, out)
    card = {**model.card, "model": {**model.card["model"], "sha256": digest, "bytes": size},
            "segmenter": {**model.card.get("segmenter", {}), "backend": backend}}
    files.write_json(model_file.sealed(card), model_file.card_path(out))
    return out


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


BREAKDOWN = """
import sys, time
t0 = time.perf_counter()
from pipeline.predict import cli                 # arguments and input checks: the standard library only
t1 = time.perf_counter()
from pipeline.predict import local               # NumPy, the model's code, the segmenter's module
t2 = time.perf_counter()
model = local.model_file.load_model(sys.argv[1])
t3 = time.perf_counter()
local.warm_up(model)                            # jieba's (or rjieba's) dictionary and OpenCC load on first use
t4 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def import_times(model: Path) -> dict[str, float]:
    """Import time (s) by top-level package, each module's own time summed, in a real one-post run
    (python -X importtime): what the start-up imports, and nothing of scikit-learn, SciPy or pandas."""
    result = subprocess.run([sys.executable, "-X", "importtime", *predict_command(model, "-q", "一条微博")[1:]],
                            cwd=ROOT, capture_output=True, text=True)
    found: dict[str, float] = {}
    for line in result.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[0].split(":")[1].strip().isdigit():
            package = parts[2].strip().split(".")[0]
            found[package] = found.get(package, 0.0) + int(parts[0].split(":")[1]) / 1e6
    return found


def start_up(model: Path, backend: str, runs: int) -> None:
    """Process start to first prediction (median of ``runs``), and where the time goes."""
    walls = [timed(predict_command(model, "-q", "一条微博")) for _ in range(runs)]
    bare = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(runs))
    parts = [[float(x) for x in subprocess.run([sys.executable, "-c", BREAKDOWN, str(model)], cwd=ROOT, text=True,
                                                 capture_output=True, check=True).stdout.split()]
             for _ in range(runs)]
    cli, libraries, load, warm = (statistics.median(p[i] for p in parts) for i in range(4))
    print(f"start-up, {backend}: {statistics.median(walls):.2f} s process start to first prediction "
          f"(median of {runs}; min {min(walls):.2f}, max {max(walls):.2f})")
    print(f"  breakdown: python itself {bare:.2f} s, predict's CLI {cli:.2f} s, NumPy and the model's code "
          f"{libraries:.2f} s, model load {load:.2f} s, first prediction (dictionary, OpenCC) {warm:.2f} s")
    imports = import_times(model)
    top = sorted(imports.items(), key=lambda item: -item[1])
    print(f"  imports (-X importtime, {sum(imports.values()):.2f} s in all, by package): "
          + ", ".join(f"{name} {seconds:.3f}" for name, seconds in top[:6])
          + f", {len(top) - 6} others {sum(seconds for _, seconds in top[6:]):.3f} s")
    heavy = sorted(set(imports) & {"pandas", "scipy", "sklearn", "pyarrow", "tqdm"})
    print(f"  heavy packages imported: {', '.join(heavy) if heavy else 'none'}")


def argument_error(runs: int) -> None:
    missing = ROOT / "no-such-file.csv"
    walls = [timed([sys.executable, "-m", "pipeline.predict", "--input", str(missing)]) for _ in range(runs)]
    print(f"'input file not found': {statistics.median(walls):.2f} s from process start to exit code 2 "
          f"(median of {runs})")


def _median(runs: list[dict]) -> dict:
    """The run with the median wall time; the highest peak memory."""
    middle = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    return {**middle, "peak_mb": max(r["peak_mb"] for r in runs)}


def throughput(args, folder: Path) -> None:
    other = "rjieba" if args.backend == "jieba" else "jieba"
    swapped = with_backend(other, folder)
    settings = {
        "raw jieba.lcut": raw_jieba,
        "predict --jobs 1": lambda: run_predict(MODEL, "--input", str(CORPUS), "--jobs", "1"),
        "predict --jobs 2": lambda: run_predict(MODEL, "--input", str(CORPUS), "--jobs", "2"),
        f"predict --jobs 1, {other}": lambda: run_predict(swapped, "--input", str(CORPUS), "--jobs", "1"),
        f"predict --jobs 2, {other}": lambda: run_predict(swapped, "--input", str(CORPUS), "--jobs", "2"),
    }
    runs: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(args.repeat):  # interleaved rounds: a slow spell of this shared machine hits every setting alike
        for name, measure in settings.items():
            runs[name].append(measure())
    results = {name: _median(r) for name, r in runs.items()}
    raw = results["raw jieba.lcut"]
    base = raw["rows"] / raw["scoring_s"]
    print(f"\nthroughput: {raw['rows']:,} posts of {CORPUS} (read in place), {os.cpu_count()} cores, "
          f"{args.repeat} interleaved round(s), the median run shown; x raw = posts/s over raw jieba.lcut's")
    print(f"{'':28s} {'whole process':>24s}   {'scoring phase':>24s}   {'load s':>6s} {'peak MB':>7s}")
    print(f"{'':28s} {'posts/s':>9s} {'x raw':>6s} {'wall s':>7s}   {'posts/s':>9s} {'x raw':>6s} {'s':>7s}")
    for name, r in results.items():
        whole = r["rows"] / r["wall_s"]
        load = f"{r['load_s']:6.2f}" if "load_s" in r else ""
        print(f"{name:28s} {whole:9,.0f} {whole / base:6.2f} {r['wall_s']:7.1f}   "
              f"{r['rows'] / r['scoring_s']:9,.0f} {r['rows'] / r['scoring_s'] / base:6.2f} {r['scoring_s']:7.1f}"
              f"   {load:>6s} {r['peak_mb']:7.0f}")
    print("raw jieba: 'whole process' includes its imports, dictionary load and reading the CSV; "
          "'scoring phase' is jieba.lcut alone, the base of every ratio")


def memory(args) -> None:
    header, _, body = CORPUS.read_bytes().partition(b"\n")
    lines = body.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    import csv

    with open(CORPUS, encoding="utf-8", newline="") as handle:
        if sum(1 for _ in csv.reader(handle)) - 1 != len(lines):
            raise SystemExit("the corpus has posts spanning lines: cycling it line by line would break them")

    def feeder(n: int):
        def feed(pipe) -> None:
            try:
                pipe.write(header + b"\n")
                for start in range(0, n, len(lines)):
                    pipe.write(b"".join(lines[: min(len(lines), n - start)]))
            except BrokenPipeError:
                pass
            finally:
                pipe.close()
        return feed

    print(f"\nmemory: posts cycled from {CORPUS} through a pipe into predict --input - --jobs 2 (no copy on disk)")
    for n in (100_000, args.big):
        r = run_predict(MODEL, "--input", "-", "--input-format", "csv", "--jobs", "2", feed=feeder(n))
        print(f"  {r['rows']:,} posts: peak {r['peak_mb']:.0f} MB PSS (all processes), {r['wall_s']:.0f} s in all, "
              f"{r['rows'] / r['scoring_s']:,.0f} posts/s in the scoring phase")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("throughput", "memory", "startup", "all"), default="throughput",
                        help="throughput (default) also measures start-up")
    parser.add_argument("--quick", action="store_true", help="one round of each setting, start-up on 3 runs")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each throughput setting (median shown)")
    parser.add_argument("--big", type=int, default=2_000_000, help="posts for the memory run")
    args = parser.parse_args()
    if not MODEL.exists():
        raise SystemExit("no trained model at models/model.npz: run `make repro` first")
    if not CORPUS.is_file():
        print(f"skipped: the background corpus is not at {CORPUS}; these figures are measured on it")
        return
    from pipeline.model_file import load_model

    args.backend = load_model(MODEL).segmenter.backend
    repeat, runs = (1, 3) if args.quick else (args.repeat, 5)
    args.repeat = repeat
    with tempfile.TemporaryDirectory() as tmp:
        if args.mode in ("throughput", "startup", "all"):
            other = "rjieba" if args.backend == "jieba" else "jieba"
            start_up(MODEL, args.backend, runs)
            start_up(with_backend(other, Path(tmp)), other, runs)
            argument_error(runs)
        if args.mode in ("throughput", "all"):
            throughput(args, Path(tmp))
        if args.mode in ("memory", "all"):
            memory(args)


if __name__ == "__main__":
    main()
