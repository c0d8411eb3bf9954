"""Keyword discovery: a planted term is found, the lexicon and a user's terms are scored, a query is built."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.keyword_discovery import Searchable, boolean_query, discover
from pipeline.keywords import main
from tests.conftest import FIXTURES, ROOT

POOL = FIXTURES / "review_pool.csv"
PARAMS = str(ROOT / "configs" / "params.yaml")
PLANTED = "蓝衣服"  # a made-up euphemism for the police, in the fixture pool's warning posts and nowhere in the lexicon


@pytest.fixture
def run(real_model, monkeypatch, capsys):
    monkeypatch.setattr("pipeline.model_file.load_model", lambda path=None: real_model)

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--params", PARAMS, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def section(out: str, label: str) -> str:
    return out.split(f"## {label}")[1].split("## ")[0]


def test_planted_term_is_found_and_joins_the_query(run, tmp_path):
    seed = tmp_path / "terms.txt"
    seed.write_text("# my list\n蓝衣服\n請喝茶\n\n", encoding="utf-8")  # traditional characters are converted
    code, out, _ = run("--pool", str(POOL), "--top", "5", "--seed-terms", str(seed))
    assert code == 0
    warning = section(out, "police_warning")
    new_terms = warning.split("lexicon terms")[0].splitlines()
    ranked = [line.split()[0] for line in new_terms[3:] if line.strip()]
    assert PLANTED in ranked[:3]
    row = next(line.split() for line in new_terms if line.split()[:1] == [PLANTED])
    assert row[1:4] == ["11", "10", "0.91"]  # hits, flagged, precision: one ordinary post wears blue clothes too
    assert row[-3:] == ["rp-w01", "rp-w02", "rp-w03"]
    query = next(line for line in warning.splitlines() if line.startswith("query: "))
    assert f'"{PLANTED}"' in query and '"国保"' in query
    lexicon = warning.split("lexicon terms")[1].split("seed terms")[0]
    assert any(line.split()[:3] == ["派出所", "10", "10"] for line in lexicon.splitlines())
    seeds = warning.split("seed terms")[1]
    assert any(line.split()[:2] == ["请喝茶", "0"] for line in seeds.splitlines())
    assert PLANTED not in section(out, "candidacy").split("lexicon terms")[0]


def test_test_split_is_judged_by_its_labels(run):
    code, out, _ = run("--pool", "test", "--label", "candidacy", "--top", "5")
    assert code == 0
    assert "judged by the labels" in out and "## police_warning" not in out
    lexicon = section(out, "candidacy").split("lexicon terms")[1]
    hits = {line.split()[0]: line.split() for line in lexicon.splitlines()[2:] if line.strip()}
    assert int(hits["参选"][1]) > 0 and 0 < float(hits["参选"][3]) <= 1
    assert hits["参选"][4] == hits["参选"][1]  # on the test split, pool hits and test hits are the same posts


@pytest.mark.parametrize("argv, message", [
    (["--seed-terms", "missing.txt"], "file not found"),
    (["--label", "weather"], "--label 'weather'"),
    (["--top", "0"], "--top"),
])
def test_bad_arguments_get_one_line(run, argv, message):
    code, _, err = run("--pool", str(POOL), *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_seed_terms_in_another_encoding(run, tmp_path):
    seed = tmp_path / "gbk.txt"
    seed.write_bytes("蓝衣服\n".encode("gbk"))
    code, _, err = run("--pool", str(POOL), "--seed-terms", str(seed))
    assert code == 2 and "not valid UTF-8" in err


def test_discover_ranks_the_separating_term_first():
    rng = np.random.default_rng(0)
    words = [f"词{i:02d}" for i in range(40)]
    tokens, target = [], []
    for k in range(300):
        post = list(rng.choice(words, 6))
        flagged = k % 5 == 0
        if flagged and k % 10 == 0:
            post.append("暗号")
        tokens.append(tuple(post))
        target.append(flagged)
    texts = ["".join(t) for t in tokens]
    pool = Searchable(np.array([f"p{k}" for k in range(300)], dtype=object), texts, tokens,
                      np.array(target)[:, None], "model")
    found = discover(pool, 0, lexicon=["词00"], top=3)
    assert found["term"].iloc[0] == "暗号"
    assert found["precision"].iloc[0] == 1.0 and found["hits"].iloc[0] == 30
    assert not found["term"].str.contains("词00").any()  # the lexicon finds those already


def test_boolean_query():
    assert boolean_query(["参选", "竞选", "参选"], []) == '("参选" OR "竞选")'
    assert boolean_query(["喝茶"], ["茶馆", "下午茶"]) == '"喝茶" AND NOT ("茶馆" OR "下午茶")'
