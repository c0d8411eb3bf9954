"""The typed config (pipeline/config.py): a typo or a wrong type is a clear error, not a silent default."""

from pathlib import Path

import pytest
import yaml

from pipeline.config import load_params
from pipeline.errors import UserError

ROOT = Path(__file__).resolve().parent.parent


def write_params(tmp_path, change):
    raw = yaml.safe_load((ROOT / "configs" / "params.yaml").read_text(encoding="utf-8"))
    change(raw)
    (tmp_path / "configs").mkdir()
    path = tmp_path / "configs" / "params.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_config_loads():
    params = load_params(ROOT / "configs" / "params.yaml")
    assert params.labels == ("candidacy", "police_warning")
    assert params.train.C > 0
    assert params.root_path(params.paths.model) == ROOT / "models" / "model.npz"


@pytest.mark.parametrize("change, message", [
    (lambda r: r["train"].update(Cc=1.0), "unknown key 'Cc'"),
    (lambda r: r["train"].pop("C"), "missing key 'C'"),
    (lambda r: r["train"].update(C="strong"), "train: C must be a number"),
    (lambda r: r["train"].update(C=-1), "train.C must be positive"),
    (lambda r: r["segment"].update(backend="thulac"), "backend must be one of"),
    (lambda r: r["segment"].update(hmm="yes"), "hmm must be true or false"),
    (lambda r: r.update(labels=[]), "at least one label"),
    (lambda r: r.update(labels=["a", "a"]), "twice"),
    (lambda r: r["split"].update(test_size=0.7, val_size=0.4), "sum below 1"),
    (lambda r: r["features"].update(char_ngrams=[1, 5]), "up to 3"),
    (lambda r: r["paths"].update(model_card="models/card.json"), "paths.model_card must be"),
    (lambda r: r.update(extra_section={}), "unknown key 'extra_section'"),
    (lambda r: r["features"].update(norm_power={"police": 0.5}), "names 'police', which is not one of the labels"),
    (lambda r: r["features"].update(norm_power={"candidacy": 1.5}), "norm_power.candidacy must be from 0 to 1"),
    (lambda r: r["features"].update(norm_power={"candidacy": 0.5}, norm_floor_quantile=None), "needs features.norm_f"),
    (lambda r: r["thresholds"].update(f1_tolerance={"candidacy": 1}), "f1_tolerance.candidacy must be from 0 to below"),
    (lambda r: r["thresholds"].update(f1_tolerance=0.01), "f1_tolerance must be a mapping"),
    (lambda r: r["thresholds"].update(within_tolerance={"police": "lowest"}), "within_tolerance names 'police'"),
    (lambda r: r["thresholds"].update(within_tolerance={"candidacy": "low"}), "must be one of"),
])
def test_mistakes_are_named(tmp_path, change, message):
    path = write_params(tmp_path, change)
    with pytest.raises(UserError, match=message):
        load_params(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_params(tmp_path / "nope.yaml")


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("labels: [a, b\ntrain:\n  C: 1\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"not valid YAML \(line"):
        load_params(path)


def test_a_stage_reports_a_broken_config_in_one_line(tmp_path, cli):
    path = write_params(tmp_path, lambda r: r["train"].update(C="strong"))
    result = cli("-m", "pipeline.prepare", "--params", str(path))
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert lines == [f"error: {path}: train: C must be a number, got 'strong'"]


def test_within_tolerance_is_one_rule_or_per_label(tmp_path):
    def rules(value):
        folder = tmp_path / str(value).replace(" ", "")
        folder.mkdir()
        params = load_params(write_params(folder, lambda r: r["thresholds"].update(within_tolerance=value)))
        return [params.thresholds.within(label) for label in params.labels]

    assert rules("highest") == ["highest", "highest"]
    assert rules({"police_warning": "lowest"}) == ["middle", "lowest"]  # a label not listed: middle
