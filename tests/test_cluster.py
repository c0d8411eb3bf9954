"""predict --cluster on a real LocalCluster of two worker processes: the parts equal local predict's output.

predict runs in-process (the ``predict_run`` fixture); the cluster's two workers are real processes.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

pytest.importorskip("distributed", reason="predict --cluster needs the dask extra: pip install -e '.[dask]'")

from pipeline.cluster import MANIFEST, SUCCESS  # noqa: E402

POSTS = ["我决定参选本区人大代表，请大家联名推荐", "又被国保约去喝茶了", "", "周末约了老同学去茶馆喝茶",
         "警方提醒：谨防电信诈骗", "本人参选街道人大代表，恳请选民支持"]


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, each with a nanny that restarts it if it dies; shared by the tests of this file."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.CRITICAL) as local, Client(local) as client:
        yield client


def frame(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{i:07d}" for i in range(start, start + n)],
                         "text": [POSTS[i % len(POSTS)] + f" {i}" for i in range(start, start + n)],
                         "note": [f"n, {i}" for i in range(start, start + n)]}).astype(str)


def write(data: pd.DataFrame, path: Path) -> Path:
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        data.to_parquet(path, index=False)
    elif name.endswith(".jsonl"):
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data.to_dict("records"))
        data_bytes = lines.encode("utf-8")
        path.write_bytes(gzip.compress(data_bytes) if path.name.endswith(".gz") else data_bytes)
    elif name.endswith(".txt"):
        path.write_text("".join(t + "\n" for t in data["text"]), encoding="utf-8")
    else:
        data.to_csv(path, index=False, compression="gzip" if path.name.endswith(".gz") else None)
    return path


def local(predict_run, source: Path, target: Path, *options: str) -> bytes:
    result = predict_run("--input", source, "--output", target, "--jobs", "1", *options)
    assert result.code == 0, result.err
    return target.read_bytes()


def on_cluster(predict_run, client, source: Path, target: Path, *options: str):
    return predict_run("--cluster", client.scheduler.address, "--input", source, "--output", target, *options)


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """Five partitions in five formats: 0 rows, 1 row, and a few chunks' worth."""
    folder = tmp_path_factory.mktemp("mixed")
    write(frame(0), folder / "a-empty.parquet")
    write(frame(1, 100), folder / "b-one.csv")
    write(frame(23, 200), folder / "c.parquet")
    write(frame(17, 300), folder / "d.jsonl.gz")
    write(frame(9, 400), folder / "e.txt")
    return folder


@pytest.mark.parametrize("fmt, pattern, options", [
    ("parquet", "", ()), ("csv", "", ()),
    ("jsonl", "", ("--explain", "2", "--threshold", "candidacy=0.3")),
    ("jsonl", "[a-e]*", ("--only-flagged", "--explain", "1"))])
def test_every_part_equals_local_predict_of_its_file(cluster, predict_run, mixed, tmp_path, fmt, pattern,
                                                     options):
    out = tmp_path / "scored"
    source = mixed / pattern if pattern else mixed
    result = on_cluster(predict_run, cluster, source, out, "--format", fmt, "--chunk-size", "5", *options)
    assert result.code == 0, result.err
    sources = sorted(mixed.glob(pattern or "*"))
    entries = manifest(out)["parts"]
    assert manifest(out)["complete"] and (out / SUCCESS).exists()
    assert [e["input"] for e in entries] == [str(s) for s in sources]
    for n, (source, entry) in enumerate(zip(sources, entries, strict=True)):
        part = out / f"part-{n:05d}.{fmt}"
        expected = local(predict_run, source, tmp_path / f"local-{n}.{fmt}", "--format", fmt, "--chunk-size",
                         "5", *options)
        assert part.read_bytes() == expected, source.name
        written = pq.read_metadata(part).num_rows if fmt == "parquet" else None
        assert entry["written"] == (written if written is not None else entry["written"])
    assert [e["rows"] for e in entries] == [0, 1, 23, 17, 9][-len(entries):]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


