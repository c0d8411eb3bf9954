"""How fast predict scores posts, against raw jieba measured in the same run (`make bench`).

    python benchmarks/predict_throughput.py                 # throughput: raw jieba vs predict --jobs 1/2, rjieba
    python benchmarks/predict_throughput.py --mode memory   # 2,000,000 posts through --jobs 2: peak memory
    python benchmarks/predict_throughput.py --posts 20000   # a quicker run

Every figure comes from this run on this machine, and speeds are also given as ratios to raw
``jieba.lcut`` over the same posts, because these machines are noisy. Memory is the peak proportional set
size (PSS) of predict and its worker processes together, sampled every half second: forked workers share the
model's pages, which PSS counts once.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Reading a 400 MB process's smaps_rollup costs the kernel about 9 ms: sampled every 50 ms, three processes'
# worth took a third of a core from the runs being measured. predict's memory is flat, so half a second is enough.
SAMPLE_EVERY_S = 0.5
sys.path.insert(0, str(ROOT))


def load_posts(n: int) -> tuple[list[str], str]:
    """N posts: the background corpus where present, otherwise the labeled data repeated."""
    import pandas as pd

    from pipeline.config import load_params

    params = load_params(ROOT / "configs" / "params.yaml")
    background = params.root_path(params.paths.background)
    if background.is_file():
        texts = pd.read_csv(background, dtype=str, keep_default_na=False)["text"].tolist()
        source = f"background corpus ({background.name})"
    else:
        folder = params.root_path(params.paths.labeled)
        texts = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False)["text"]
                           for f in sorted(folder.glob("*.csv"))]).tolist()
        source = "labeled data (background corpus absent)"
    # Posts go one per line into the benchmark file: flatten any line breaks inside a post.
    texts = [t.replace("\r", " ").replace("\n", " ") for t in texts]
    out = (texts * (n // len(texts) + 1))[:n]
    return out, f"{source}, {n:,} posts, {sum(map(len, out)):,} characters"


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


def run_predict(model: Path, posts_file: Path, *args: str) -> dict:
    """Run the real CLI once; wall time, its own load and scoring times (from its log), and peak memory."""
    command = [sys.executable, "-m", "pipeline.predict", "--model", str(model), "--input", str(posts_file),
               "--output", os.devnull, "--format", "csv", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = PeakMemory(process.pid)
    _, err = process.communicate()
    wall = time.perf_counter() - started
    peak = memory.stop()
    log = err.decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"predict failed:\n{log}")
    load = float(re.search(r"loaded in ([\d.]+) s", log).group(1))
    rows, total = re.search(r"(\d+) rows in ([\d.]+) s", log).groups()
    return {"wall_s": wall, "load_s": load, "scoring_s": float(total) - load, "rows": int(rows), "peak_mb": peak}


def raw_jieba(texts: list[str]) -> dict:
    """The floor every jieba pipeline pays: jieba.lcut over the posts, after jieba's dictionary is loaded."""
    cache = ROOT / ".cache" / "jieba"  # the project's cache folder, never jieba's default /tmp/jieba.cache
    cache.mkdir(parents=True, exist_ok=True)
    code = ("import sys, time, jieba, logging; jieba.setLogLevel(logging.WARNING);"
            f"jieba.dt.tmp_dir = {str(cache)!r}; jieba.initialize();"
            "texts = sys.stdin.read().split('\\n'); t = time.perf_counter();"
            "[jieba.lcut(x) for x in texts]; print(time.perf_counter() - t)")
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    memory = PeakMemory(process.pid)
    out, _ = process.communicate("\n".join(texts).encode("utf-8"))
    return {"scoring_s": float(out), "peak_mb": memory.stop(), "rows": len(texts)}


