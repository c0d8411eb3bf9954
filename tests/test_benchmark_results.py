"""benchmarks/model_choice.py keeps every option's result when runs of different options overlap."""

from __future__ import annotations

import importlib.util
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("model_choice", ROOT / "benchmarks" / "model_choice.py")
model_choice = sys.modules.setdefault("model_choice", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(model_choice)


def test_record_adds_an_option_and_keeps_the_others(tmp_path):
    path = tmp_path / "model_choice.json"
    path.write_text(json.dumps({"old": {"f1": 0.5}}), encoding="utf-8")
    model_choice.record(path, "new", {"f1": 0.9})
    model_choice.record(path, "old", {"f1": 0.6})
    assert json.loads(path.read_text(encoding="utf-8")) == {"old": {"f1": 0.6}, "new": {"f1": 0.9}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model_choice.json", "model_choice.lock"]


def test_overlapping_runs_keep_each_others_results(tmp_path):
    path = tmp_path / "model_choice.json"
    names = [f"option_{i}" for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda name: model_choice.record(path, name, {"seconds": 1.0}), names))
    assert sorted(json.loads(path.read_text(encoding="utf-8"))) == sorted(names)
