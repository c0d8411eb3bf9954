"""Stage ``evaluate``: score the held-out test split and background posts with the saved model and the keyword
baseline, and write metrics, plot data, errors and the model's most telling features.

The test posts go through the saved pipeline from raw text, exactly as ``predict`` runs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import precision_recall_curve

from pipeline import files
from pipeline.config import Params, load_params
from pipeline.errors import cli_entry, stage_args
from pipeline.lexicon import keyword_scores, read_lexicon
from pipeline.metrics import bootstrap_prf, counts, prf, ranking_scores, wilson_interval
from pipeline.model import Model
from pipeline.model_file import load_model

log = logging.getLogger(__name__)

RECALL_GRID = np.round(np.linspace(0, 1, 101), 2)
THRESHOLD_GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)


def decision_scores(y, score, threshold: float, background_score, params: Params, with_brier: bool) -> dict:
    """Every figure of one method (model or keyword baseline) for one label, at its decision threshold."""
    cfg = params.evaluate
    decision = score >= threshold
    out: dict = {**prf(y, decision)}
    intervals = bootstrap_prf(y, decision, cfg.bootstrap, cfg.confidence, cfg.seed)
    for name, (low, high) in intervals.items():
        out[f"{name}_lo"], out[f"{name}_hi"] = low, high
    ranking = ranking_scores(y, score)
    out.update(pr_auc=ranking["pr_auc"], roc_auc=ranking["roc_auc"])
    if with_brier:
        out["brier"] = ranking["brier"]
    out.update(counts(y, decision))
    if background_score is None:
        out.update(background_far=None, background_far_lo=None, background_far_hi=None, background_flags=None)
    else:
        flags = int((background_score >= threshold).sum())
        low_high = wilson_interval(flags, len(background_score), cfg.confidence)
        out.update(background_far=flags / len(background_score), background_far_lo=low_high[0],
                   background_far_hi=low_high[1], background_flags=flags)
    return out


def interpolated_pr(y, score) -> np.ndarray:
    """Precision at each recall of RECALL_GRID: the best precision reachable at that recall or more."""
    if y.sum() == 0:
        return np.zeros(len(RECALL_GRID))
    precision, recall, _ = precision_recall_curve(y, score)
    return np.array([precision[recall >= r].max() for r in RECALL_GRID])


def threshold_table(y, score, background_score, chosen: float) -> pd.DataFrame:
    """Precision, recall, F1 and expected flags per 10,000 background posts at a grid of thresholds."""
    rows = []
    for t in sorted({*THRESHOLD_GRID.tolist(), round(chosen, 4)}):
        scores = prf(y, score >= t)
        rows.append({"threshold": t, **{k: round(v, 4) for k, v in scores.items()},
                     "flagged_share": round(float((score >= t).mean()), 4),
                     "background_flags_per_10k": None if background_score is None
                     else round(float((background_score >= t).mean() * 10_000), 1),
                     "chosen": int(t == round(chosen, 4))})
    return pd.DataFrame(rows)


def top_features(model: Model, label: str, n: int) -> dict:
    coef = model.coefficients(label)
    names = model.feature_names()
    order = np.argsort(coef)
    pick = lambda idx: [{"feature": str(names[i]), "weight": round(float(coef[i]), 4)} for i in idx]  # noqa: E731
    return {"positive": pick(order[::-1][:n]), "negative": pick(order[:n])}


def error_rows(test: pd.DataFrame, proba: np.ndarray, model: Model, limit: int) -> pd.DataFrame:
    """The test posts the model got wrong per label, the most confident mistakes first."""
    frames = []
    for j, label in enumerate(model.labels):
        threshold = model.thresholds[label]
        p = proba[:, j]
        wrong = (p >= threshold) != (test[label].to_numpy() == 1)
        part = test.loc[wrong, ["id", "kind", "text", label]].rename(columns={label: "gold"})
        part.insert(0, "label", label)
        part["prob"] = np.round(p[wrong], 4)
        part["threshold"] = round(threshold, 4)
        part["error"] = np.where(part["gold"] == 1, "false_negative", "false_positive")
        part["confidence"] = np.where(part["gold"] == 1, 1 - part["prob"], part["prob"])
        frames.append(part)
    errors = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    errors = errors.sort_values("confidence", ascending=False, kind="stable").head(limit)
    columns = ["label", "error", "prob", "threshold", "gold", "kind", "id", "text"]
    return errors[columns]


def held_out_scores(params: Params, model: Model, posts: pd.DataFrame, proba: np.ndarray, lexicon: dict) -> dict:
    """Model and keyword figures, per label, on posts never trained on (challenge writers, real posts), given the
    model's probabilities for them."""
    out: dict = {"posts": int(len(posts))}
    for j, label in enumerate(model.labels):
        y = posts[label].to_numpy()
        keyword = keyword_scores(posts["text"].tolist(), lexicon[label])
        out[label] = {"support": int(y.sum()), "negatives": int((y == 0).sum()),
                      "model": decision_scores(y, proba[:, j], model.thresholds[label], None, params, True),
                      "keyword": decision_scores(y, keyword, 1.0, None, params, False)}
    return out


