"""Issue 13, case by case: nothing lost, nothing altered, and one line with exit code 2 instead of a traceback.

Each test runs predict in-process (``pipeline.predict.cli`` with an argv) on the tiny model, and reads the output
back with the standard readers a user would use: Python's csv, pandas and json.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import stat
import threading

import pandas as pd
import pytest

import pipeline.model
from pipeline import model_file
from pipeline.errors import UserError

LABELS = ["candidacy", "police_warning"]
PREDICTED = ["candidacy_prob", "candidacy", "police_warning_prob", "police_warning"]


@pytest.fixture
def predict(predict_run):
    """Run predict in-process on the tiny model (loaded once per session); returns (exit code, stdout, stderr)."""

    def run(*args, **options) -> tuple[int, bytes, str]:
        result = predict_run(*args, **options)
        return result.code, result.out, result.err

    return run


def one_line_error(result, *fragments: str) -> str:
    code, _, err = result
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def ok(result) -> bytes:
    code, out, err = result
    assert code == 0, err
    return out


def read_csv_both(path, sep=","):
    """The output as Python's csv and pandas read it; both must agree."""
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=sep))
    frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    assert [list(frame.columns), *frame.to_numpy().tolist()] == rows
    return rows


# --- 1. a CR without LF in a CSV/TSV cell ----------------------------------------------------------------------

@pytest.mark.parametrize("fmt, sep", [("csv", ","), ("tsv", "\t")])
def test_1_carriage_returns_in_cells_are_quoted(predict, tmp_path, fmt, sep):
    source = tmp_path / f"in.{fmt}"
    cells = ["a\rb", "\r", "x\r\ny", "末尾\r", "\n"]
    with open(source, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=sep, lineterminator="\r\n")
        writer.writerow(["id", "text"])
        writer.writerows([[str(i), cell] for i, cell in enumerate(cells)])
    out = tmp_path / f"out.{fmt}"
    ok(predict("--input", source, "--output", out))
    rows = read_csv_both(out, sep)
    assert rows[0] == ["id", "text", *PREDICTED]
    assert [row[:2] for row in rows[1:]] == [[str(i), cell] for i, cell in enumerate(cells)]


# --- 2. a row with more fields than the header -----------------------------------------------------------------

def test_2_a_row_longer_than_the_header_is_refused_not_shifted(predict, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,又被喝茶了,extra\n2,好的,more\n", encoding="utf-8")
    one_line_error(predict("--input", source, "--format", "jsonl"), "line 2", "3 fields", "header has 2")


# --- 3. --output that is --input -------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "dotted"])
def test_3_output_that_is_the_input_is_refused(predict, tmp_path, how):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n1,又被喝茶了\n", encoding="utf-8")
    before = source.read_bytes()
    output = {"same": source, "symlink": tmp_path / "link.csv", "hardlink": tmp_path / "hard.csv",
              "dotted": tmp_path / "." / "in.csv"}[how]
    if how == "symlink":
        output.symlink_to(source)
    elif how == "hardlink":
        os.link(source, output)
    one_line_error(predict("--input", source, "--output", output), "is the input file")
    assert source.read_bytes() == before


# --- 4. --output that is a symbolic link, or a device ----------------------------------------------------------

def test_4_an_output_symlink_stays_a_link_to_the_new_output(predict, tmp_path):
    target = tmp_path / "real" / "scored.jsonl"
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "scored.jsonl"
    link.symlink_to(target)
    ok(predict("又被喝茶了", "--output", link))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text(encoding="utf-8"))["text"] == "又被喝茶了"
    assert sorted(p.name for p in target.parent.iterdir()) == ["scored.jsonl"]


def test_4_a_device_output_is_written_in_place_not_replaced(predict, tmp_path):
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    except PermissionError:
        pytest.skip("creating a device node needs root")
    link = tmp_path / "stdout.jsonl"
    link.symlink_to(device)
    ok(predict("又被喝茶了", "--output", link))
    assert stat.S_ISCHR(os.stat(device).st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "stdout.jsonl"]


# --- 5. input from a named pipe --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, payload", [("csv", "id,text\n1,又被喝茶了\n2,好的\n"),
                                          ("jsonl", '{"id": 1, "text": "又被喝茶了"}\n{"id": 2, "text": "好的"}\n')])
