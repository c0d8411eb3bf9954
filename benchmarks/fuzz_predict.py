"""Fuzz predict: hostile posts, ids and columns through every input and output format, read back cell by cell.

    python benchmarks/fuzz_predict.py                       # 10,000 posts through every format pair (and .gz)
    python benchmarks/fuzz_predict.py --posts 2000 --seed 7 --model models/model.npz

Posts come from every Unicode plane and category: control characters (NUL, CR, LF, TAB, NEL, the Unicode line
separators), zero-width and bidi marks, CSV- and JSON-hostile text, lone surrogates (in JSON Lines), empty and
100 KB to 1 MB posts, HTML escapes and Weibo's interface text, and long runs before the words the normaliser's
patterns look for. They go in as CSV, TSV, JSON Lines, text and Parquet, plain and gzipped, and come out as
CSV, TSV, JSON Lines and Parquet, plain and gzipped: every pair, through ``pipeline.predict.cli`` in this process.
Each output is read back with Python's csv and pandas (which must agree), json or pyarrow, and compared with the
input cell by cell, and its scores with the Python API's. Damaged gzip and Parquet inputs must give exit code 2
and one line, never a traceback. The figures printed at the end must be 0, 0 and 0.

``tests/test_predict_fuzz.py`` runs the same round trip on Hypothesis' inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import random
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

IN_FORMATS = ("csv", "tsv", "jsonl", "txt", "parquet")
OUT_FORMATS = ("csv", "tsv", "jsonl", "parquet")
LABELS = ("candidacy", "police_warning")
NOTE = 'he said "hi", ok\t备注'  # a hostile column name: a comma, quotes, a tab

CHINESE = ["我决定参选本区人大代表，请大家联名推荐", "又被国保约去喝茶了", "周末约了老同学去茶馆喝茶",
           "警方提醒：谨防电信诈骗",
           "转发微博", "//@某人: 哈哈[哈哈]", "#独立候选人# 投我一票"]
HOSTILE = ['"', '""', '","', ",", "\t", "\r", "\n", "\r\n", "\n\r", "\\", '\\"', '{"text": "x"}', "}", "{", "[", "null",
           "NaN", "None", "true", "=1+1", "#", " ", "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x7f",
           "\x85", "\u2028", "\u2029", "\ufeff", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e",
           "\u2066", "\u2069", "\ufffd", "\uffff", "\U0010ffff", "\U0001f600", "\U00020000", "\ue000", "'", "`",
           "\\u0000", "\\ud800", "<script>", "a\rb", '"a"b', '"引用" 他说', "&quot;", "&amp;", "&#8220;", "&#xe001;",
           "&#0;", "O网页链接", "...展开全文c", "收起全文d", "L某某的微博视频"]
JSON_IDS = ["1", "-0", "1.0", "1.50", "1e5", "1E+2", "1e400", "-1e-400", "12345678901234567890123456789", "9" * 5000,
            "true", "false", "null", "[]", "{}", '{"a": [1, {"b": null}], "c": 2.50}', '"007"', '"\\u00e9\\/"',
            '""', '"a\\u0000b"', '"\\r"']


def random_char(rng: random.Random, surrogates: bool) -> str:
    """A code point from any plane; lone surrogates only where asked."""
    plane = rng.choice([0, 0, 0, 1, 2, 3, 14, 15, 16])
    while True:
        code = plane * 0x10000 + rng.randrange(0x10000)
        if surrogates or not 0xD800 <= code <= 0xDFFF:
            return chr(code)


def random_post(rng: random.Random, surrogates: bool) -> str:
    kind = rng.random()
    if kind < 0.25:
        return rng.choice(CHINESE)
    if kind < 0.45:
        return "".join(rng.choice(HOSTILE + CHINESE) for _ in range(rng.randint(1, 6)))
    if kind < 0.8:
        return "".join(random_char(rng, surrogates) for _ in range(rng.randint(0, 40)))
    if kind < 0.85:
        return rng.choice(["", " ", "\t", "\r", "\n", '""'])
    return rng.choice(CHINESE) + "".join(rng.choice(HOSTILE) for _ in range(3)) + random_char(rng, surrogates)


def make_rows(n: int, seed: int, big: bool = True) -> list[dict]:
    """Rows of id (as JSON text), text and a note; the posts include lone surrogates and a few huge posts."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append({"id": rng.choice(JSON_IDS) if rng.random() < 0.3 else json.dumps(f"p{i}"),
                     "text": random_post(rng, surrogates=rng.random() < 0.05),
                     NOTE: random_post(rng, surrogates=False)})
    if big:
        for size in (100_000, 1_000_000):
            rows[rng.randrange(n)]["text"] = ("又被国保约谈了，" + "".join(rng.choice(HOSTILE) for _ in range(5))) * (
                size // 13)
        # Long runs before the words the normaliser's patterns look for: a pattern that backtracks over the run
        # at every start takes minutes here instead of milliseconds.
        runs = (" " * 300_000 + "展开", "." * 300_000 + "展开全文", "&" * 300_000 + "L" + "某" * 300_000 + "的微博视频")
        for run in runs:
            rows[rng.randrange(n)]["text"] = run
    return rows


@dataclass
class Case:
    """One format pair's input, as written, and what every output row must hold."""

    in_fmt: str
    out_fmt: str
    columns: list[str]
    cells: list[list[str | None]]  # the expected cell of every column, per row, as a table output holds it
    raw: list[str] | None = None  # JSON Lines: each input line, which JSON Lines output must begin with
    texts: list[str] = field(default_factory=list)


def _no_surrogates(text: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _cell(raw: str) -> str | None:
    """A JSON value as a table output holds it: a string as itself, null as missing, others as their JSON text."""
    if raw == "null":
        return None
    return json.loads(raw) if raw.startswith('"') else raw


def build_case(rows: list[dict], in_fmt: str, out_fmt: str) -> Case:
    """The rows as ``in_fmt`` can hold them, and the cells ``out_fmt`` must give back."""
    keep_surrogates = in_fmt == "jsonl" and out_fmt == "jsonl"
    texts, cells, raw = [], [], []
    for row in rows:
        text = row["text"] if keep_surrogates else _no_surrogates(row["text"])
        note = row[NOTE] if keep_surrogates else _no_surrogates(row[NOTE])
        ident = row["id"]
        if not keep_surrogates and "\\ud" in ident:
            ident = '"surrogate"'
        if in_fmt == "txt":  # one post per line: a line break cannot be inside one, nor a CR at its end
            text = text.replace("\n", "␤")
            text = text + "." if text.endswith("\r") else text
        if in_fmt == "jsonl":
            line = "{" + f'"id":{ident},  "text": {json.dumps(text)}, {json.dumps(NOTE)} :{json.dumps(note)}' + "}"
            raw.append(line)
            # What the JSON means: an escaped surrogate pair (\ud800\udc00) is one character.
            text, note = json.loads(json.dumps(text)), json.loads(json.dumps(note))
        texts.append(text)
        if in_fmt == "jsonl":
            cells.append([_cell(ident), text, note])
        elif in_fmt == "txt":
            cells.append([text])
        else:
            cells.append([_cell(ident) or "", text, note] if in_fmt != "parquet" else [_cell(ident), text, note])
    columns = ["text"] if in_fmt == "txt" else ["id", "text", NOTE]
    return Case(in_fmt, out_fmt, columns, cells, raw if in_fmt == "jsonl" else None, texts)


def write_input(case: Case, path: Path) -> None:
    if case.in_fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({name: pa.array([row[j] for row in case.cells], pa.string())
                          for j, name in enumerate(case.columns)})
        buffer = io.BytesIO()
        pq.write_table(table, buffer, row_group_size=3000)
        data = buffer.getvalue()
    elif case.in_fmt == "jsonl":
        data = "".join(line + "\n" for line in case.raw).encode("utf-8")
    elif case.in_fmt == "txt":
        data = "".join(text + "\n" for text in case.texts).encode("utf-8")
    else:
        text = io.StringIO()
        # CRLF line ends: Python's csv then quotes every cell holding a CR or LF (with LF alone, not a lone CR).
        writer = csv.writer(text, delimiter="\t" if case.in_fmt == "tsv" else ",", lineterminator="\r\n")
        writer.writerow(case.columns)
        writer.writerows(case.cells)
        data = text.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def read_output(path: Path, fmt: str) -> tuple[list[str], list[list], list[str] | None, int]:
    """The output's columns and rows (and, for JSON Lines, its lines), as standard readers see them, and how
    many cells pandas and Python's csv read differently."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        return table.column_names, [list(row.values()) for row in table.to_pylist()], None, 0
    if fmt == "jsonl":
        lines = data.decode("utf-8").split("\n")
        assert lines[-1] == "", "JSON Lines output must end with a line break"
        records = [_loads(line) for line in lines[:-1]]
        columns = list(records[0]) if records else []
        return columns, [[record.get(c) for c in columns] for record in records], lines[:-1], 0
    import pandas as pd

    sep = "\t" if fmt == "tsv" else ","
    csv.field_size_limit(sys.maxsize)  # cells of a megabyte and more
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline=""), delimiter=sep))
    frame = pd.read_csv(io.BytesIO(data), sep=sep, dtype=str, keep_default_na=False)
    by_pandas = [list(frame.columns), *frame.to_numpy().tolist()]
    disagree = sum(a != b for x, y in zip(rows, by_pandas, strict=False) for a, b in zip(x, y, strict=False))
    disagree += abs(len(rows) - len(by_pandas)) * max(1, len(rows[0]) if rows else 1)
    return rows[0], rows[1:], None, disagree


@dataclass
class Tally:
    runs: int = 0
    posts: int = 0
    tracebacks: int = 0
    rows_lost: int = 0
    cells_altered: int = 0
    refusals: int = 0
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        if len(self.notes) < 20:
            self.notes.append(message)


def compare(case: Case, path: Path, scores, tally: Tally) -> None:
    """Count the rows lost and the cells altered in one output, predictions included."""
    columns, rows, lines, disagree = read_output(path, case.out_fmt)
    tally.cells_altered += disagree
    if disagree:
        tally.note(f"{case.in_fmt}->{path.name}: pandas and csv read {disagree} cells differently")
    expected_columns = [*case.columns, "candidacy_prob", "candidacy", "police_warning_prob", "police_warning"]
    if columns != expected_columns:
        tally.cells_altered += len(case.cells)
        tally.note(f"{case.in_fmt}->{path.name}: columns {columns!r}")
        return
    if len(rows) != len(case.cells):
        tally.rows_lost += abs(len(case.cells) - len(rows))
        tally.note(f"{case.in_fmt}->{path.name}: {len(rows)} rows for {len(case.cells)}")
    width = len(case.columns)
    for i, (row, want) in enumerate(zip(rows, case.cells, strict=False)):
        got = row[:width]
        if case.out_fmt in ("csv", "tsv"):
            want = ["" if w is None else w for w in want]
        elif case.out_fmt == "jsonl" and case.in_fmt == "jsonl":
            # JSON Lines to JSON Lines: the input line itself, then the predictions; values read back alike.
            if not lines[i].startswith(case.raw[i][:-1]):
                tally.cells_altered += 1
                tally.note(f"{case.in_fmt}->{path.name}: row {i}: line {lines[i][:80]!r} altered")
            want = [_loads(_field(case.raw[i], "id")), *want[1:]]
        altered = sum(a != b for a, b in zip(got, want, strict=True))
        if altered:
            tally.cells_altered += altered
            tally.note(f"{case.in_fmt}->{path.name}: row {i}: {got!r:.200} != {want!r:.200}")
        for j, label in enumerate(LABELS):
            prob, decision = row[width + 2 * j], row[width + 2 * j + 1]
            if float(prob) != scores[f"{label}_prob"][i] or int(decision) != scores[label][i]:
                tally.cells_altered += 1
                tally.note(f"{case.in_fmt}->{path.name}: row {i}: {label} {prob}/{decision} differs from the API")


def _field(line: str, key: str) -> str:
    from pipeline.streams.chunks import parse_object

    return parse_object(line)[1][key]


def _loads(text: str):
    """JSON with its numbers kept as their text, so that 1.50, 1e400 and 5,000 digits compare as written."""
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def run_pair(model_path: Path, rows: list[dict], in_fmt: str, out_fmt: str, in_gz: bool, out_gz: bool,
             folder: Path, model, tally: Tally) -> None:
    from pipeline.predict import cli

    case = build_case(rows, in_fmt, out_fmt)
    source = folder / f"in.{in_fmt}{'.gz' if in_gz else ''}"
    target = folder / f"out.{out_fmt}{'.gz' if out_gz else ''}"
    write_input(case, source)
    target.unlink(missing_ok=True)
    scores = {name: values.tolist() for name, values in model.scores(case.texts).items()}
    err = io.StringIO()
    tally.runs += 1
    tally.posts += len(rows)
    try:
        with contextlib.redirect_stderr(err):
            code = cli(["--model", str(model_path), "-q", "--input", str(source), "--output", str(target)])
    except BaseException:  # noqa: BLE001  (a traceback is what this counts)
        tally.tracebacks += 1
        tally.note(f"{source.name}->{target.name}: {traceback.format_exc(limit=3)}")
        return
    if code != 0:
        tally.rows_lost += len(rows)
        tally.note(f"{source.name}->{target.name}: exit {code}: {err.getvalue().strip()}")
        return
    compare(case, target, scores, tally)


def corruptions(model_path: Path, folder: Path, rng: random.Random, tally: Tally, count: int) -> None:
    """Damaged gzip and Parquet inputs: exit 0 (the damage missed the data) or 2 with one line, never a traceback."""
    import pandas as pd

    from pipeline.predict import cli

    frame = pd.DataFrame({"id": [f"p{i}" for i in range(3000)], "text": [CHINESE[i % 7] + str(i) for i in range(3000)]})
    gz = gzip.compress(frame.to_csv(index=False).encode())
    parquet_path = folder / "clean.parquet"
    frame.to_parquet(parquet_path, compression=None, row_group_size=700)
    parquet = parquet_path.read_bytes()
    for blob, name in ((gz, "in.csv.gz"), (parquet, "in.parquet")):
        for _ in range(count):
            damaged = bytearray(blob)
            for _ in range(rng.randint(1, 4)):
                start = rng.randrange(len(damaged))
                damaged[start:start + rng.randint(1, 32)] = rng.randbytes(rng.randint(1, 32))
            path = folder / name
            path.write_bytes(bytes(damaged))
            err = io.StringIO()
            tally.runs += 1
            try:
                with contextlib.redirect_stderr(err):
                    code = cli(["--model", str(model_path), "-q", "--input", str(path), "--output",
                                str(folder / "damaged.jsonl")])
            except BaseException:  # noqa: BLE001
                tally.tracebacks += 1
                tally.note(f"damaged {name}: {traceback.format_exc(limit=3)}")
                continue
            lines = err.getvalue().strip().splitlines()
            if code == 2:
                tally.refusals += 1
            if code not in (0, 2) or (code == 2 and len(lines) != 1):
                tally.tracebacks += 1
                tally.note(f"damaged {name}: exit {code}: {err.getvalue()[:300]}")


def cached_model(model_path: Path):
    """Load the model once; predict's own loading (per run) is patched to reuse it."""
    import pipeline.model_file

    model = pipeline.model_file.load_model(model_path)
    real = pipeline.model_file.load_model
    pipeline.model_file.load_model = lambda path=None: model if str(path) == str(model_path) else real(path)
    return model


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--model", default=str(ROOT / "models" / "model.npz"))
    parser.add_argument("--corruptions", type=int, default=60, help="damaged inputs of each container kind")
    args = parser.parse_args(argv)
    model_path = Path(args.model)
    model = cached_model(model_path)
    rows = make_rows(args.posts, args.seed)
    tally = Tally()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for in_fmt in IN_FORMATS:
            for in_gz in (False, True):
                for out_fmt in OUT_FORMATS:
                    for out_gz in (False, True):
                        run_pair(model_path, rows, in_fmt, out_fmt, in_gz, out_gz, folder, model, tally)
                print(f"{in_fmt}{'.gz' if in_gz else ''}: done ({time.perf_counter() - started:.0f} s)",
                      file=sys.stderr)
        corruptions(model_path, folder, random.Random(args.seed), tally, args.corruptions)
    for note in tally.notes:
        print("  " + note.replace("\n", "\n  "), file=sys.stderr)
    print(f"{tally.posts:,} posts in {tally.runs} runs ({len(IN_FORMATS) * 2} inputs x {len(OUT_FORMATS) * 2} "
          f"outputs, plus {2 * args.corruptions} damaged containers: {tally.refusals} refused) in "
          f"{time.perf_counter() - started:.0f} s")
    print(f"tracebacks: {tally.tracebacks}")
    print(f"rows lost: {tally.rows_lost}")
    print(f"cells altered: {tally.cells_altered}")
    return 0 if tally.tracebacks == tally.rows_lost == tally.cells_altered == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
