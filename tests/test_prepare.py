"""The prepare stage: data validation, duplicates, near-duplicate groups and the split."""

import json

import pandas as pd
import pytest

from pipeline.config import load_params
from pipeline.errors import UserError
from pipeline.prepare import near_duplicate_groups, prepare
from tests.conftest import tiny_project

HEADER = "text,candidacy,police_warning,kind\n"


@pytest.fixture
def project(tmp_path):
    return tiny_project(tmp_path)


def add_file(params_path, name, content, encoding="utf-8"):
    path = params_path.parent.parent / "data" / "labeled" / name
    path.write_bytes(content.encode(encoding) if isinstance(content, str) else content)
    return path


def test_tiny_corpus_prepares_with_every_row_accounted_for(project):
    tables, summary = prepare(load_params(project))
    labeled, background = tables["labeled"], tables["background"]
    assert summary["rows_read"] == summary["posts"] + sum(summary["rows_dropped"].values())
    assert set(labeled["split"]) == {"train", "val", "test"}
    assert summary["groups_straddling_splits"] == 0
    assert len(background) == 40 and set(background["split"]) <= {"train", "val", "test"}
    assert summary["background"]["present"] is True


def test_split_is_deterministic(project):
    first = prepare(load_params(project))[0]["labeled"]
    second = prepare(load_params(project))[0]["labeled"]
    pd.testing.assert_series_equal(first["split"], second["split"])


def test_every_label_is_in_every_split(project):
    labeled = prepare(load_params(project))[0]["labeled"]
    for label in ("candidacy", "police_warning"):
        assert labeled.groupby("split")[label].sum().min() > 0


def test_near_duplicates_share_a_split(project):
    add_file(project, "dups.csv", HEADER
             + "我决定以独立候选人身份参选朝阳区人大代表，需要十位选民联名，愿意的朋友私信我！！,1,0,own_candidacy\n"
             + "我决定以独立候选人身份参选朝阳区人大代表，需要十位选民联名，愿意的朋友私信我吧,1,0,own_candidacy\n")
    tables, summary = prepare(load_params(project))
    labeled = tables["labeled"]
    group = labeled[labeled["text"].str.startswith("我决定以独立候选人身份参选朝阳区")]
    assert len(group) == 3 and group["group"].nunique() == 1 and group["split"].nunique() == 1
    assert summary["groups_straddling_splits"] == 0


def test_near_duplicate_groups_link_transitively():
    groups = near_duplicate_groups(["今天又被国保约谈了一次", "今天又被国保约谈了两次", "明天要去茶馆喝茶聊天"], 0.5)
    assert groups[0] == groups[1] != groups[2]


def test_exact_duplicates_with_the_same_labels_are_dropped_and_counted(project):
    add_file(project, "dup.csv", HEADER + "周末约了老同学去茶馆喝茶，聊了一下午。,0,0,hard_neg_tea\n")
    tables, summary = prepare(load_params(project))
    labeled = tables["labeled"]
    assert summary["rows_dropped"]["exact_duplicate"] == 1
    assert (labeled["text"] == "周末约了老同学去茶馆喝茶，聊了一下午。").sum() == 1


def test_duplicates_with_conflicting_labels_are_an_error(project):
    add_file(project, "dup.csv", HEADER + "周末约了老同学去茶馆喝茶，聊了一下午。,0,1,own_tea\n")
    with pytest.raises(UserError, match="different labels"):
        prepare(load_params(project))


def test_empty_posts_are_dropped_and_counted(project):
    add_file(project, "empty.csv", HEADER + '"   ",0,0,ordinary_life\n')
    summary = prepare(load_params(project))[1]
    assert summary["rows_dropped"]["empty"] == 1


@pytest.mark.parametrize("content, message", [
    (HEADER + "又被喝茶了,2,0,own_tea\n", r"record 1: column 'candidacy' must be 0 or 1, got '2'"),
    (HEADER + "又被喝茶了,,1,own_tea\n", "column 'candidacy' must be 0 or 1"),
    ("text,candidacy,kind\n又被喝茶了,0,own_tea\n", "missing column 'police_warning'"),
    ("post,candidacy,police_warning\n又被喝茶了,0,1\n", "missing column 'text'"),
    ("", "the file is empty"),
    (HEADER, "has a header but no rows"),
    (HEADER + "今天喝茶,0,1,hard_neg_tea\n", "kind 'hard_neg_tea' must have police_warning=0"),
])
def test_bad_labeled_files_are_named(project, content, message):
    add_file(project, "bad.csv", content)
    with pytest.raises(UserError, match=message) as err:
        prepare(load_params(project))
    assert "bad.csv" in str(err.value) or "the same post" in str(err.value)


def test_invalid_utf8_is_named(project):
    add_file(project, "gbk.csv", HEADER + "又被喝茶了,0,1,own_tea\n", encoding="gbk")
    with pytest.raises(UserError, match="gbk.csv: not valid UTF-8"):
        prepare(load_params(project))


def test_missing_background_runs_and_says_so(tmp_path):
    params_path = tiny_project(tmp_path, background=False)
    tables, summary = prepare(load_params(params_path))
    labeled, background = tables["labeled"], tables["background"]
    assert len(background) == 0 and len(labeled) > 0
    assert summary["background"]["present"] is False
    assert "not found" in summary["background"]["reason"]


def test_stage_writes_tables_and_summary(project, cli):
    result = cli("-m", "pipeline.prepare", "--params", str(project))
    assert result.returncode == 0, result.stderr.decode()
    root = project.parent.parent
    summary = json.loads((root / "reports" / "data_summary.json").read_text(encoding="utf-8"))
    assert summary["labels"]["candidacy"] > 0
    assert len(pd.read_parquet(root / "data" / "prepared" / "labeled.parquet")) == summary["posts"]