def test_summary_is_aggregated_over_all_parts(cluster, predict_run, tmp_path):
    whole = write(pd.concat([frame(1, 100), frame(23, 200), frame(17, 300)]), tmp_path / "whole.csv")
    parts = tmp_path / "parts"
    parts.mkdir()
    for name, data in [("a.csv", frame(1, 100)), ("b.csv", frame(23, 200)), ("c.csv", frame(17, 300))]:
        write(data, parts / name)
    result = predict_run("--input", whole, "--output", tmp_path / "whole.out.csv", "--summary")
    assert result.code == 0, result.err
    expected = result.err.splitlines()
    result = on_cluster(predict_run, cluster, parts, tmp_path / "scored", "--summary")
    assert result.code == 0, result.err
    found = result.err.splitlines()
    assert found[0] == expected[0] == "summary: 41 rows read, 41 scored, 0 unreadable"
    assert [line for line in found if "flagged (" in line] == [line for line in expected if "flagged (" in line]


def test_a_bad_file_fails_in_one_line_naming_it(cluster, predict_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write(frame(5), folder / "a.csv")
    bad = folder / "b.jsonl"
    bad.write_text('{"id": "1", "text": "又被国保约去喝茶了"}\n{"id": 2, "text": \n', encoding="utf-8")
    out = tmp_path / "scored"
    result = on_cluster(predict_run, cluster, folder, out, "--format", "jsonl")
    assert result.code == 2
    err = result.err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "line 2" in err[0], err
    assert not (out / SUCCESS).exists() and not manifest(out)["complete"]

    # with --on-error mark the row comes out marked, as local predict marks it
    assert on_cluster(predict_run, cluster, folder, out, "--format", "jsonl", "--on-error", "mark").code == 0
    expected = local(predict_run, bad, tmp_path / "local.jsonl", "--on-error", "mark")
    assert (out / "part-00001.jsonl").read_bytes() == expected
    assert json.loads(expected.decode().splitlines()[1])["error"].startswith("line 2")


def test_resume_rewrites_only_the_missing_parts(cluster, predict_run, mixed, tmp_path):
    out = tmp_path / "scored"
    assert on_cluster(predict_run, cluster, mixed, out).code == 0
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.glob("part-*")}
    (out / "part-00002.parquet").unlink()
    (out / SUCCESS).unlink()
    time.sleep(0.01)
    assert on_cluster(predict_run, cluster, mixed, out, "--resume").code == 0
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.glob("part-*")}
    assert {name: data for name, (data, _) in after.items()} == {name: data for name, (data, _) in before.items()}
    assert [name for name in after if after[name][1] != before[name][1]] == ["part-00002.parquet"]
    assert (out / SUCCESS).exists() and manifest(out)["rows"] == 50
    # a part made under other options cannot be resumed
    refused = on_cluster(predict_run, cluster, mixed, out, "--resume", "--threshold", "candidacy=0.2")
    assert refused.code == 2 and "other settings" in refused.err


def test_a_killed_worker_leaves_the_output_exactly_complete(cluster, predict_run, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = [frame(1500, 10_000 * n) for n in range(10)]
    for n, data in enumerate(frames):
        write(data, folder / f"{n:02d}.csv")
    whole = write(pd.concat(frames), tmp_path / "whole.csv")
    out = tmp_path / "scored"
    codes = []
    worker = threading.Thread(target=lambda: codes.append(
        on_cluster(predict_run, cluster, folder, out, "--format", "csv", "--chunk-size", "100").code))
    worker.start()
    deadline = time.monotonic() + 60
    while not any(out.glob("part-*.csv")) and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = cluster.run(os.getpid)
    busy = [address for address, keys in cluster.processing().items() if keys]
    os.kill(pids[busy[0] if busy else next(iter(pids))], 9)
    unfinished = 10 - len(list(out.glob("part-*.csv")))
    worker.join(timeout=90)
    assert codes == [0] and unfinished > 0
    expected = local(predict_run, whole, tmp_path / "whole.out.csv", "--chunk-size", "100").decode()
    header, *rows = expected.splitlines(keepends=True)
    parts = [(out / f"part-{n:05d}.csv").read_text(encoding="utf-8") for n in range(10)]
    assert all(part.startswith(header) for part in parts)
    assert "".join(part[len(header):] for part in parts) == "".join(rows)
    assert manifest(out)["rows"] == 15_000 and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