def challenge_scores(params: Params, model: Model, challenge: pd.DataFrame, lexicon: dict) -> dict:
    """Figures on the independently written challenge posts (never trained on): all writers pooled, and per writer,
    since each writer is a separate test of posts written by someone else."""
    if challenge.empty:
        return {"present": False, "posts": 0,
                "note": "not measured: no challenge posts (paths.challenge is empty or absent)"}
    challenge = challenge.reset_index(drop=True)
    proba = model.predict_proba(challenge["text"].tolist())
    out = {"present": True, **held_out_scores(params, model, challenge, proba, lexicon)}
    out["writers"] = {writer: held_out_scores(params, model, part.reset_index(drop=True), proba[part.index], lexicon)
                      for writer, part in challenge.groupby("writer", sort=True)}
    return out


def real_post_scores(params: Params, model: Model, real: pd.DataFrame, lexicon: dict) -> dict:
    """Figures on real posts labeled by a third party (``paths.real_dev``, evaluation only): all of them, and
    without the rows whose label depends on context the text lacks. Only ids leave this function, never text."""
    if real.empty:
        return {"present": False, "posts": 0,
                "note": "not measured: the real development posts (paths.real_dev) were absent"}
    real = real.reset_index(drop=True)
    proba = model.predict_proba(real["text"].tolist())
    clear = ~real["ambiguous"].astype(bool).to_numpy()
    out = {"present": True, **held_out_scores(params, model, real, proba, lexicon),
           "without_ambiguous": held_out_scores(params, model, real[clear].reset_index(drop=True), proba[clear],
                                                lexicon)}
    out["mistakes"] = {label: {"false_negative": real.loc[(real[label] == 1) & (proba[:, j] < model.thresholds[label]),
                                                          "id"].tolist(),
                               "false_positive": real.loc[(real[label] == 0) & (proba[:, j] >= model.thresholds[label]),
                                                          "id"].tolist()}
                       for j, label in enumerate(model.labels)}
    return out


def background_positive_scores(model: Model, background: pd.DataFrame) -> dict:
    """Recall on the held-out background posts labeled by id as positives: real posts, found in the pool."""
    found = background[background["labeled"].astype(bool)]
    if found.empty:
        return {"present": False, "posts": 0}
    proba = model.predict_proba(found["text"].tolist())
    out: dict = {"present": True, "posts": int(len(found))}
    for j, label in enumerate(model.labels):
        positive = found[label].to_numpy() == 1
        flagged = int((proba[positive, j] >= model.thresholds[label]).sum())
        out[label] = {"positives": int(positive.sum()), "flagged": flagged,
                      "recall": flagged / int(positive.sum()) if positive.any() else None}
    return out