def start_up(model: Path) -> float:
    """Process start to first prediction: one post on the command line."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.predict", "--model", str(model), "-q", "一条微博"], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def with_backend(model_path: Path, backend: str, folder: Path) -> Path:
    """The same trained model with its segmenter switched (and a card that matches the new file)."""
    import joblib

    from pipeline import files
    from pipeline.model import card_path, load_model

    model = load_model(model_path)
    model.pipeline.set_params(segment__backend=backend)
    out = folder / f"model-{backend}.joblib"
    joblib.dump(model.pipeline, out)
    card = dict(model.card, model={**model.card["model"], "sha256": files.sha256_file(out)})
    card["segmenter"] = {**card["segmenter"], "backend": backend}
    card_path(out).write_text(json.dumps(card), encoding="utf-8")
    return out


def start_up_parts(model: Path) -> str:
    """Where start-up goes, measured in a fresh process: imports, model load, first prediction."""
    code = ("import sys, time; t0 = time.perf_counter();"
            "import numpy, scipy.sparse, pandas; t1 = time.perf_counter();"
            "import sklearn.pipeline, sklearn.calibration, sklearn.linear_model; t2 = time.perf_counter();"
            f"sys.path.insert(0, {str(ROOT)!r}); from pipeline.model import load_model;"
            f"model = load_model({str(model)!r}); t3 = time.perf_counter();"
            "model.predict_proba(['一条微博']); t4 = time.perf_counter();"
            "print(f'numpy+scipy+pandas imports {t1 - t0:.2f} s, scikit-learn imports {t2 - t1:.2f} s, '"
            "f'model load {t3 - t2:.2f} s, first prediction (dictionary, OpenCC) {t4 - t3:.2f} s')")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()


def _median(runs: list[dict]) -> dict:
    """The run with the median scoring time (its wall and load times with it); the highest peak memory."""
    middle = sorted(runs, key=lambda r: r["scoring_s"])[len(runs) // 2]
    return {**middle, "peak_mb": max(r["peak_mb"] for r in runs)}


def throughput(args) -> None:
    model = ROOT / "models" / "model.joblib"
    texts, described = load_posts(args.posts)
    chars = sum(map(len, texts))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        posts_file = folder / "posts.txt"
        posts_file.write_text("\n".join(texts) + "\n", encoding="utf-8")
        print(f"posts: {described}; {os.cpu_count()} cores; each setting run {args.repeat} times, interleaved, "
              "median shown")
        card = json.loads((ROOT / "models" / "model_card.json").read_text(encoding="utf-8"))
        other = "rjieba" if card["segmenter"]["backend"] == "jieba" else "jieba"
        swapped = with_backend(model, other, folder)
        settings = {
            "raw jieba.lcut": lambda: raw_jieba(texts),
            "predict --jobs 1": lambda: run_predict(model, posts_file, "--jobs", "1"),
            "predict --jobs 2": lambda: run_predict(model, posts_file, "--jobs", "2"),
            f"predict --jobs 1, {other} backend": lambda: run_predict(swapped, posts_file, "--jobs", "1"),
            f"predict --jobs 2, {other} backend": lambda: run_predict(swapped, posts_file, "--jobs", "2"),
        }
        # Interleaved rounds, so a slow spell of this shared machine hits every setting alike.
        runs: dict[str, list[dict]] = {name: [] for name in settings}
        for _ in range(args.repeat):
            for name, measure in settings.items():
                runs[name].append(measure())
        results = {name: _median(r) for name, r in runs.items()}
        base = len(texts) / results["raw jieba.lcut"]["scoring_s"]
        print(f"\n{'':38s} {'posts/s':>9s} {'chars/s':>10s} {'x raw jieba':>11s} {'wall s':>7s} "
              f"{'load s':>7s} {'peak MB':>8s}")
        for name, r in results.items():
            rate = len(texts) / r["scoring_s"]
            wall = "" if "wall_s" not in r else f"{r['wall_s']:7.1f}"
            load = "" if "load_s" not in r else f"{r['load_s']:7.2f}"
            print(f"{name:38s} {rate:9,.0f} {chars / r['scoring_s']:10,.0f} {rate / base:11.2f} {wall:>7s} "
                  f"{load:>7s} {r['peak_mb']:8.0f}")
        one, two = results["predict --jobs 1"], results["predict --jobs 2"]
        print(f"\n--jobs 2 over --jobs 1: {one['scoring_s'] / two['scoring_s']:.2f}x in the scoring phase, "
              f"{one['wall_s'] / two['wall_s']:.2f}x over the whole run")
        print(f"rows scored (each run): {one['rows']:,}; scoring phase = after the model is loaded")
        startups = sorted(start_up(model) for _ in range(3))
        print(f"start-up, process start to first prediction (median of 3): {startups[1]:.2f} s "
              f"({card['segmenter']['backend']} backend); with {other}: {start_up(swapped):.2f} s")
        print(f"start-up parts ({card['segmenter']['backend']}): {start_up_parts(model)}")
        print(f"start-up parts ({other}): {start_up_parts(swapped)}")


def memory(args) -> None:
    model = ROOT / "models" / "model.joblib"
    texts, described = load_posts(min(args.posts, 200_000))
    n = args.big
    with tempfile.TemporaryDirectory() as tmp:
        posts_file = Path(tmp) / "big.txt"
        with open(posts_file, "w", encoding="utf-8") as out:
            for i in range(n):
                out.write(texts[i % len(texts)])
                out.write("\n")
        size = posts_file.stat().st_size / 1e6
        print(f"memory: {n:,} posts ({size:,.0f} MB file) cycled from {described.split(',')[0]}")
        small = run_predict(model, _head(posts_file, 100_000), "--jobs", "2")
        big = run_predict(model, posts_file, "--jobs", "2")
        print(f"peak memory (PSS, all processes): {small['peak_mb']:.0f} MB for 100,000 posts, "
              f"{big['peak_mb']:.0f} MB for {n:,} posts; {big['rows'] / big['scoring_s']:,.0f} posts/s, "
              f"{big['wall_s']:.0f} s in all")


def _head(path: Path, n: int) -> Path:
    out = path.with_name("head.txt")
    with open(path, encoding="utf-8") as src, open(out, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i == n:
                break
            dst.write(line)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("throughput", "memory", "all"), default="throughput")
    parser.add_argument("--posts", type=int, default=120_000, help="posts for the throughput runs")
    parser.add_argument("--big", type=int, default=2_000_000, help="posts for the memory run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each throughput setting (median shown)")
    args = parser.parse_args()
    if not (ROOT / "models" / "model.joblib").exists():
        raise SystemExit("no trained model: run `make repro` first")
    if args.mode in ("throughput", "all"):
        throughput(args)
    if args.mode in ("memory", "all"):
        memory(args)


if __name__ == "__main__":
    main()