def test_5_a_fifo_is_read_once(predict, tmp_path, fmt, payload):
    fifo = tmp_path / f"posts.{fmt}"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text(payload, encoding="utf-8"), daemon=True)
    writer.start()
    # Without -q: the progress bar's row count must not read the pipe.
    out = ok(predict("--input", fifo, "--format", "jsonl", quiet=False))
    writer.join(timeout=10)
    assert [json.loads(line)["text"] for line in out.decode().splitlines()] == ["又被喝茶了", "好的"]


def test_5_a_fifo_gives_every_row(predict, tmp_path):
    fifo = tmp_path / "posts.jsonl"
    os.mkfifo(fifo)
    payload = "".join(json.dumps({"id": i, "text": "又被喝茶了"}) + "\n" for i in range(50))
    threading.Thread(target=lambda: fifo.write_text(payload, encoding="utf-8"), daemon=True).start()
    out = ok(predict("--input", fifo))
    assert [json.loads(line)["id"] for line in out.decode().splitlines()] == list(range(50))


# --- 6. disk full: see tests/test_predict_signals.py (a real tmpfs); here, a failing close ---------------------

def test_6_a_failed_close_keeps_the_previous_output(predict, tmp_path, monkeypatch):
    out = tmp_path / "scored.jsonl"
    out.write_text("previous complete output\n", encoding="utf-8")

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    one_line_error(predict("又被喝茶了", "--output", out), "cannot write", "No space left on device")
    assert out.read_text(encoding="utf-8") == "previous complete output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scored.jsonl"]


# --- 7. input columns named like output columns ----------------------------------------------------------------

@pytest.mark.parametrize("column, extra", [("candidacy", []), ("candidacy_prob", []), ("error", ["--on-error", "mark"]),
                                           ("police_warning_why", ["--explain", "2"])])
def test_7_input_columns_named_like_outputs_are_refused(predict, tmp_path, column, extra):
    source = tmp_path / "in.csv"
    source.write_text(f"id,text,{column}\n1,又被喝茶了,keep me\n", encoding="utf-8")
    one_line_error(predict("--input", source, "--format", "csv", *extra), repr(column), "rename it")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text(json.dumps({"id": 1, "text": "好", column: "keep me"}) + "\n", encoding="utf-8")
    for fmt in ("jsonl", "csv", "parquet"):
        one_line_error(predict("--input", jsonl, "--output", tmp_path / f"o.{fmt}", *extra), repr(column))


