"""predict through its command line, in-process: inputs, outputs, order, options, and the Python API.

Each test calls predict's entry function with an argv (the ``predict_run`` fixture); the real-process smoke tests
(``python -m``, the console script, signals, ``| head``) are in tests/test_predict_signals.py.
"""

import csv
import gzip
import io
import json
import os
import time

import pandas as pd
import pytest

POSTS = ["我决定参选本区人大代表，请大家联名推荐", "又被国保约去喝茶了", "", "周末约了老同学去茶馆喝茶",
         "警方提醒：谨防电信诈骗"]
PREDICTED = ["candidacy_prob", "candidacy", "police_warning_prob", "police_warning"]


def ok(result) -> bytes:
    assert result.code == 0, result.err
    return result.out


def test_posts_as_arguments_give_one_json_line_each(predict_run, tiny_model):
    rows = predict_run(*POSTS[:2]).rows()
    assert [r["text"] for r in rows] == POSTS[:2]
    expected = tiny_model.predict_proba(POSTS[:2])
    for row, proba in zip(rows, expected, strict=True):
        assert list(row) == ["text", *PREDICTED]
        assert [row["candidacy_prob"], row["police_warning_prob"]] == [round(p, 6) for p in proba.tolist()]
        assert row["candidacy"] == int(proba[0] >= tiny_model.thresholds["candidacy"])


def test_stdin_lines_are_posts_and_empty_lines_are_scored(predict_run):
    rows = predict_run(stdin="\n".join(POSTS) + "\n").rows()
    assert [r["text"] for r in rows] == POSTS


def test_nothing_to_score_from_a_terminal(predict_run):
    from tests.conftest import TerminalStdin

    result = predict_run(stdin=TerminalStdin(io.BytesIO(b""), encoding="utf-8"))
    assert result.code == 2 and result.err.startswith("error: nothing to score"), result.err


def test_csv_in_csv_out_keeps_columns_and_order(predict_run, tmp_path):
    source = tmp_path / "in.csv"
    ids = ["007", "1.50", "x", "", "42"]
    with open(source, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "note"])
        for i, text in zip(ids, POSTS, strict=True):
            writer.writerow([i, text, f"note, {i}"])
    out = tmp_path / "out.csv"
    ok(predict_run("--input", source, "--output", out))
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["id", "text", "note", *PREDICTED]
    assert frame["id"].tolist() == ids and frame["text"].tolist() == POSTS
    assert frame["note"].tolist() == [f"note, {i}" for i in ids]


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 5, 6])
def test_chunk_boundaries_keep_every_row_in_order(predict_run, tmp_path, chunk_size):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(POSTS) + "\n", encoding="utf-8")
    whole = predict_run(*POSTS).rows()
    rows = predict_run("--input", source, "--chunk-size", chunk_size, "--jobs", "1").rows()
    assert rows == whole


@pytest.mark.parametrize("jobs, fmt", [("2", "jsonl"), ("3", "jsonl"), ("2", "csv")])
def test_more_jobs_give_the_same_output_as_one(predict_run, tmp_path, jobs, fmt):
    # 9 chunks: some scored by forked workers, the rest (once the workers have two queued) by this process.
    source = tmp_path / "in.txt"
    source.write_text("\n".join(POSTS * 7) + "\n", encoding="utf-8")
    args = ("--input", source, "--chunk-size", "4", "--format", fmt)
    one = ok(predict_run(*args, "--jobs", "1"))
    more = ok(predict_run(*args, "--jobs", jobs))
    rows = ([json.loads(line) for line in one.decode("utf-8").splitlines()] if fmt == "jsonl"
            else pd.read_csv(io.BytesIO(one), keep_default_na=False).to_dict("records"))
    assert one == more and [r["text"] for r in rows] == POSTS * 7


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl", "txt", "parquet", "csv.gz", "jsonl.gz", "txt.gz"])
def test_every_input_format(predict_run, tmp_path, suffix):
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(len(POSTS))], "text": POSTS})
    path = tmp_path / f"in.{suffix}"
    kind = suffix.removesuffix(".gz")
    if kind == "csv":
        payload = frame.to_csv(index=False).encode()
    elif kind == "tsv":
        payload = frame.to_csv(index=False, sep="\t").encode()
    elif kind == "jsonl":
        payload = frame.to_json(orient="records", lines=True, force_ascii=False).encode()
    elif kind == "txt":
        payload = ("\n".join(POSTS) + "\n").encode()
    else:
        frame.to_parquet(path, index=False)
        payload = None
    if payload is not None:
        path.write_bytes(gzip.compress(payload) if suffix.endswith(".gz") else payload)
    out = tmp_path / "out.jsonl"
    ok(predict_run("--input", path, "--output", out))
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == POSTS
    if kind != "txt":
        assert [r["id"] for r in rows] == frame["id"].tolist()


