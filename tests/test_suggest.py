"""The review queue and reading labels back: CSV and Label Studio round trips on real files, bad files refused."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_params
from pipeline.data import read_background_labels, read_labeled_file
from pipeline.errors import UserError
from pipeline.pool import read_pool
from pipeline.review_queue import quotas, select_queue
from pipeline.suggest import main
from tests.conftest import FIXTURES, ROOT, tiny_project

MODEL = str(ROOT / "models" / "model.npz")
POOL = FIXTURES / "review_pool.csv"
SCHEMAS = FIXTURES / "label_studio"


@pytest.fixture
def project(tmp_path, real_model, monkeypatch) -> Path:
    """A copy of the project's configs with the fixture data; the background pool is tests/fixtures/background.csv.
    The trained model is loaded once for the session, not once per command."""
    monkeypatch.setattr("pipeline.model_file.load_model", lambda path=None: real_model)
    return tiny_project(tmp_path / "project")


def queue(project: Path, out: Path, *extra: str) -> pd.DataFrame:
    assert main(["--params", str(project), "-m", MODEL, "-o", str(out), *extra]) == 0
    return pd.read_csv(out / "queue.csv", dtype=str, keep_default_na=False)


def jaccard(a: str, b: str) -> float:
    x, y = {a[i:i + 3] for i in range(len(a) - 2)}, {b[i:i + 3] for i in range(len(b) - 2)}
    return len(x & y) / max(len(x | y), 1)


def test_queue_mixes_strategies_without_near_duplicates(project, tmp_path):
    table = queue(project, tmp_path / "review", "--pool", str(POOL), "-n", "20", "--near-threshold", "0.3",
                  "--diverse", "0.3", "--confident", "0.2", "--random", "0.2")
    assert len(table) == 20 and table["id"].is_unique
    assert set(table["strategy"]) == {"near_threshold", "diverse", "confident", "random"}
    assert (table[["candidacy", "police_warning", "kind"]] == "").all().all()  # for the reviewer to fill
    flagged = table[table["strategy"] == "confident"]
    assert (flagged[["candidacy_prob", "police_warning_prob"]].astype(float).max(axis=1) > 0.5).all()
    texts = table["text"].tolist()
    assert max(jaccard(a, b) for i, a in enumerate(texts) for b in texts[i + 1:]) < 0.7
    assert (tmp_path / "review" / ".gitignore").read_text(encoding="utf-8").strip().endswith("*")


def test_queue_skips_labeled_posts_and_their_near_duplicates(project, tmp_path):
    folder = project.parent.parent / "data"
    pool = pd.read_csv(POOL, dtype=str)
    near_copy = pool.loc[pool["id"] == "rp-c03", "text"].iloc[0].replace("浦东新区", "静安区")
    pd.DataFrame({"text": [near_copy], "candidacy": [1], "police_warning": [0], "kind": ["own_candidacy"]}).to_csv(
        folder / "labeled" / "reviewed.csv", index=False)
    table = queue(project, tmp_path / "review", "--pool", str(POOL), "-n", "40")
    assert not table["id"].str.startswith("rp-c").any()  # every candidacy post of the pool is a near-copy of it
    pd.DataFrame({"id": ["bg-0019"], "candidacy": [0], "police_warning": [0], "kind": ["background_labeled"]}).to_csv(
        folder / "background_labels.csv", index=False)
    table = queue(project, tmp_path / "review2", "-n", "39")
    assert "bg-0019" not in set(table["id"]) and len(table) <= 39


def test_label_studio_files_follow_the_documented_format(project, tmp_path):
    queue(project, tmp_path / "review", "--pool", str(POOL), "-n", "8")
    tasks = json.loads((tmp_path / "review" / "label_studio_tasks.json").read_text(encoding="utf-8"))
    jsonschema.validate(tasks, json.loads((SCHEMAS / "tasks_import.schema.json").read_text(encoding="utf-8")))
    config = ET.fromstring((tmp_path / "review" / "label_studio_config.xml").read_text(encoding="utf-8"))
    assert config.tag == "View"
    text = config.find("Text")
    assert text.get("value") == "$text" and all("text" in task["data"] for task in tasks)
    controls = {c.get("name"): [o.get("value") for o in c.findall("Choice")] for c in config.findall("Choices")}
    assert set(controls) == {"candidacy", "police_warning"}
    assert all(c.get("toName") == text.get("name") for c in config.findall("Choices"))
    for task in tasks:
        for region in task["predictions"][0]["result"]:
            assert region["to_name"] == text.get("name")
            assert region["value"]["choices"][0] in controls[region["from_name"]]


def fill(table: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A reviewer's work: the first ``rows`` posts labeled, the rest left blank."""
    table = table.copy()
    for k in range(rows):
        warning = float(table.loc[k, "police_warning_prob"])
        table.loc[k, ["candidacy", "police_warning", "kind"]] = ["0", "1" if warning > 0.5 else "0", ""]
    return table


