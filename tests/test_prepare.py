"""The prepare stage: data validation, duplicates, near-duplicate groups and the split."""

import json

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_params
from pipeline.data import prepare
from pipeline.errors import UserError
from pipeline.splits import near_duplicate_groups, split_labeled
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
             + "我决定以独立候选人身份参选朝阳区人大代表，需要十位选民联名，愿意的朋友私信我啊,1,0,own_candidacy\n"
             + "我决定以独立候选人身份参选朝阳区人大代表，需要十位选民联名，愿意的朋友私信我吧,1,0,own_candidacy\n")
    tables, summary = prepare(load_params(project))
    labeled = tables["labeled"]
    group = labeled[labeled["text"].str.startswith("我决定以独立候选人身份参选朝阳区")]
    assert len(group) == 3 and group["group"].nunique() == 1 and group["split"].nunique() == 1
    assert summary["groups_straddling_splits"] == 0


def test_near_duplicate_groups_link_transitively():
    groups = near_duplicate_groups(["今天又被国保约谈了一次", "今天又被国保约谈了两次", "明天要去茶馆喝茶聊天"], 0.5)
    assert groups[0] == groups[1] != groups[2]


def test_exact_duplicates_with_the_same_labels_are_dropped_and_counted(project, caplog):
    add_file(project, "dup.csv", HEADER + "周末约了老同学去茶馆喝茶，聊了一下午。,0,0,hard_neg_tea\n")
    tables, summary = prepare(load_params(project))
    labeled = tables["labeled"]
    assert summary["rows_dropped"]["exact_duplicate"] == 1
    assert (labeled["text"] == "周末约了老同学去茶馆喝茶，聊了一下午。").sum() == 1
    # dup.csv is read before tiny.csv, so its copy is kept even though the file is new: the summary and the log
    # say which post took which.
    assert summary["exact_duplicates"] == {"tiny.csv#42": "dup.csv#1"}
    assert "tiny.csv#42: exact duplicate of dup.csv#1, dropped" in caplog.text


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


def write_labels(project, rows: str) -> None:
    (project.parent.parent / "data" / "background_labels.csv").write_text(
        "id,candidacy,police_warning,kind\n" + rows, encoding="utf-8")


def test_background_posts_labeled_by_id_carry_their_labels(project):
    write_labels(project, "bg-0002,0,1,reported_warning\n")
    background = prepare(load_params(project))[0]["background"].set_index("id")
    assert background.loc["bg-0002", "police_warning"] == 1 and bool(background.loc["bg-0002", "labeled"])
    others = background.drop(index="bg-0002")
    assert others["police_warning"].sum() == 0 and not others["labeled"].any()


@pytest.mark.parametrize(("rows", "message"), [
    ("bg-9999,0,1,reported_warning\n", "not in the background corpus"),
    ("bg-0002,0,2,reported_warning\n", "must be 0 or 1"),
    ("bg-0002,0,1,x\nbg-0002,0,1,x\n", "labeled twice"),
])
def test_bad_labels_by_id_are_one_line_errors(project, rows, message):
    write_labels(project, rows)
    with pytest.raises(UserError, match=message):
        prepare(load_params(project))


def test_labels_by_id_never_hold_text(project):
    (project.parent.parent / "data" / "background_labels.csv").write_text(
        "id,text,candidacy,police_warning\nbg-0002,x,0,1\n", encoding="utf-8")
    with pytest.raises(UserError, match="by id only"):
        prepare(load_params(project))


def test_real_posts_are_read_for_evaluation_with_their_ambiguity(project):
    real = project.parent.parent / "real.csv"
    real.write_text("id,text,candidacy,police_warning,kind,notes\n"
                    "r1,又被请去所里聊天了,0,1,own_warning,\n"
                    "r2,周末去喝茶,0,0,hard_neg_real_tea,AMBIGUOUS: context\n", encoding="utf-8")
    params = project.read_text(encoding="utf-8").replace(
        "../shared/corpora/weibo_real_dev/posts.csv", str(real))
    project.write_text(params, encoding="utf-8")
    tables, summary = prepare(load_params(project))
    assert tables["real_dev"]["id"].tolist() == ["r1", "r2"]
    assert tables["real_dev"]["ambiguous"].tolist() == [False, True]
    assert summary["real_dev"]["labels"] == {"candidacy": 0, "police_warning": 1}


def test_absent_real_posts_are_reported_not_measured(project):
    tables, summary = prepare(load_params(project))
    assert tables["real_dev"].empty and summary["real_dev"]["present"] is False


def test_summary_counts_writers_register_and_trigger_free_positives(project):
    _, summary = prepare(load_params(project))
    assert sum(w["posts"] for w in summary["writers"].values()) == summary["posts"]
    assert 0 <= summary["register"]["without_final_punctuation"] <= 1
    for label, counts in summary["trigger_free"].items():
        assert counts["positives"] == summary["labels"][label]
        assert 0 <= counts["trigger_free"] <= counts["positives"]


def posts_frame(n: int, start: int = 0, seed: int = 0) -> pd.DataFrame:
    """``n`` labeled rows as the split sees them (ids, label columns, a near-duplicate group each, a few shared)."""
    rng = np.random.default_rng(seed)
    ids = [f"p{start + i:06d}" for i in range(n)]
    groups = np.arange(start, start + n)
    groups[1::10] = groups[::10][: len(groups[1::10])]  # every tenth post has a near-duplicate
    return pd.DataFrame({"id": ids, "group": groups, "candidacy": rng.integers(0, 2, n),
                         "police_warning": (rng.random(n) < 0.3).astype(int)})


def test_adding_posts_moves_almost_none_of_the_others_between_splits(project):
    params = load_params(project)
    before = posts_frame(2000)
    after = pd.concat([before, posts_frame(300, start=2000, seed=1)], ignore_index=True)
    first, second = split_labeled(before, params), split_labeled(after, params)
    moved = int((first != second.iloc[: len(before)]).sum())
    assert moved <= 20, f"{moved} of 2000 posts changed split when 300 were added"


def test_the_split_keeps_groups_whole_and_each_label_combination_in_proportion(project):
    params = load_params(project)
    frame = posts_frame(3000)
    frame["split"] = split_labeled(frame, params)
    assert frame.groupby("group")["split"].nunique().max() == 1
    combos = frame["candidacy"].astype(str) + frame["police_warning"].astype(str)
    shares = pd.crosstab(combos, frame["split"], normalize="index")
    assert ((shares["test"] - params.split.test_size).abs() < 0.02).all()
    assert ((shares["val"] - params.split.val_size).abs() < 0.02).all()