@pytest.mark.parametrize("name, fmt", [("out.csv", "csv"), ("out.tsv", "tsv"), ("out.jsonl", "jsonl"),
                                       ("out.parquet", "parquet"), ("out.csv.gz", "csv")])
def test_output_format_follows_the_extension(predict_run, tmp_path, name, fmt):
    out = tmp_path / name
    ok(predict_run(*POSTS, "--output", out))
    if fmt == "parquet":
        frame = pd.read_parquet(out)
    elif fmt == "jsonl":
        frame = pd.DataFrame([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()])
    else:
        frame = pd.read_csv(out, sep="\t" if fmt == "tsv" else ",", dtype={"text": str}, keep_default_na=False)
    assert frame["text"].tolist() == POSTS and list(frame.columns) == ["text", *PREDICTED]


def test_format_option_writes_csv_to_stdout(predict_run):
    out = ok(predict_run(*POSTS[:2], "--format", "csv")).decode()
    assert out.splitlines()[0] == "text," + ",".join(PREDICTED) and len(out.splitlines()) == 3


def test_parquet_to_stdout_is_refused(predict_run):
    result = predict_run("好", "--format", "parquet")
    assert result.code == 2 and "Parquet output needs a file" in result.err


def test_explain_names_the_ngrams_behind_each_label(predict_run):
    rows = predict_run(POSTS[0], "--explain", "3").rows()
    why = rows[0]["candidacy_why"].split("|")
    assert 1 <= len(why) <= 3 and all(why)
    assert list(rows[0]) == ["text", "candidacy_prob", "candidacy", "candidacy_why", "police_warning_prob",
                             "police_warning", "police_warning_why"]


def test_threshold_override(predict_run):
    low = predict_run(*POSTS, "--threshold", "candidacy=0").rows()
    assert all(r["candidacy"] == 1 for r in low)
    high = predict_run(*POSTS, "-t", "candidacy=1", "-t", "police_warning=1").rows()
    assert all(r["candidacy"] == 0 and r["police_warning"] == 0 for r in high)


def test_only_flagged_keeps_ids_of_flagged_rows(predict_run, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(POSTS)), encoding="utf-8")
    everything = predict_run("--input", source).rows()
    flagged = predict_run("--input", source, "--only-flagged").rows()
    expected = [r for r in everything if r["candidacy"] or r["police_warning"]]
    assert flagged == expected and 0 < len(expected) < len(POSTS)


def test_summary_counts_flags_and_estimates_prevalence(predict_run):
    result = predict_run(*POSTS, "--summary", "-t", "candidacy=0")
    assert result.code == 0, result.err
    assert "summary: 5 rows read, 5 scored, 0 unreadable" in result.err
    assert "candidacy: 5 flagged (100.000%)" in result.err
    assert "adjusted count: n/a (threshold overridden" in result.err  # candidacy: the card's rates no longer hold
    assert "police_warning:" in result.err and "adjusted count: " in result.err and "95%" in result.err