def test_csv_round_trip_keeps_pool_text_out_of_the_repository(project, tmp_path):
    root = project.parent.parent
    params = load_params(project)
    own = fill(queue(project, tmp_path / "own", "--pool", str(POOL), "-n", "6"), 4)
    own.to_csv(tmp_path / "own.csv", index=False)
    assert main(["import", str(tmp_path / "own.csv"), "--params", str(project)]) == 0
    written = sorted((root / "data" / "labeled").glob("suggested-*.csv"))
    assert len(written) == 1
    added = read_labeled_file(written[0], params)  # prepare reads it
    assert sorted(added["text"]) == sorted(own["text"].head(4))

    background = fill(queue(project, tmp_path / "bg", "-n", "5"), 3)
    assert (background["pool"] == "background").all()
    background.to_csv(tmp_path / "bg.csv", index=False)
    assert main(["import", str(tmp_path / "bg.csv"), "--params", str(project)]) == 0
    labels = read_background_labels(params)
    assert set(background["id"].head(3)) <= set(labels["id"])
    assert len(sorted((root / "data" / "labeled").glob("suggested-*.csv"))) == 1  # no new labeled file
    for path in (root / "data").rglob("*.csv"):
        if path.name != "background.csv":  # the fixture pool itself
            content = path.read_text(encoding="utf-8")
            assert not any(text in content for text in background["text"]), path
    # Importing the same labels again changes nothing; labeling a post otherwise is refused.
    assert main(["import", str(tmp_path / "bg.csv"), "--params", str(project)]) == 0
    assert len(read_background_labels(params)) == len(labels)
    flipped = background.head(1).assign(candidacy="1")
    flipped.to_csv(tmp_path / "flipped.csv", index=False)
    before = (root / "data" / "background_labels.csv").read_bytes()
    assert main(["import", str(tmp_path / "flipped.csv"), "--params", str(project)]) == 2
    assert (root / "data" / "background_labels.csv").read_bytes() == before


def test_a_refused_file_changes_nothing(project, tmp_path, capsys):
    """A file whose last row is refused adds none of its rows: no half-imported review."""
    root = project.parent.parent
    pool = pd.read_csv(FIXTURES / "background.csv", dtype=str)
    path = tmp_path / "mixed.csv"
    pd.DataFrame({"id": ["", pool["id"][0], pool["id"][0]], "text": ["一条新的帖子，此前没人标过", "x", "x"],
                  "candidacy": ["0", "0", "0"], "police_warning": ["0", "0", "1"],
                  "pool": ["", "background", "background"]}).to_csv(path, index=False)
    labels_before = (root / "data" / "background_labels.csv").read_bytes()
    capsys.readouterr()
    assert main(["import", str(path), "--params", str(project)]) == 2
    assert "labeled twice" in capsys.readouterr().err
    assert not list((root / "data" / "labeled").glob("suggested-*.csv"))
    assert (root / "data" / "background_labels.csv").read_bytes() == labels_before


