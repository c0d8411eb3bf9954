"""Which segmenter: jieba or rjieba, HMM on or off? Speed and F1 of each setting, measured in one run.

    python benchmarks/segmenter_choice.py            # after `make repro` (reads data/prepared/)

For each setting the prepared posts (labeled and background) are segmented again and timed, the features and
classifiers are refitted on the training split exactly as `dvc repro` would, and each label's F1 is reported at
its threshold chosen on validation: on the validation split and on the independent challenge set. The test
split is not used, since this is a choice of parameters. Also reported: the share of posts whose tokens differ
from jieba with the same HMM setting. Speeds are characters per second of segmentation alone, and ratios to
jieba with the HMM on (the default), measured in the same run.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS = [("jieba", True), ("jieba", False), ("rjieba", True), ("rjieba", False)]


def main() -> None:
    from pipeline import files
    from pipeline.config import load_params
    from pipeline.features import docs_of, make_featurizer, training_posts
    from pipeline.metrics import prf
    from pipeline.model_file import export
    from pipeline.segmenter import make_segmenter
    from pipeline.training import train, validate

    base = load_params(ROOT / "configs" / "params.yaml")
    prepared = base.root_path(base.paths.prepared)
    if not (prepared / "labeled.parquet").exists():
        raise SystemExit("data/prepared/ is missing: run `make repro` first")
    labeled = files.read_table(prepared / "labeled.parquet")
    background = files.read_table(prepared / "background.parquet")
    challenge_path = prepared / "challenge.parquet"
    challenge = files.read_table(challenge_path) if challenge_path.exists() else None
    texts = labeled["norm"].tolist() + background["norm"].tolist()
    chars = sum(map(len, texts))
    print(f"{len(labeled):,} labeled + {len(background):,} background posts, {chars:,} characters", flush=True)

    tokens_of, rows = {}, []
    for backend, hmm in SETTINGS:
        params = dataclasses.replace(base, segment=dataclasses.replace(base.segment, backend=backend, hmm=hmm))
        segmenter = make_segmenter(params)
        segmenter.transform(texts[:100])  # load the dictionary outside the timing
        start = time.perf_counter()
        docs = segmenter.transform(texts)
        seconds = time.perf_counter() - start
        tokens_of[backend, hmm] = [doc.tokens for doc in docs]
        lab = labeled.assign(tokens=[list(d.tokens) for d in docs[: len(labeled)]])
        bg = background.assign(tokens=[list(d.tokens) for d in docs[len(labeled):]])
        featurizer = make_featurizer(params).fit(docs_of(training_posts(lab, bg)))
        pipeline, _ = train(params, lab, bg, featurizer)
        model = export(pipeline, {"labels": list(params.labels)})
        thresholds, validation = validate(params, model, lab, bg)
        row = {"backend": backend, "hmm": hmm, "chars_per_s": chars / seconds}
        if challenge is not None:
            proba = model.predict_proba(challenge["text"].tolist())
        for j, label in enumerate(params.labels):
            row[f"{label}_val_f1"] = validation[label]["f1"]
            if challenge is not None:
                decided = (proba[:, j] >= thresholds[label]).astype(int)
                row[f"{label}_challenge_f1"] = prf(challenge[label].to_numpy(), decided)["f1"]
        rows.append(row)
        print(f"  {backend} hmm={hmm}: segmented in {seconds:.1f} s, trained", flush=True)

    reference = rows[0]["chars_per_s"]
    print()
    header = ["segmenter", "chars/s", "× jieba", "posts differing from jieba"]
    labels = list(base.labels)
    header += [f"{label} F1 val / challenge" for label in labels]
    print(" | ".join(header))
    for row in rows:
        same_hmm = tokens_of["jieba", row["hmm"]]
        mine = tokens_of[row["backend"], row["hmm"]]
        differing = sum(a != b for a, b in zip(mine, same_hmm, strict=True)) / len(mine)
        cells = [f"{row['backend']} hmm={'on' if row['hmm'] else 'off'}", f"{row['chars_per_s']:,.0f}",
                 f"{row['chars_per_s'] / reference:.1f}", f"{differing:.2%}"]
        for label in labels:
            challenge_f1 = row.get(f"{label}_challenge_f1")
            on_challenge = "n/a" if challenge_f1 is None else f"{challenge_f1:.3f}"
            cells.append(f"{row[f'{label}_val_f1']:.3f} / {on_challenge}")
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