def test_summary_of_no_rows(predict_run):
    result = predict_run("--summary", stdin="")
    assert result.code == 0 and result.out == b"", result.err
    assert "summary: 0 rows read, 0 scored, 0 unreadable" in result.err


def test_python_api_matches_the_cli(predict_run, tiny_model):
    frame = tiny_model.predict(POSTS, explain=2)
    rows = predict_run(*POSTS, "--explain", "2").rows()
    assert list(frame.columns) == list(rows[0])
    assert frame.to_dict("records") == rows
    assert tiny_model.predict([]).empty


def test_max_chars_marks_the_truncated_rows(predict_run, tiny_model):
    rows = predict_run(POSTS[0], "好", "--max-chars", "4").rows()
    assert [r["truncated"] for r in rows] == [1, 0]
    assert rows[0]["candidacy_prob"] == tiny_model.predict([POSTS[0][:4]]).loc[0, "candidacy_prob"]


def test_empty_posts_get_low_probabilities(tiny_model):
    frame = tiny_model.predict(["", "   ", "\u200b"])
    assert (frame[["candidacy", "police_warning"]] == 0).all().all()


def test_an_error_in_a_workers_chunk_stops_the_run_in_one_line(predict_run, tmp_path):
    # Line 15's field named like an output column is refused where its chunk is laid out (a worker, or here).
    source = tmp_path / "in.jsonl"
    rows = [{"id": i, "text": POSTS[i % 5]} for i in range(20)]
    rows[14]["candidacy"] = "mine"
    source.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = predict_run("--input", source, "--output", out, "--chunk-size", "2", "--jobs", "2")
    assert result.code == 2 and result.err.splitlines() == [
        "error: line 15 has a column 'candidacy', which predict writes: rename it (output columns: "
        "candidacy_prob, candidacy, police_warning_prob, police_warning)"], result.err
    assert list(tmp_path.iterdir()) == [source]


# --- the ordered fork scheduler ------------------------------------------------------------------------------

def test_ordered_gives_every_result_in_order_from_workers_and_this_process():
    from pipeline.predict.parallel import ordered

    here = os.getpid()
    done = list(ordered(range(200), 3, lambda x: (time.sleep(0.005), x * x, os.getpid())[1:]))
    assert [value for value, _ in done] == [x * x for x in range(200)]
    workers = {pid for _, pid in done} - {here}
    assert len(workers) == 2 and any(pid == here for _, pid in done)
    assert not [pid for pid in workers if alive(pid)]


def test_ordered_raises_a_workers_exception_with_its_traceback():
    from pipeline.predict.parallel import RemoteTraceback, ordered

    here = os.getpid()

    def work(x):
        if os.getpid() != here:
            raise ValueError(f"bad item {x}")
        return x

    with pytest.raises(ValueError, match="bad item") as raised:
        list(ordered(range(10), 2, work))
    assert isinstance(raised.value.__cause__, RemoteTraceback) and "in work" in str(raised.value.__cause__)


def test_a_worker_that_dies_is_a_one_line_error():
    from pipeline.errors import UserError
    from pipeline.predict.parallel import ordered

    here = os.getpid()

    def work(x):
        if os.getpid() != here:
            os._exit(3)  # as a worker killed by the kernel for want of memory
        return x

    with pytest.raises(UserError, match="ended unexpectedly"):
        list(ordered(range(10), 2, work))


def test_stopping_early_kills_the_workers():
    from pipeline.predict.parallel import ordered

    seen = []
    results = ordered(range(10_000), 3, lambda x: (time.sleep(0.001), os.getpid())[1])
    for pid in results:
        seen.append(pid)
        if len(set(seen) - {os.getpid()}) == 2:
            break
    results.close()
    assert not [pid for pid in set(seen) - {os.getpid()} if alive(pid)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