def export_of(tasks: list[dict], choices: list[dict[str, str]]) -> list[dict]:
    """What Label Studio's JSON export holds once the first tasks are annotated."""
    exported = []
    for number, task in enumerate(tasks, start=1):
        annotations = []
        if number <= len(choices):
            result = [{"id": f"r{number}{name}", "from_name": name, "to_name": "text", "type": "choices",
                       "value": {"choices": [value]}, "origin": "manual"}
                      for name, value in choices[number - 1].items()]
            result.append({"id": f"k{number}", "from_name": "kind", "to_name": "text", "type": "textarea",
                           "value": {"text": ["reviewed_queue"]}, "origin": "manual"})
            annotations.append({"id": 100 + number, "completed_by": 1, "result": result, "was_cancelled": False,
                                "ground_truth": False, "created_at": "2026-11-29T10:00:00Z",
                                "updated_at": "2026-11-29T10:00:00Z", "lead_time": 3.5, "task": number})
        exported.append({"id": number, "data": task["data"], "annotations": annotations,
                         "predictions": task["predictions"]})
    return exported


def test_label_studio_round_trip(project, tmp_path):
    params = load_params(project)
    queue(project, tmp_path / "review", "-n", "4")
    tasks = json.loads((tmp_path / "review" / "label_studio_tasks.json").read_text(encoding="utf-8"))
    exported = export_of(tasks, [{"candidacy": "no", "police_warning": "yes"}, {"candidacy": "no",
                                                                              "police_warning": "no"}])
    jsonschema.validate(exported, json.loads((SCHEMAS / "tasks_export.schema.json").read_text(encoding="utf-8")),
                        registry=_registry())
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")
    assert main(["import", str(path), "--params", str(project)]) == 0
    labels = read_background_labels(params).set_index("id")
    first, second = tasks[0]["data"]["post_id"], tasks[1]["data"]["post_id"]
    assert labels.loc[first, "police_warning"] == 1 and labels.loc[second, "police_warning"] == 0
    assert labels.loc[first, "kind"] == "reviewed_queue"
    assert tasks[2]["data"]["post_id"] not in labels.index  # not annotated: not imported


def test_label_studio_min_export(project, tmp_path):
    pool = pd.read_csv(POOL, dtype=str)
    rows = [{"id": 7, "text": pool["text"][0], "post_id": "rp-w01", "candidacy": "no", "police_warning": "yes",
             "annotator": 1, "annotation_id": 9}]
    path = tmp_path / "min.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    assert main(["import", str(path), "--params", str(project)]) == 0
    written = next((project.parent.parent / "data" / "labeled").glob("suggested-*.csv"))
    assert pd.read_csv(written)["police_warning"].tolist() == [1]


def _registry():
    from referencing import Registry, Resource

    schema = json.loads((SCHEMAS / "tasks_import.schema.json").read_text(encoding="utf-8"))
    return Registry().with_resource("tasks_import.schema.json", Resource.from_contents(schema))