def test_7_the_same_columns_without_the_option_pass_through(predict, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text,error,candidacy_why\n1,又被喝茶了,e,w\n", encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(ok(predict("--input", source)).decode())))
    assert rows[0]["error"] == "e" and rows[0]["candidacy_why"] == "w"


# --- 8. --on-error mark keeps the fields of a record whose text is not a string --------------------------------

def test_8_a_marked_record_keeps_its_fields(predict, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a-1", "text": 5, "note": [1]}\n{"id": 2, "note": null}\n{"id": 3, "text": "好"}\n',
                      encoding="utf-8")
    rows = [json.loads(line) for line in ok(predict("--input", source, "--on-error", "mark")).decode().splitlines()]
    assert [r["id"] for r in rows] == ["a-1", 2, 3]
    assert rows[0]["text"] == 5 and rows[0]["note"] == [1] and "not a string" in rows[0]["error"]
    assert rows[1]["error"] == "line 2: no 'text' field" and rows[1]["candidacy"] is None
    out = tmp_path / "out.csv"
    ok(predict("--input", source, "--on-error", "mark", "--output", out))
    table = read_csv_both(out)
    assert [row[0] for row in table] == ["id", "a-1", "2", "3"]


# --- 9. JSON values keep their spelling ------------------------------------------------------------------------

SPELLINGS = ["1", "1.0", "1.50", "-0", "1e5", "1E+2", "1e400", "12345678901234567890123", "true", "false",
             '{"a": [1, 2.50], "b": {}}', "[]", '"\\u00e9\\/"', '"007"']


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_9_json_values_keep_their_spelling(predict, tmp_path, fmt):
    source = tmp_path / "in.jsonl"
    lines = [f'{{"id":{value},"text":"好" , "n" : {value}  }}' for value in SPELLINGS]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / f"out.{fmt}"
    ok(predict("--input", source, "--output", out))
    strings = [json.loads(v) if v.startswith('"') else v for v in SPELLINGS]
    if fmt == "jsonl":
        written = out.read_text(encoding="utf-8").splitlines()
        for line, original in zip(written, lines, strict=True):
            assert line.startswith(original.rstrip()[:-1].rstrip())  # the input's own text, then the predictions
            json.loads(line)  # and still JSON
    elif fmt == "parquet":
        frame = pd.read_parquet(out)
        assert frame["id"].tolist() == strings and frame["n"].tolist() == strings
    else:
        rows = read_csv_both(out, "\t" if fmt == "tsv" else ",")
        assert [row[0] for row in rows[1:]] == strings and [row[2] for row in rows[1:]] == strings


# --- 10. the smaller ones --------------------------------------------------------------------------------------

def test_10_duplicate_and_empty_headers_pass_through(predict, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,id,,text,\n1,2,3,好,5\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    ok(predict("--input", source, "--output", out))
    with open(out, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "id", "", "text", "", *PREDICTED] and rows[1][:5] == ["1", "2", "3", "好", "5"]
    one_line_error(predict("--input", source, "--format", "jsonl"), "two columns named 'id'")


def test_10_a_parquet_text_column_of_integers_is_refused(predict, tmp_path):
    source = tmp_path / "in.parquet"
    pd.DataFrame({"id": [1, 2], "text": [3, 4]}).to_parquet(source)
    one_line_error(predict("--input", source), "column 'text' holds int64, not text")


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.txt", "empty.csv", "empty.jsonl.gz"])
def test_10_an_empty_file_is_bad_input(predict, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(gzip.compress(b"") if name.endswith(".gz") else b"")
    one_line_error(predict("--input", path), "is empty")


def test_10_blank_lines_in_a_one_column_csv_are_empty_posts(predict, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text('text\n又被喝茶了\n\n""\n好\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    ok(predict("--input", source, "--output", out))
    assert [row[0] for row in read_csv_both(out)[1:]] == ["又被喝茶了", "", "", "好"]


def test_10_a_tsv_cell_starting_with_a_quote_is_not_altered(predict, tmp_path):
    source = tmp_path / "in.tsv"
    source.write_text('id\ttext\n1\t"引用" 他说\n', encoding="utf-8")
    # Not quoted whole: refused with its line, never read as 引用 他说.
    one_line_error(predict("--input", source), "line 2", "malformed TSV")
    quoted = tmp_path / "quoted.tsv"
    quoted.write_text('id\ttext\n1\t"""引用"" 他说"\n2\ta"b\n', encoding="utf-8")
    out = tmp_path / "out.tsv"
    ok(predict("--input", quoted, "--output", out))
    assert [row[1] for row in read_csv_both(out, "\t")[1:]] == ['"引用" 他说', 'a"b']


# --- 11, 12. lone surrogates ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet"])
@pytest.mark.parametrize("line", ['{"text": "\\ud800"}', '{"text": "好", "id": "x\\udfffy"}',
                                  '{"\\ud800": 1, "text": ""}'])
def test_11_a_lone_surrogate_cannot_go_to_a_utf8_table(predict, tmp_path, fmt, line):
    source = tmp_path / "in.jsonl"
    source.write_text(line + "\n", encoding="utf-8")
    out = tmp_path / f"out.{fmt}"
    one_line_error(predict("--input", source, "--output", out), "lone surrogate", "--format jsonl")
    assert not out.exists() and list(tmp_path.iterdir()) == [source]


def test_11_json_lines_output_keeps_the_escape(predict, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "\\ud800又"}\n', encoding="utf-8")
    out = ok(predict("--input", source)).decode("utf-8")
    assert out.startswith('{"text": "\\ud800又"') and json.loads(out)["text"] == "\ud800又"


@pytest.mark.parametrize("arg", ["a\udcff", "\ud800"])
def test_12_an_argument_that_is_not_utf8(predict, arg):
    one_line_error(predict("好", arg), "post 2", "not valid UTF-8")


# --- 13. JSON nested too deeply, huge integers -----------------------------------------------------------------

def test_13_deep_nesting_and_huge_integers(predict, tmp_path):
    source = tmp_path / "in.jsonl"
    digits = "9" * 5000
    deep = '{"text": "好", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    source.write_text(f'{{"id": {digits}, "text": "好"}}\n{deep}\n{{"id": 3, "text": "好"}}\n', encoding="utf-8")
    one_line_error(predict("--input", source), "line 2", "nested too deeply")
    rows = ok(predict("--input", source, "--on-error", "mark")).decode().splitlines()
    assert len(rows) == 3 and rows[0].startswith(f'{{"id": {digits}, "text": "好"')
    assert json.loads(rows[1])["error"] == "line 2: not readable: JSON nested too deeply"
    out = tmp_path / "out.csv"
    ok(predict("--input", source, "--on-error", "mark", "--output", out))
    with open(out, encoding="utf-8", newline="") as handle:
        assert [row[0] for row in csv.reader(handle)] == ["id", digits, "", "3"]


# --- 14. damaged containers, changing types --------------------------------------------------------------------

def test_14_a_corrupt_gzip(predict, tmp_path):
    payload = bytearray(gzip.compress(("id,text\n" + "1,又被喝茶了\n" * 2000).encode()))
    for offset in range(20, len(payload) - 10, max(1, len(payload) // 15)):
        damaged = bytearray(payload)
        damaged[offset] ^= 0x55
        path = tmp_path / "in.csv.gz"
        path.write_bytes(bytes(damaged))
        code, _, err = predict("--input", path, "--output", tmp_path / "out.csv")
        assert code in (0, 2) and "Traceback" not in err
        if code == 2:
            one_line_error((code, b"", err))


def test_14_a_damaged_parquet_page(predict, tmp_path):
    source = tmp_path / "in.parquet"
    frame = pd.DataFrame({"id": range(3000), "text": [f"第{i}条微博" for i in range(3000)]})
    frame.to_parquet(source, compression=None, row_group_size=1000)
    blob = source.read_bytes()
    failures = 0
    for offset in range(100, len(blob) - 2000, len(blob) // 25):
        damaged = bytearray(blob)
        damaged[offset:offset + 16] = b"\xff" * 16
        path = tmp_path / "damaged.parquet"
        path.write_bytes(bytes(damaged))
        code, _, err = predict("--input", path, "--output", tmp_path / "out.jsonl")
        assert code in (0, 2) and "Traceback" not in err, err
        failures += code == 2
    assert failures  # some damage is detected, and reported in one line


def test_14_json_lines_to_parquet_when_a_type_changes(predict, tmp_path):
    source = tmp_path / "in.jsonl"
    values = [1, "x", 2.5, None, True, {"a": 1}]
    source.write_text("".join(json.dumps({"id": v, "text": "好"}) + "\n" for v in values), encoding="utf-8")
    out = tmp_path / "out.parquet"
    ok(predict("--input", source, "--output", out, "--chunk-size", "1"))
    import pyarrow.parquet as pq

    assert pq.read_table(out).column("id").to_pylist() == ["1", "x", "2.5", None, "true", '{"a": 1}']


# --- 15. the card's thresholds ---------------------------------------------------------------------------------



@pytest.mark.parametrize("resealed", [False, True])
@pytest.mark.parametrize("value", ["abc", None, 5, -1, float("nan"), True, "edited"])
def test_15_card_thresholds_are_validated(predict, model_copy, value, resealed):
    card_path = model_file.card_path(model_copy)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["thresholds"]["candidacy"] = min(0.99, card["thresholds"]["candidacy"] + 0.1) if value == "edited" else value
    # Edited by hand, the card's own SHA-256 no longer holds; sealed again, it no longer agrees with the model file.
    card_path.write_text(json.dumps(model_file.sealed(card) if resealed else card), encoding="utf-8")
    expected = "labels or thresholds are not the model file's" if resealed else "was edited after training"
    with pytest.raises(UserError, match=expected):
        model_file.load_model(model_copy)
    one_line_error(predict("好", model=model_copy), "card", expected)


# --- the Python API and the per-post cap -----------------------------------------------------------------------

def test_api_refuses_one_string_and_bad_thresholds(tiny_model):
    with pytest.raises(TypeError, match="one string"):
        tiny_model.predict("一条微博")
    with pytest.raises(TypeError, match="one string"):
        tiny_model.predict_proba("一条微博")
    assert tiny_model.predict(["", None]).iloc[1, 1:].tolist() == tiny_model.predict(["", ""]).iloc[1, 1:].tolist()
    for bad in ({"candidacy": 2}, {"candidacy": math.nan}, {"candidacy": "0.5"}, {"spam": 0.5}, {"candidacy": True}):
        with pytest.raises(UserError):
            tiny_model.predict(["好"], thresholds=bad)
    assert tiny_model.predict(["好"], thresholds={"candidacy": 0}).loc[0, "candidacy"] == 1


def test_max_chars_scores_the_start_of_a_long_post_and_marks_it(predict, tiny_model, tmp_path):
    long = "我决定参选本区人大代表" * 50
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate([long, "好"])), encoding="utf-8")
    rows = [json.loads(line) for line in ok(predict("--input", source, "--max-chars", "20")).decode().splitlines()]
    assert [r["truncated"] for r in rows] == [1, 0]
    assert rows[0]["text"] == long  # the post itself passes through whole
    assert rows[0]["candidacy_prob"] == tiny_model.predict([long[:20]]).loc[0, "candidacy_prob"]
    frame = tiny_model.predict([long, "好"], max_chars=20)
    assert frame["truncated"].tolist() == [1, 0] and frame["candidacy_prob"].tolist() == [r["candidacy_prob"]
                                                                                          for r in rows]
    default = [json.loads(line) for line in ok(predict("--input", source)).decode().splitlines()]
    assert "truncated" not in default[0]


def test_max_chars_must_be_positive(predict, tiny_model):
    one_line_error(predict("好", "--max-chars", "0"), "--max-chars must be at least 1")
    with pytest.raises(UserError, match="max_chars"):
        tiny_model.predict(["好"], max_chars=0)


def test_nan_and_infinity_are_not_json(predict, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": NaN, "text": "好"}\n{"id": -Infinity, "text": "好"}\n', encoding="utf-8")
    rows = [json.loads(line) for line in ok(predict("--input", source, "--on-error", "mark")).decode().splitlines()]
    assert [r["error"] for r in rows] == ["line 1: not valid JSON (NaN is not JSON)",
                                          "line 2: not valid JSON (-Infinity is not JSON)"]


def test_default_cap_bounds_a_huge_post(tiny_model):
    huge = "又被国保约谈了，" * 200_000  # 1.6 million characters
    capped = huge[:pipeline.model.MAX_CHARS]
    assert tiny_model.predict_proba([huge]).tolist() == tiny_model.predict_proba([capped]).tolist()


def test_scoring_in_batches_changes_no_score(tiny_model, monkeypatch):
    posts = [("又被国保约谈了" * n)[: 1 + 37 * n] for n in range(40)]
    whole = tiny_model.predict(posts, explain=2)
    monkeypatch.setattr(pipeline.model, "BATCH_CHARS", 300)
    assert len(pipeline.model._batches(posts, 300)) > 10
    pd.testing.assert_frame_equal(tiny_model.predict(posts, explain=2), whole)


def test_an_output_csv_of_posts_read_back_by_pandas_with_nul_and_separators(predict, tmp_path):
    posts = ["a\x00b", "c,d", 'e"f', " g ", "\t", "#h", "\u2028i", "\x85j", ""]
    out = tmp_path / "out.csv"
    ok(predict(*posts, "--output", out))
    assert [row[0] for row in read_csv_both(out)[1:]] == posts


def test_only_flagged_on_an_empty_parquet_file_writes_an_empty_output(predict, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())}), source)
    out = tmp_path / "out.parquet"
    code, _, err = predict("--input", str(source), "--output", str(out), "--only-flagged")
    assert code == 0, err
    assert pq.read_table(out).num_rows == 0
