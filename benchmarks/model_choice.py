"""Which model generalises best? Each option measured on writers and real posts the model never saw.

    python benchmarks/model_choice.py                    # every option (about 3 minutes each on 2 cores)
    python benchmarks/model_choice.py default no_aliases # only these
    python benchmarks/model_choice.py --quick ...        # without leave-one-writer-out (a minute an option)

The test split shares writers with the training posts, so it cannot choose a model that must read other people's
posts. For each option (a set of overrides of configs/params.yaml) this script reports:

* **leave-one-writer-out** (LOWO): for each writer of data/labeled/, the model is trained on the other writers'
  training posts (plus the background posts), its thresholds chosen on their validation posts, and it scores every
  post of the held-out writer; F1 is computed over all those out-of-writer predictions pooled. To keep an option
  to minutes, the folds use 3 calibration folds instead of the configured number, and the word and character
  vocabulary is fitted once on all training posts (no labels are used there). Each writer's own F1 and errors are
  kept too (`per_writer` in the JSON), to show which writers the pooled figure hides.
* the model trained as `dvc repro` trains it, scored on the **challenge writers** (data/challenge/, each file one
  writer who saw nothing of ours), on the **real posts** of paths.real_dev (evaluation only), and on the held-out
  **background** posts (false-alarm rate).

The test split is never used. Figures are printed as a table and written to benchmarks/model_choice.json.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# name -> overrides, "section.key": value. Each option starts from configs/params.yaml as committed.
OPTIONS: dict[str, dict] = {
    "default": {},
    "keep_punctuation": {"normalize.punctuation": "keep"},
    "no_aliases": {"normalize.aliases": False},
    "previous_model": {"normalize.punctuation": "keep", "normalize.aliases": False, "normalize.urls": "token",
                       "normalize.emoji": "text", "background.weight": 0.5, "features.char_ngrams": (1, 3),
                       "features.min_word_chars": 1},
    "background_weight_0.5": {"background.weight": 0.5},
    "background_weight_0": {"background.weight": 0.0},
    "background_weight_0_far_cap": {"background.weight": 0.0, "thresholds.max_background_far": 0.0005},
    "background_weight_0.02_far_cap": {"background.weight": 0.02, "thresholds.max_background_far": 0.0005},
    "far_cap": {"thresholds.max_background_far": 0.0005},
    "char_unigrams": {"features.char_ngrams": (1, 3)},
    "chars_2_only": {"features.char_ngrams": (2, 2)},
    "word_trigrams": {"features.word_ngrams": (1, 3)},
    "emoji_and_urls_kept": {"normalize.urls": "token", "normalize.emoji": "text"},
    "single_char_words": {"features.min_word_chars": 1},
    "mentions_dropped": {"normalize.mentions": "drop", "normalize.reposts": "drop"},
    "hashtags_dropped": {"normalize.hashtags": "drop"},
    "crawl_text_kept": {"normalize.html_entities": "keep", "normalize.weibo_interface": "keep"},
    "calibration_by_post": {"train.calibration_groups": "post"},
    "C_1": {"train.C": 1.0},
    "C_4": {"train.C": 4.0},
    "C_16": {"train.C": 16.0},
    "C_64": {"train.C": 64.0},
    "C_256": {"train.C": 256.0},
    "C_1024": {"train.C": 1024.0},
    "embedded_2000": {"background.embedded_posts": 2000},
    "embedded_6000": {"background.embedded_posts": 6000},
    "f1_tolerance_0.01": {"thresholds.f1_tolerance": {"candidacy": 0.01, "police_warning": 0.01}},
    "f1_tolerance_0.02": {"thresholds.f1_tolerance": {"candidacy": 0.02, "police_warning": 0.02}},
    "police_norm_power_0": {"features.norm_power": {"candidacy": 1.0, "police_warning": 0.0}},
    "police_norm_power_0.25": {"features.norm_power": {"candidacy": 1.0, "police_warning": 0.25}},
    "norm_power_0.5_both": {"features.norm_power": {"candidacy": 0.5, "police_warning": 0.5}},
    "police_norm_power_1": {"features.norm_power": {"candidacy": 1.0, "police_warning": 1.0}},
    "candidacy_f1_tolerance_0.01": {"thresholds.f1_tolerance": {"candidacy": 0.01}},
    "middle_within_0.01": {"thresholds.f1_tolerance": {"candidacy": 0.01, "police_warning": 0.01},
                           "thresholds.within_tolerance": "middle"},
    "middle_within_0.005": {"thresholds.f1_tolerance": {"candidacy": 0.005, "police_warning": 0.005},
                            "thresholds.within_tolerance": "middle"},
    "middle_within_0.005_far_0.5%": {"thresholds.within_tolerance": "middle", "thresholds.max_background_far": 0.005},
    "lowest_within_far_cap": {"thresholds.within_tolerance": "lowest", "thresholds.max_background_far": 0.0005},
    "middle_within_far_cap": {"thresholds.within_tolerance": "middle", "thresholds.max_background_far": 0.0005},
    "no_concepts": {"features.concepts": False, "features.concept_pairs": False},
    "no_concept_pairs": {"features.concept_pairs": False},
    "no_scope": {"features.scope_window": 0},
    "no_concepts_no_scope": {"features.concepts": False, "features.concept_pairs": False, "features.scope_window": 0},
    "scope_window_5": {"features.scope_window": 5},
    "held_out_validation": {"train.validation": "held_out"},
}


def with_overrides(params, overrides: dict):
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        params = dataclasses.replace(params, **{section: dataclasses.replace(getattr(params, section), **{key: value})})
    return params


def segmented(params, cache: dict):
    """Prepared and segmented tables for these params (normalisation and segmentation cached across options)."""
    from pipeline.data import prepare
    from pipeline.segmenter import make_segmenter

    key = (params.normalize, params.segment)
    if key not in cache:
        tables, _ = prepare(params)
        segmenter = make_segmenter(params)
        for name in ("labeled", "background"):
            tables[name]["tokens"] = [list(d.tokens) for d in segmenter.transform(tables[name]["norm"].tolist())]
        cache[key] = tables
    return cache[key]


def scores(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict:
    from pipeline.metrics import prf

    return {k: round(v, 4) for k, v in prf(y, proba >= threshold).items()}


def fit(params, labeled, background, featurizer):
    """Train and choose thresholds as the train stage does; returns the scoring model."""
    from pipeline.model_file import export
    from pipeline.training import train, validate

    pipeline, training = train(params, labeled, background, featurizer)
    model = export(pipeline, {"labels": list(params.labels)})
    thresholds, _ = validate(params, model, labeled, background, training.get("writer_folds"))
    model.card["thresholds"] = thresholds
    return model


def _fold(params, labeled, background, featurizer, writer):
    held = labeled["writer"] == writer
    model = fit(params, labeled[~held], background, featurizer)
    return (held.to_numpy(), model.predict_proba(labeled.loc[held, "text"].tolist()),
            np.array([model.thresholds[label] for label in params.labels]))


def out_of_writer(params, labeled, background, featurizer) -> tuple[np.ndarray, np.ndarray]:
    """For each labeled post (rows in order), the probabilities and thresholds of the model that held its writer
    out. The folds use 3 calibration folds instead of the configured number, to keep a run to minutes."""
    from joblib import Parallel, delayed

    fold_params = dataclasses.replace(params, train=dataclasses.replace(params.train, calibration_folds=3))
    writers = sorted(labeled["writer"].unique())
    proba = np.zeros((len(labeled), len(params.labels)))
    thresholds = np.zeros_like(proba)
    for held, p, t in Parallel(n_jobs=2)(delayed(_fold)(fold_params, labeled, background, featurizer, w)
                                         for w in writers):
        proba[held], thresholds[held] = p, t
    return proba, thresholds


def leave_one_writer_out(params, labeled, background, featurizer) -> dict:
    from pipeline.metrics import prf

    labeled = labeled.reset_index(drop=True)
    writers = sorted(labeled["writer"].unique())
    proba, thresholds = out_of_writer(params, labeled, background, featurizer)
    decisions = proba >= thresholds
    out: dict = {"writers": len(writers)}
    for j, label in enumerate(params.labels):
        y = labeled[label].to_numpy()
        out[label] = {k: round(v, 4) for k, v in prf(y, decisions[:, j]).items()}
        out[label]["per_writer"] = {}  # which held-out writers the pooled figure hides
        for writer in writers:
            mine = (labeled["writer"] == writer).to_numpy()
            out[label]["per_writer"][writer] = {
                "posts": int(mine.sum()), "positives": int(y[mine].sum()),
                "f1": round(prf(y[mine], decisions[mine, j])["f1"], 4) if y[mine].any() else None,
                "false_positives": int((decisions[mine, j] & (y[mine] == 0)).sum()),
                "false_negatives": int((~decisions[mine, j] & (y[mine] == 1)).sum())}
    return out


def held_out(params, model, tables) -> dict:
    out: dict = {}
    challenge, real, background = tables["challenge"], tables["real_dev"], tables["background"]
    for j, label in enumerate(params.labels):
        threshold = model.thresholds[label]
        entry: dict = {}
        if len(challenge):
            proba = model.predict_proba(challenge["text"].tolist())[:, j]
            entry["challenge"] = scores(challenge[label].to_numpy(), proba, threshold)
            entry["challenge_writers"] = {
                w: scores(challenge.loc[part, label].to_numpy(), proba[part.to_numpy()], threshold)["f1"]
                for w, part in ((w, challenge["writer"] == w) for w in sorted(challenge["writer"].unique()))}
        if len(real):
            proba = model.predict_proba(real["text"].tolist())[:, j]
            entry["real"] = scores(real[label].to_numpy(), proba, threshold)
            entry["real_negatives_flagged"] = int(((real[label] == 0) & (proba >= threshold)).sum())
        test = background[(background["split"] == "test") & ~background["labeled"]]
        if len(test):
            entry["background_far"] = round(float((model.predict_proba(test["text"].tolist())[:, j] >= threshold)
                                                  .mean()), 6)
        out[label] = entry
    return out


def run_option(name: str, base, cache: dict, quick: bool = False) -> dict:
    from pipeline.features import docs_of, make_featurizer, training_posts

    started = time.perf_counter()
    params = with_overrides(base, OPTIONS[name])
    tables = segmented(params, cache)
    labeled, background = tables["labeled"], tables["background"]
    featurizer = make_featurizer(params).fit(docs_of(training_posts(labeled, background)))
    model = fit(params, labeled, background, featurizer)
    result = {"option": name, "overrides": {k: list(v) if isinstance(v, tuple) else v
                                            for k, v in OPTIONS[name].items()},
              "lowo": None if quick else leave_one_writer_out(params, labeled, background, featurizer),
              **held_out(params, model, tables), "seconds": round(time.perf_counter() - started, 1)}
    return result


def row(result: dict, labels) -> str:
    cells = [result["option"]]
    for label in labels:
        entry = result[label]
        cells += [f"{result['lowo'][label]['f1']:.3f}" if result["lowo"] else "not run",
                  f"{entry['challenge']['f1']:.3f}" if "challenge" in entry else "n/a",
                  "/".join(f"{v:.2f}" for v in entry.get("challenge_writers", {}).values()) or "n/a",
                  f"{entry['real']['f1']:.3f} ({entry['real']['precision']:.2f}/{entry['real']['recall']:.2f}, "
                  f"{entry['real_negatives_flagged']} neg)" if "real" in entry else "n/a",
                  f"{entry['background_far']:.4%}" if "background_far" in entry else "n/a"]
    return "| " + " | ".join(cells) + " |"


def main(argv: list[str]) -> None:
    from pipeline.config import load_params

    base = load_params(ROOT / "configs" / "params.yaml")
    quick = "--quick" in argv
    names = [a for a in argv if a != "--quick"] or list(OPTIONS)
    unknown = [n for n in names if n not in OPTIONS]
    if unknown:
        raise SystemExit(f"unknown option {unknown[0]!r}; options: {', '.join(OPTIONS)}")
    labels = list(base.labels)
    header = ["option"] + [f"{label} {what}" for label in labels
                           for what in ("LOWO F1", "challenge F1", "per writer", "real F1 (P/R, negatives flagged)",
                                        "background FAR")]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header), flush=True)
    cache: dict = {}
    for name in names:
        result = run_option(name, base, cache, quick)
        print(row(result, labels), flush=True)
        record(ROOT / "benchmarks" / "model_choice.json", name, result)


def record(path: Path, name: str, result: dict) -> None:
    """Write one option's result into the JSON of all options. The file is read again just before, under a lock,
    and replaced whole, so runs of different options at once keep each other's results."""
    import fcntl
    import os

    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        results[name] = result
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(partial, path)


if __name__ == "__main__":
    main(sys.argv[1:])
