"""Does a round of new writers help the writers already there? Measured paired, without threshold noise.

    python benchmarks/data_round.py jin mo     # after `dvc repro` with data/labeled/jin.csv and mo.csv in place

Leave-one-writer-out F1 (benchmarks/model_choice.py) compares two corpora through thresholds chosen on each
corpus's own validation split and calibration folds dealt out again for each, so a round that changes nothing can
move it by several thousandths. This script holds all of that fixed. The other writers' training and validation
posts are dealt into 5 folds of whole writers, the same for both arms; each fold is scored by the configured
logistic regression (C, class weights, the label's row normalisation, background posts at their weight) trained
on the other four, once without and once with the named writers' posts added to every fold's training posts.

Printed per label: over the other writers' posts, out-of-writer average precision and the best F1 any threshold
gives; and, when paths.real_dev is present, the same on the real posts (each scored by the mean of the five fold
models). Ranking only: no Platt scaling and no threshold rule, whose noise is what this avoids. Both arms share the
committed vocabulary, fitted with the new writers' posts (their words, not their labels).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FOLDS = 5


def best_f1(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y, score)
    return float(np.max(2 * precision * recall / np.maximum(precision + recall, 1e-12)))


def ranking(y: np.ndarray, score: np.ndarray) -> str:
    from sklearn.metrics import average_precision_score

    return f"{average_precision_score(y, score):.4f} | {best_f1(y, score):.4f}"


def main(argv: list[str]) -> None:
    import joblib
    from sklearn.base import clone
    from sklearn.model_selection import GroupKFold

    from pipeline import files
    from pipeline.config import load_params
    from pipeline.data import segmented_tables
    from pipeline.features import docs_of, make_norm
    from pipeline.recipe import make_linear
    from pipeline.segmenter import make_segmenter
    from pipeline.training import training_table

    params = load_params(ROOT / "configs" / "params.yaml")
    labeled, background = segmented_tables(params)
    new = set(argv)
    missing = sorted(new - set(labeled["writer"]))
    if not new or missing:
        sys.exit(f"usage: data_round.py WRITER...: name writers of data/labeled/ (not found: {', '.join(missing)})")
    table = training_table(labeled, background, params, ("train", "val"))
    featurizer = joblib.load(params.root_path(params.paths.featurizer))
    X = featurizer.transform(docs_of(table)).tocsr()
    writer = table["writer"].fillna("").to_numpy(dtype=object)
    old = np.flatnonzero(~np.isin(writer, [*new, ""]))  # the other writers' posts: scored out of writer
    added = np.flatnonzero(np.isin(writer, list(new)))
    pool = np.flatnonzero(writer == "")  # background posts
    real = files.read_table(params.root_path(params.paths.prepared) / "real_dev.parquet")
    if len(real):
        real["tokens"] = [list(d.tokens) for d in make_segmenter(params).transform(real["norm"].tolist())]
        X_real = featurizer.transform(docs_of(real))
    folds = list(GroupKFold(n_splits=FOLDS).split(old, groups=writer[old]))
    print(f"{len(np.unique(writer[old]))} other writers ({len(old)} posts) in {FOLDS} folds; "
          f"{', '.join(sorted(new))}: {len(added)} posts; {len(pool)} background posts in every fold's training")
    print("| label | new writers in training | other writers: AP | best F1 | real posts: AP | best F1 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label in params.labels:
        y, weight = table[label].to_numpy(), table["weight"].to_numpy()
        norm = make_norm(params, label)
        normalised = (lambda M: M) if norm == "passthrough" else clone(norm).fit(X).transform
        Xn, Xr = normalised(X), normalised(X_real) if len(real) else None
        for with_new in (False, True):
            out_of_writer, on_real = np.zeros(len(old)), []
            for fit_rows, held in folds:
                rows = np.concatenate([old[fit_rows], pool, added if with_new else []]).astype(int)
                linear = make_linear(params).fit(Xn[rows], y[rows], sample_weight=weight[rows])
                out_of_writer[held] = linear.decision_function(Xn[old[held]])
                if Xr is not None:
                    on_real.append(linear.decision_function(Xr))
            shown = ranking(real[label].to_numpy(), np.mean(on_real, axis=0)) if on_real else "n/a | n/a"
            print(f"| {label} | {'with' if with_new else 'without'} | {ranking(y[old], out_of_writer)} | {shown} |",
                  flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