BAD_CSV = {
    "label_value": ("text,candidacy,police_warning,kind\n今天天气不错,,,\n又被叫去派出所了,0,2,\n",
                    "record 2: column 'police_warning' must be 0 or 1"),
    "missing_column": ("text,candidacy,kind\n又被叫去派出所了,0,\n", "missing column 'police_warning'"),
    "kind_rule": ("text,candidacy,police_warning,kind\n约朋友去喝茶,0,1,hard_neg_tea\n", "kind 'hard_neg_tea' must"),
    "not_utf8": ("text,candidacy,police_warning\n又被约谈了,0,1\n".encode("gbk"), "not valid UTF-8"),
    "nothing_labeled": ("text,candidacy,police_warning\n又被约谈了,,\n", "no row has labels yet"),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_is_refused_with_one_line(project, tmp_path, capsys, case):
    content, message = BAD_CSV[case]
    path = tmp_path / "labels.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    capsys.readouterr()
    assert main(["import", str(path), "--params", str(project)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err and path.name in err
    assert not list((project.parent.parent / "data" / "labeled").glob("suggested-*.csv"))


def test_conflicting_labels_and_bad_exports_are_refused(project, tmp_path, capsys):
    existing = pd.read_csv(FIXTURES / "labeled" / "tiny.csv", dtype=str).iloc[0]
    flipped = "0" if existing["candidacy"] == "1" else "1"
    path = tmp_path / "conflict.csv"
    pd.DataFrame({"text": [existing["text"]], "candidacy": [flipped], "police_warning": [existing["police_warning"]]}
                 ).to_csv(path, index=False)
    exports = {"maybe.json": [{"id": 1, "data": {"text": "x", "post_id": "bg-0001"}, "annotations": [
                   {"id": 1, "was_cancelled": False, "result": [
                       {"from_name": "candidacy", "to_name": "text", "type": "choices",
                        "value": {"choices": ["maybe"]}},
                       {"from_name": "police_warning", "to_name": "text", "type": "choices",
                        "value": {"choices": ["no"]}}]}]}],
               "broken.json": "[{"}
    for name, content in exports.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    (tmp_path / "twice.csv").write_text("id,text,candidacy,police_warning,pool\nbg-0001,x,0,0,background\n"
                                        "bg-0001,x,0,1,background\n", encoding="utf-8")
    (tmp_path / "unknown.csv").write_text("id,text,candidacy,police_warning,pool\nbg-9999,x,0,0,background\n",
                                          encoding="utf-8")
    for name, message in (("conflict.csv", "labeled otherwise in tiny.csv"), ("maybe.json", "must be 'yes' or 'no'"),
                          ("broken.json", "cannot read Label Studio JSON export"), ("twice.csv", "labeled twice"),
                          ("unknown.csv", "not in the background pool")):
        capsys.readouterr()
        assert main(["import", str(tmp_path / name), "--params", str(project)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_shares_must_add_up(project, capsys):
    assert main(["--params", str(project), "--random", "0.9"]) == 2
    assert "add up to 1" in capsys.readouterr().err


def test_quotas_and_selection_respect_shares():
    assert quotas({"near_threshold": 0.4, "diverse": 0.3, "confident": 0.1, "random": 0.2}, 7) == {
        "near_threshold": 3, "diverse": 2, "confident": 1, "random": 1}
    rng = np.random.default_rng(0)
    proba = rng.random((300, 2))
    picks = select_queue(proba, np.array([0.5, 0.5]), 20, {"near_threshold": 1.0, "diverse": 0.0, "confident": 0.0,
                                                         "random": 0.0}, lambda i: True, ["a", "b"])
    margin = np.abs(np.log(proba / (1 - proba))).min(axis=1)
    assert sorted(p.index for p in picks) == sorted(np.argsort(margin)[:20].tolist())


def test_cli_in_a_real_process(project, tmp_path, cli):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,candidacy,police_warning\n又被约谈了,yes,1\n", encoding="utf-8")
    result = cli("-m", "pipeline.suggest", "import", str(bad), "--params", str(project))
    assert result.returncode == 2
    assert result.stderr.decode().strip().count("\n") == 0 and b"must be 0 or 1" in result.stderr


def test_pool_reads_ids_from_every_format(tmp_path):
    """Every post of a pool comes out once, in file order, with its id (or its row number), whatever the format."""
    texts = ["第一条", "第二条", "第三条"]
    (tmp_path / "posts.csv").write_text("id,text\na1,第一条\n,第二条\na3,第三条\n", encoding="utf-8")
    (tmp_path / "posts.jsonl").write_text('{"id": "a1", "text": "第一条"}\n{"text": "第二条"}\n'
                                          '{"id": 3, "text": "第三条"}\n', encoding="utf-8")
    (tmp_path / "posts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    pd.DataFrame({"id": ["a1", None, "a3"], "text": texts}).to_parquet(tmp_path / "posts.parquet", index=False)
    expected = {"csv": ["a1", "row-2", "a3"], "jsonl": ["a1", "row-2", "3"], "txt": ["row-1", "row-2", "row-3"],
                "parquet": ["a1", "row-2", "a3"]}
    for suffix, ids in expected.items():
        frame = read_pool(tmp_path / f"posts.{suffix}")
        assert frame["id"].tolist() == ids and frame["text"].tolist() == texts, suffix
    assert read_pool(tmp_path / "posts.csv", limit=2)["id"].tolist() == ["a1", "row-2"]
    (tmp_path / "twice.csv").write_text("id,text\nx,一\nx,二\n", encoding="utf-8")
    with pytest.raises(UserError, match="'x' occurs twice"):
        read_pool(tmp_path / "twice.csv")
    (tmp_path / "header.csv").write_text("id,text\n", encoding="utf-8")
    with pytest.raises(UserError):
        read_pool(tmp_path / "header.csv")