def evaluate(params: Params, model: Model, test: pd.DataFrame, background: pd.DataFrame,
             challenge: pd.DataFrame | None = None, real: pd.DataFrame | None = None) -> dict:
    labels = model.labels
    # Background posts labeled by id are real positives, not false alarms: reported apart.
    found = background[background["labeled"].astype(bool)] if len(background) else background
    background = background[~background["labeled"].astype(bool)] if len(background) else background
    lexicon = read_lexicon(params.root_path(params.paths.lexicon), labels)
    proba = model.predict_proba(test["text"].tolist())
    bg_proba = model.predict_proba(background["text"].tolist()) if len(background) else None
    texts = test["text"].tolist()
    plots = params.root_path(params.paths.plots)
    metrics: dict = {}
    predictions = test[["id", "kind", "text", *labels]].copy()
    for j, label in enumerate(labels):
        y = test[label].to_numpy()
        score = proba[:, j]
        keyword = keyword_scores(texts, lexicon[label])
        bg_score = None if bg_proba is None else bg_proba[:, j]
        bg_keyword = None if bg_proba is None else keyword_scores(background["text"].tolist(), lexicon[label])
        threshold = model.thresholds[label]
        metrics[label] = {
            "threshold": round(threshold, 4), "support": int(y.sum()), "posts": int(len(y)),
            "model": decision_scores(y, score, threshold, bg_score, params, with_brier=True),
            "keyword": decision_scores(y, keyword, 1.0, bg_keyword, params, with_brier=False),
        }
        predictions[f"{label}_prob"] = score
        predictions[f"{label}_keyword"] = keyword
        files.write_csv(pd.DataFrame({"recall": RECALL_GRID, "model": interpolated_pr(y, score),
                                   "keyword": interpolated_pr(y, keyword)}).round(4), plots / "pr" / f"{label}.csv")
        files.write_csv(pd.DataFrame({"actual": y, "predicted": (score >= threshold).astype(int)}),
                     plots / "confusion" / f"{label}.csv")
        files.write_csv(threshold_table(y, score, bg_score, threshold), plots / "threshold" / f"{label}.csv")
        observed, predicted = calibration_curve(y, score, n_bins=10, strategy="uniform")
        files.write_csv(pd.DataFrame({"predicted": predicted, "observed": observed, "ideal": predicted}).round(4),
                     plots / "calibration" / f"{label}.csv")
    metrics["macro"] = {method: {name: float(np.mean([metrics[label][method][name] for label in labels]))
                                 for name in ("precision", "recall", "f1")}
                        for method in ("model", "keyword")}
    metrics["background"] = ({"present": True, "posts": int(len(background))} if len(background)
                             else {"present": False, "posts": 0,
                                   "note": "not measured: the background corpus was absent or switched off"})
    metrics["challenge"] = challenge_scores(params, model, challenge if challenge is not None else test[:0], lexicon)
    metrics["real_posts"] = real_post_scores(params, model, real if real is not None else test[:0], lexicon)
    metrics["background_positives"] = background_positive_scores(model, found)
    files.write_json(metrics, params.root_path(params.paths.metrics))
    files.write_parquet(predictions, params.root_path(params.paths.test_predictions))
    files.write_csv(error_rows(test, proba, model, params.evaluate.n_errors), params.root_path(params.paths.errors))
    files.write_json({label: top_features(model, label, params.evaluate.n_top_features) for label in labels},
                  params.root_path(params.paths.top_features))
    return metrics


def main(argv: list[str] | None = None) -> None:
    args = stage_args("Evaluate the saved model on the test split and the background posts.", argv)
    params = load_params(args.params)
    model = load_model(params.root_path(params.paths.model))
    prepared = params.root_path(params.paths.prepared)
    labeled = files.read_table(Path(prepared) / "labeled.parquet")
    background = files.read_table(Path(prepared) / "background.parquet")
    challenge = files.read_table(Path(prepared) / "challenge.parquet")
    real = files.read_table(Path(prepared) / "real_dev.parquet")
    metrics = evaluate(params, model, labeled[labeled["split"] == "test"].reset_index(drop=True),
                       background[background["split"] == "test"].reset_index(drop=True), challenge, real)
    for label in model.labels:
        m, k = metrics[label]["model"], metrics[label]["keyword"]
        far = "n/a" if m["background_far"] is None else f"{m['background_far']:.3%}"
        log.info("%s: F1 %.3f [%.3f, %.3f] (keywords %.3f), background false alarms %s", label, m["f1"],
                 m["f1_lo"], m["f1_hi"], k["f1"], far)
        if metrics["challenge"]["present"]:
            c = metrics["challenge"][label]
            log.info("%s on the challenge set: F1 %.3f (keywords %.3f); per writer: %s", label, c["model"]["f1"],
                     c["keyword"]["f1"], ", ".join(f"{w} {v[label]['model']['f1']:.3f}"
                                                   for w, v in metrics["challenge"]["writers"].items()))
        if metrics["real_posts"]["present"]:
            r = metrics["real_posts"][label]
            log.info("%s on real posts: F1 %.3f [%.3f, %.3f], P %.3f R %.3f, %d of %d negatives flagged "
                     "(keywords F1 %.3f)", label, r["model"]["f1"], r["model"]["f1_lo"], r["model"]["f1_hi"],
                     r["model"]["precision"], r["model"]["recall"], r["model"]["fp"], r["negatives"],
                     r["keyword"]["f1"])


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
