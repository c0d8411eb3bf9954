"""predict through its real command line: inputs, outputs, order, options, and the Python API."""

import csv
import gzip
import io
import json

import pandas as pd
import pytest

from pipeline import load_model

POSTS = ["我决定参选本区人大代表，请大家联名推荐", "又被国保约去喝茶了", "", "周末约了老同学去茶馆喝茶",
         "警方提醒：谨防电信诈骗"]


def predict(cli, model, *args, stdin=None):
    result = cli("-m", "pipeline.predict", "--model", str(model), *args, stdin=stdin)
    assert result.returncode == 0, result.stderr.decode()
    return result


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def test_posts_as_arguments_give_one_json_line_each(cli, tiny_model_path):
    rows = jsonl(predict(cli, tiny_model_path, *POSTS[:2]).stdout)
    assert [r["text"] for r in rows] == POSTS[:2]
    for row in rows:
        assert set(row) == {"text", "candidacy_prob", "candidacy", "police_warning_prob", "police_warning"}
        assert 0 <= row["candidacy_prob"] <= 1 and row["candidacy"] in (0, 1)


def test_stdin_lines_are_posts_and_empty_lines_are_scored(cli, tiny_model_path):
    rows = jsonl(predict(cli, tiny_model_path, stdin="\n".join(POSTS) + "\n").stdout)
    assert [r["text"] for r in rows] == POSTS


def test_csv_in_csv_out_keeps_columns_and_order(cli, tiny_model_path, tmp_path):
    source = tmp_path / "in.csv"
    ids = ["007", "1.50", "x", "", "42"]
    with open(source, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "note"])
        for i, text in zip(ids, POSTS):
            writer.writerow([i, text, f"note, {i}"])
    out = tmp_path / "out.csv"
    predict(cli, tiny_model_path, "--input", str(source), "--output", str(out))
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["id", "text", "note", "candidacy_prob", "candidacy",
                                   "police_warning_prob", "police_warning"]
    assert frame["id"].tolist() == ids and frame["text"].tolist() == POSTS
    assert frame["note"].tolist() == [f"note, {i}" for i in ids]


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 5, 6])
def test_chunk_boundaries_keep_every_row_in_order(cli, tiny_model_path, tmp_path, chunk_size):
    source = tmp_path / "in.txt"
    source.write_text("\n".join(POSTS) + "\n", encoding="utf-8")
    rows = jsonl(predict(cli, tiny_model_path, "--input", str(source), "--chunk-size", str(chunk_size),
                         "--jobs", "1").stdout)
    assert [r["text"] for r in rows] == POSTS


@pytest.mark.parametrize("jobs, fmt", [("2", "jsonl"), ("3", "jsonl"), ("2", "csv")])
def test_more_jobs_give_the_same_output_as_one(cli, tiny_model_path, tmp_path, jobs, fmt):
    # 9 chunks: some scored by the workers, the rest (once the workers have two queued) by the main process.
    source = tmp_path / "in.txt"
    source.write_text("\n".join(POSTS * 7) + "\n", encoding="utf-8")
    args = ("--input", str(source), "--chunk-size", "4", "--format", fmt)
    one = predict(cli, tiny_model_path, *args, "--jobs", "1").stdout
    more = predict(cli, tiny_model_path, *args, "--jobs", jobs).stdout
    rows = jsonl(one) if fmt == "jsonl" else pd.read_csv(io.BytesIO(one)).to_dict("records")
    assert one == more and len(rows) == 35


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl", "txt", "parquet", "csv.gz", "jsonl.gz", "txt.gz"])
def test_every_input_format(cli, tiny_model_path, tmp_path, suffix):
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
    predict(cli, tiny_model_path, "--input", str(path), "--output", str(out))
    rows = jsonl(out.read_bytes())
    assert [r["text"] for r in rows] == POSTS
    if kind != "txt":
        assert [r["id"] for r in rows] == frame["id"].tolist()


@pytest.mark.parametrize("name, fmt", [("out.csv", "csv"), ("out.tsv", "tsv"), ("out.jsonl", "jsonl"),
                                       ("out.parquet", "parquet"), ("out.csv.gz", "csv")])
def test_output_format_follows_the_extension(cli, tiny_model_path, tmp_path, name, fmt):
    out = tmp_path / name
    predict(cli, tiny_model_path, *POSTS, "--output", str(out))
    if fmt == "parquet":
        frame = pd.read_parquet(out)
    elif fmt == "jsonl":
        frame = pd.DataFrame(jsonl(out.read_bytes()))
    else:
        frame = pd.read_csv(out, sep="\t" if fmt == "tsv" else ",", dtype={"text": str}, keep_default_na=False)
    assert frame["text"].tolist() == POSTS and "police_warning_prob" in frame.columns


def test_format_option_writes_csv_to_stdout(cli, tiny_model_path):
    out = predict(cli, tiny_model_path, *POSTS[:2], "--format", "csv").stdout.decode()
    assert out.splitlines()[0] == "text,candidacy_prob,candidacy,police_warning_prob,police_warning"


def test_explain_names_the_ngrams_behind_each_label(cli, tiny_model_path):
    rows = jsonl(predict(cli, tiny_model_path, POSTS[0], "--explain", "3").stdout)
    why = rows[0]["candidacy_why"].split("|")
    assert 1 <= len(why) <= 3 and all(why)
    assert "police_warning_why" in rows[0]


def test_threshold_override(cli, tiny_model_path):
    low = jsonl(predict(cli, tiny_model_path, *POSTS, "--threshold", "candidacy=0").stdout)
    assert all(r["candidacy"] == 1 for r in low)
    high = jsonl(predict(cli, tiny_model_path, *POSTS, "-t", "candidacy=1", "-t", "police_warning=1").stdout)
    assert all(r["candidacy"] == 0 and r["police_warning"] == 0 for r in high)


def test_only_flagged_keeps_ids_of_flagged_rows(cli, tiny_model_path, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(POSTS)), encoding="utf-8")
    everything = jsonl(predict(cli, tiny_model_path, "--input", str(source)).stdout)
    flagged = jsonl(predict(cli, tiny_model_path, "--input", str(source), "--only-flagged").stdout)
    expected = [r["id"] for r in everything if r["candidacy"] or r["police_warning"]]
    assert [r["id"] for r in flagged] == expected


def test_summary_counts_flags_and_estimates_prevalence(cli, tiny_model_path):
    result = predict(cli, tiny_model_path, *POSTS, "--summary", "-t", "candidacy=0")
    summary = result.stderr.decode()
    assert "summary: 5 rows read, 5 scored, 0 unreadable" in summary
    assert "candidacy: 5 flagged (100.000%)" in summary
    assert "adjusted count: n/a (threshold overridden" in summary  # candidacy: the card's rates no longer hold
    assert "police_warning:" in summary and "adjusted count: " in summary and "95%" in summary


def test_python_api_matches_the_cli(cli, tiny_model_path):
    model = load_model(tiny_model_path)
    frame = model.predict(POSTS)
    rows = jsonl(predict(cli, tiny_model_path, *POSTS).stdout)
    assert list(frame.columns) == list(rows[0])
    assert frame["candidacy_prob"].tolist() == [r["candidacy_prob"] for r in rows]
    assert model.predict([]).empty


def test_empty_posts_get_low_probabilities(tiny_model):
    frame = tiny_model.predict(["", "   ", "\u200b"])
    assert (frame[["candidacy", "police_warning"]] == 0).all().all()
