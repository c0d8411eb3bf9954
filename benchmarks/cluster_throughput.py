"""predict --cluster against local predict --jobs 2, measured in the same run on this machine.

    python benchmarks/cluster_throughput.py                        # everything (the 2,000,000-post run is long)
    python benchmarks/cluster_throughput.py --big-posts 300000     # a shorter memory run

1. The background corpus (120,000 posts) split into 8 Parquet files: ``--cluster local:2`` against ``--jobs 2``
   on the same posts in one file; throughput after the model is loaded, and each process's peak memory.
2. The same posts in 8 and in 200 files, scored on a scheduler started apart (``dask scheduler``) with two
   ``dask worker`` processes: the scheduler's peak memory, which must not grow with the number of parts.
3. ``--big-posts`` posts (the corpus repeated) in 40 files on the same scheduler: the workers' peak memory.

Memory is the proportional set size (PSS) of each process, sampled every half second.
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
CORPUS = ROOT.parent / "shared" / "corpora" / "weibo_background" / "posts.csv"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from predict_throughput import PeakMemory  # noqa: E402


class PeakPerProcess(PeakMemory):
    """Peak PSS of every process of a tree, by pid, with its command line."""

    def __init__(self, pid: int):
        self.by_pid: dict[int, float] = {}
        self.commands: dict[int, str] = {}
        super().__init__(pid)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in self._tree():
                kb = self._pss_kb(pid)
                total += kb
                self.by_pid[pid] = max(self.by_pid.get(pid, 0), kb / 1024)
                if pid not in self.commands:
                    try:
                        self.commands[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    except OSError:
                        self.commands[pid] = ""
            self.peak = max(self.peak, total)
            time.sleep(0.5)

    def workers(self) -> list[float]:
        return [mb for pid, mb in self.by_pid.items() if pid != self.pid and "spawn_main" in self.commands[pid]
                and "resource_tracker" not in self.commands[pid]]


def split(texts, ids, folder: Path, parts: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(texts) // parts)
    for n in range(parts):
        table = pa.table({"id": ids[n * size:(n + 1) * size], "text": texts[n * size:(n + 1) * size]})
        pq.write_table(table, folder / f"posts-{n:04d}.parquet")
    return folder


def predict(*args: str) -> tuple[dict, PeakPerProcess]:
    command = [sys.executable, "-m", "pipeline.predict", *args]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    memory = PeakPerProcess(process.pid)
    _, err = process.communicate()
    wall = time.perf_counter() - started
    memory.stop()
    log = err.decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"predict failed:\n{log}")
    rows, total = re.search(r"(\d+) rows in (?:\d+ parts in )?([\d.]+) s", log).groups()
    speed = float(re.search(r"([\d.]+) rows/s after the model was loaded", log).group(1))
    return {"wall_s": round(wall, 1), "rows": int(rows), "total_s": float(total), "rows_per_s": speed}, memory


class Scheduler:
    """``dask scheduler`` and ``dask worker --nworkers 2`` started apart, as on a real cluster."""

    def __init__(self, folder: Path):
        dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        self.file = folder / "scheduler.json"
        self.scheduler = subprocess.Popen([*dask, "--scheduler-file", str(self.file), "--port", "0",
                                           "--dashboard-address", ":0"], cwd=ROOT, stderr=subprocess.DEVNULL)
        while not self.file.exists():
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                         str(self.file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                        cwd=ROOT, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"})
        from distributed import Client

        with Client(self.address) as client:
            client.wait_for_workers(2, timeout=120)
        self.scheduler_memory = PeakPerProcess(self.scheduler.pid)
        self.worker_memory = PeakPerProcess(self.workers.pid)

    def reset(self) -> None:
        for sampler in (self.scheduler_memory, self.worker_memory):
            sampler.stop()
        self.scheduler_memory = PeakPerProcess(self.scheduler.pid)
        self.worker_memory = PeakPerProcess(self.workers.pid)

    def close(self) -> None:
        self.scheduler_memory.stop()
        self.worker_memory.stop()
        for process in (self.workers, self.scheduler):
            process.terminate()
            process.wait(timeout=60)


def same_rows(local: Path, parts: Path) -> bool:
    """Whether the cluster's parts, read in order, hold exactly the rows and columns of local predict's output."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    whole = pq.read_table(local)
    scored = pa.concat_tables([pq.read_table(part) for part in sorted(parts.glob("part-*.parquet"))])
    return whole.column_names == scored.column_names and whole.to_pylist() == scored.to_pylist()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "models" / "model.npz"))
    parser.add_argument("--big-posts", type=int, default=2_000_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["throughput", "scheduler", "big"])
    args = parser.parse_args(argv)
    if not CORPUS.is_file():
        print(f"skipped: the background corpus is not at {CORPUS}; these figures are measured on it")
        return
    import pyarrow.csv as pcsv

    table = pcsv.read_csv(CORPUS, convert_options=pcsv.ConvertOptions(column_types={"id": "string",
                                                                                     "text": "string"}))
    ids, texts = table.column("id").to_pylist(), table.column("text").to_pylist()
    figures: dict = {"posts": len(texts)}
    threading.current_thread().name = "benchmark"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        eight = split(texts, ids, tmp / "eight", 8)
        whole = split(texts, ids, tmp / "whole", 1) / "posts-0000.parquet"
        common = ("--model", args.model, "--format", "parquet")
        if "throughput" not in args.skip:
            local, local_memory = predict(*common, "--input", str(whole), "--output", str(tmp / "local.parquet"),
                                          "--jobs", "2")
            cluster, cluster_memory = predict(*common, "--input", str(eight), "--output", str(tmp / "scored"),
                                              "--cluster", "local:2")
            figures["local_jobs2"] = {**local, "peak_mb_total": round(local_memory.peak / 1024)}
            figures["cluster_local2"] = {**cluster, "peak_mb_total": round(cluster_memory.peak / 1024),
                                         "client_and_scheduler_peak_mb": round(cluster_memory.by_pid[
                                             cluster_memory.pid]),
                                         "worker_peak_mb": [round(mb) for mb in cluster_memory.workers()]}
            figures["throughput_ratio"] = round(cluster["rows_per_s"] / local["rows_per_s"], 3)
            figures["cluster_output_equals_local"] = same_rows(tmp / "local.parquet", tmp / "scored")
            print(json.dumps(figures, indent=1), flush=True)
        if "scheduler" in args.skip and "big" in args.skip:
            return
        scheduler = Scheduler(tmp)
        try:
            if "scheduler" not in args.skip:
                for parts in (8, 200):
                    folder = split(texts, ids, tmp / f"in-{parts}", parts)
                    scheduler.reset()
                    run, _ = predict(*common, "--input", str(folder), "--output", str(tmp / f"out-{parts}"),
                                     "--cluster", scheduler.address)
                    figures[f"scheduler_{parts}_parts"] = {
                        **run, "scheduler_peak_mb": round(scheduler.scheduler_memory.peak / 1024),
                        "worker_peak_mb": [round(mb) for mb in scheduler.worker_memory.workers()]}
                    print(json.dumps(figures[f"scheduler_{parts}_parts"]), flush=True)
            if "big" not in args.skip:
                repeat = -(-args.big_posts // len(texts))
                big_texts = (texts * repeat)[:args.big_posts]
                big_ids = [f"{n:09d}" for n in range(args.big_posts)]
                folder = split(big_texts, big_ids, tmp / "big", 40)
                del big_texts, big_ids
                scheduler.reset()
                run, _ = predict(*common, "--input", str(folder), "--output", str(tmp / "out-big"),
                                 "--cluster", scheduler.address)
                figures["big"] = {**run, "scheduler_peak_mb": round(scheduler.scheduler_memory.peak / 1024),
                                  "worker_peak_mb": [round(mb) for mb in scheduler.worker_memory.workers()]}
                print(json.dumps(figures["big"]), flush=True)
        finally:
            scheduler.close()
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
