"""Bad input through predict's command line (in-process): a one-line error and exit code 2, or every row
accounted for."""

import json

import pandas as pd
import pytest

from pipeline import model_file

POSTS = ["又被国保约谈了", "周末去茶馆喝茶"]


def one_line_error(result, *fragments):
    """The command failed with exit code 2 and one line on stderr holding every fragment, no traceback."""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert result.code == 2, result.err
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def rows_of(result):
    return result.rows()


# --- files that are not there or not what they claim ------------------------------------------------------

def test_missing_input_file(predict_run, tmp_path):
    one_line_error(predict_run("--input", str(tmp_path / "nope.csv")), "input file not found")


def test_folder_as_input(predict_run, tmp_path):
    one_line_error(predict_run("--input", str(tmp_path), "--input-format", "csv"), "folder")


def test_empty_csv(predict_run, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    one_line_error(predict_run("--input", str(path)), "is empty")


def test_missing_text_column_names_the_columns(predict_run, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text("id,content\n1,又被喝茶了\n", encoding="utf-8")
    one_line_error(predict_run("--input", str(path)), "no column 'text'", "content", "--text-column")
    out = rows_of(predict_run("--input", str(path), "--text-column", "content", "--format", "jsonl"))
    assert out[0]["content"] == "又被喝茶了" and "police_warning_prob" in out[0]


def test_unknown_extension_asks_for_a_format(predict_run, tmp_path):
    path = tmp_path / "posts.xlsx"
    path.write_bytes(b"PK")
    one_line_error(predict_run("--input", str(path)), "cannot tell the format")


def test_bad_option_values(predict_run):
    one_line_error(predict_run("x", "--threshold", "candidacy=2"), "between 0 and 1")
    one_line_error(predict_run("x", "--threshold", "spam=0.5"), "LABEL one of")
    one_line_error(predict_run("x", "--format", "xml"), "invalid choice")
    one_line_error(predict_run("x", "--chunk-size", "0"), "--chunk-size")
    one_line_error(predict_run("x", "--encoding", "klingon"), "unknown encoding")


def test_unwritable_output(predict_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_line_error(predict_run("x", "--output", str(blocker / "out.csv")), "cannot write")


# --- encodings ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding, hint", [("gbk", "--encoding gbk"), ("big5", "--encoding big5")])
def test_legacy_encodings_are_named_and_readable_with_the_option(predict_run, tmp_path, encoding, hint):
    path = tmp_path / "posts.csv"
    text = "又被國保約談了" if encoding == "big5" else "又被国保约谈了，说我乱发帖子"
    path.write_bytes(f"id,text\n1,{text}\n".encode(encoding))
    one_line_error(predict_run("--input", str(path)), "not valid utf-8", hint)
    rows = rows_of(predict_run("--input", str(path), "--encoding", encoding, "--format", "jsonl"))
    assert rows[0]["text"] == text


def test_utf8_bom_is_not_part_of_the_first_column(predict_run, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffid,text\n1,又被喝茶了\n".encode("utf-8"))
    rows = rows_of(predict_run("--input", str(path), "--format", "jsonl"))
    assert list(rows[0])[:2] == ["id", "text"] and rows[0]["id"] == "1"


# --- rows that must all come out ---------------------------------------------------------------------------

def test_csv_with_quoted_newlines_and_commas(predict_run, tmp_path):
    path = tmp_path / "posts.csv"
    path.write_text('id,text\n1,"第一行\n第二行, 还有逗号"\n2,"他说""再发就拘留你"""\n3,普通\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    assert predict_run("--input", str(path), "--output", str(out)).code == 0
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert frame["text"].tolist() == ["第一行\n第二行, 还有逗号", '他说"再发就拘留你"', "普通"]


def test_mixed_type_ids_pass_through_exactly(predict_run, tmp_path):
    csv_path = tmp_path / "ids.csv"
    csv_path.write_text("id,text\n007,a\n1e5,b\nabc,c\n,d\n3.10,e\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    predict_run("--input", str(csv_path), "--output", str(out))
    assert pd.read_csv(out, dtype=str, keep_default_na=False)["id"].tolist() == ["007", "1e5", "abc", "", "3.10"]
    jsonl_path = tmp_path / "ids.jsonl"
    ids = [1, "1", None, 2.5, "x-9", 10**20]
    jsonl_path.write_text("".join(json.dumps({"id": i, "text": "帖子"}) + "\n" for i in ids), encoding="utf-8")
    rows = rows_of(predict_run("--input", str(jsonl_path)))
    assert [r["id"] for r in rows] == ids


def test_broken_jsonl_line_is_named(predict_run, tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": 1, "text": "又被喝茶了"}\n{"id": 2, "text": "坏的\n{"id": 3, "text": "好的"}\n',
                    encoding="utf-8")
    one_line_error(predict_run("--input", str(path)), "line 2", "--on-error mark")


def test_broken_jsonl_line_is_marked_and_kept_in_place(predict_run, tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": 1, "text": "又被喝茶了"}\n{"id": 2, "text": "坏的\n[1, 2]\n{"id": 4}\n'
                    '{"id": 5, "text": "好的"}\n', encoding="utf-8")
    rows = rows_of(predict_run("--input", str(path), "--on-error", "mark"))
    assert len(rows) == 5
    assert [r["error"] for r in rows][0] == "" and rows[4]["error"] == ""
    assert rows[1]["error"].startswith("line 2: not valid JSON")
    assert rows[2]["error"] == "line 3: expected a JSON object"
    assert rows[3]["error"] == "line 4: no 'text' field"
    for broken in rows[1:4]:
        assert broken["candidacy"] is None and broken["candidacy_prob"] is None
    assert rows[4]["id"] == 5 and rows[4]["candidacy"] in (0, 1)


def test_marked_errors_in_csv_output(predict_run, tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"id": 1, "text": "又被喝茶了"}\nnot json\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    result = predict_run("--input", str(path), "--on-error", "mark", "--output", str(out))
    assert result.code == 0, result.err
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(frame) == 2 and frame["error"].tolist()[0] == "" and frame["error"].tolist()[1].startswith("line 2")
    assert frame["candidacy"].tolist()[1] == ""


def test_lone_surrogates_and_odd_unicode_in_jsonl(predict_run, tmp_path):
    path = tmp_path / "odd.jsonl"
    texts = ['"\\ud800又被喝茶\\udfff"', '"\\u200b\\u202e\\u0000"', '"😀😀😀"', '""', '"\\t\\r\\n"']
    path.write_text("".join(f'{{"text": {t}}}\n' for t in texts), encoding="utf-8")
    rows = rows_of(predict_run("--input", str(path)))
    assert len(rows) == len(texts)


def test_empty_stdin_gives_no_rows(predict_run):
    result = predict_run(stdin="")
    assert result.code == 0 and result.out == b"", result.err


def test_parquet_without_the_text_column(predict_run, tmp_path):
    path = tmp_path / "posts.parquet"
    pd.DataFrame({"body": ["x"]}).to_parquet(path)
    one_line_error(predict_run("--input", str(path)), "no column 'text'")


def test_not_a_parquet_file(predict_run, tmp_path):
    path = tmp_path / "posts.parquet"
    path.write_text("text\nx\n")
    one_line_error(predict_run("--input", str(path)), "not a readable Parquet file")


def test_a_failed_run_leaves_no_partial_output(predict_run, tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"text": "好"}\n' * 10 + "broken\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    one_line_error(predict_run("--input", str(path), "--output", str(out), "--chunk-size", "3"),
                   "line 11")
    assert not out.exists() and list(tmp_path.glob(".out.jsonl*")) == []


def test_missing_output_folder_is_made(predict_run, tmp_path):
    out = tmp_path / "new" / "folder" / "out.jsonl"
    assert predict_run(*POSTS, "--output", str(out)).code == 0
    assert [json.loads(line)["text"] for line in out.read_text(encoding="utf-8").splitlines()] == POSTS


def test_posts_and_input_together_are_refused(predict_run, tmp_path):
    one_line_error(predict_run("x", "--input", str(tmp_path / "in.csv")), "not both")


def test_cluster_options_without_cluster_are_refused(predict_run):
    one_line_error(predict_run("x", "--resume"), "--resume and --ship-model go with --cluster")


# --- models that must not be loaded ------------------------------------------------------------------------

def test_missing_model_says_to_run_make_repro(predict_run, tmp_path):
    one_line_error(predict_run("x", model=tmp_path / "model.npz"), "no trained model", "make repro")


def test_flipped_byte_is_refused(predict_run, model_copy):
    blob = bytearray(model_copy.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    model_copy.write_bytes(bytes(blob))
    one_line_error(predict_run("x", model=model_copy), "does not match its card")


def test_truncated_model_is_refused(predict_run, model_copy):
    model_copy.write_bytes(model_copy.read_bytes()[:1000])
    one_line_error(predict_run("x", model=model_copy), "does not match its card")


def test_model_without_card_is_refused(predict_run, model_copy):
    model_file.card_path(model_copy).unlink()
    one_line_error(predict_run("x", model=model_copy), "model card", "is missing")


def test_edited_card_is_refused(predict_run, model_copy):
    card_path = model_file.card_path(model_copy)
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["labels"] = card["labels"][::-1]
    card_path.write_text(json.dumps(card), encoding="utf-8")
    one_line_error(predict_run("x", model=model_copy), "model card", "was edited after training")


def test_a_model_copy_scores_as_the_original(predict_run, model_copy):
    assert predict_run(*POSTS, model=model_copy).rows() == predict_run(*POSTS).rows()
