"""Does the review queue pay? A simulation of the labeling loop on the labeled corpus.

    python benchmarks/active_learning.py                      # prints the figures, writes active_learning.png
    python benchmarks/active_learning.py --write-readme       # and its section of benchmarks/README.md
    python benchmarks/active_learning.py --background 0 5000  # the pools to simulate

The labels of the prepared labeled corpus (``data/prepared/labeled.parquet``, i.e. ``data/labeled/``) are hidden.
Each run starts from the same small balanced seed (5 posts per label, 10 with neither), then asks for batches of
50 labels, retrains and scores the independent challenge set (``data/challenge/``, never in the pool), by three
strategies: the review queue of ``pipeline.suggest`` (default shares: near threshold, diverse, flagged, random;
near-duplicates of labeled posts skipped, as ``prepare`` groups them), uniform random sampling, pure uncertainty
sampling (the 50 posts nearest a threshold), and the queue without its checking slices (near threshold and diverse
picks only). The model is a fast version of the project's: character 1–3-gram
TF-IDF of the normalised post and a class-balanced logistic regression per label at threshold 0.5 (no word
features, no calibration), so each retraining takes a fraction of a second.

A second pool adds 20,000 background posts of the training split as negatives (those labeled by id with their
labels), as in the real loop, where nearly every post of the pool is irrelevant (``--background``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.review_queue import DEFAULT_SHARES, margins, ngram_clusters, select_queue  # noqa: E402

LABELS = ["candidacy", "police_warning"]
STRATEGIES = ("review queue", "random", "uncertainty", "queue, no checks")
# The review queue with its default shares, and without the picks that serve checking rather than learning (the
# flagged and random slices): near-threshold and diverse picks only, in the same proportion.
SHARES = {"review queue": DEFAULT_SHARES,
          "queue, no checks": {"near_threshold": 4 / 7, "diverse": 3 / 7, "confident": 0.0, "random": 0.0}}
LEVELS = (0.70, 0.75, 0.80, 0.85)
SECTION = "active_learning"
NOTES = f"<!-- {SECTION}:notes -->"


def load(backgrounds: list[int], seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The labeled posts, the challenge set and the background posts to add, read once (the prepared tables may be
    rewritten by a pipeline run meanwhile)."""
    prepared = ROOT / "data" / "prepared"
    labeled = pd.read_parquet(prepared / "labeled.parquet", columns=["id", "norm", "group", *LABELS])
    challenge = pd.read_parquet(prepared / "challenge.parquet", columns=["norm", *LABELS])
    extra = pd.DataFrame(columns=["id", "norm", *LABELS])
    if max(backgrounds, default=0):
        extra = pd.read_parquet(prepared / "background.parquet", columns=["id", "norm", "split", *LABELS])
        extra = extra[extra["split"] == "train"].sample(n=max(backgrounds), random_state=seed).drop(columns="split")
    return labeled, challenge, extra


def pool_of(labeled: pd.DataFrame, extra: pd.DataFrame, background: int) -> pd.DataFrame:
    """The labeled posts and the first ``background`` extra posts, each of those a near-duplicate group of its own."""
    extra = extra.head(background)
    extra = extra.assign(group=np.arange(len(extra)) + labeled["group"].max() + 1)
    return pd.concat([labeled, extra], ignore_index=True)


def seed_set(y: np.ndarray, rng: np.random.Generator, per_label: int = 5, negatives: int = 10) -> list[int]:
    chosen: list[int] = []
    for j in range(y.shape[1]):
        only = np.flatnonzero((y[:, j] == 1) & (y.sum(axis=1) == 1))
        chosen += rng.choice(only, per_label, replace=False).tolist()
    chosen += rng.choice(np.flatnonzero(y.sum(axis=1) == 0), negatives, replace=False).tolist()
    return chosen


def fit_predict(X, y: np.ndarray, rows: list[int], targets) -> list[np.ndarray]:
    """Per target matrix, the probabilities of a class-balanced logistic regression per label."""
    out = [np.zeros((m.shape[0], y.shape[1])) for m in targets]
    for j in range(y.shape[1]):
        model = LogisticRegression(C=4.0, class_weight="balanced", solver="liblinear")
        model.fit(X[rows], y[rows, j])
        for k, m in enumerate(targets):
            out[k][:, j] = model.predict_proba(m)[:, 1]
    return out


class GroupDuplicates:
    """Near-duplicates as prepare groups them: a post whose group holds a labeled or picked post is refused."""

    def __init__(self, groups: np.ndarray, taken: list[int]):
        self.groups = groups
        self.seen = set(groups[taken].tolist())

    def admit(self, i: int) -> bool:
        if self.groups[i] in self.seen:
            return False
        self.seen.add(self.groups[i])
        return True


def run(strategy: str, X, y, groups, clusters, Xc, yc, seed_rows, batch: int, budget: int, seed: int):
    labeled = list(seed_rows)
    curve = []
    thresholds = np.full(y.shape[1], 0.5)
    rng = np.random.default_rng(seed)
    while True:
        proba, challenge = fit_predict(X, y, labeled, [X, Xc])
        f1 = [f1_score(yc[:, j], challenge[:, j] >= 0.5, zero_division=0) for j in range(y.shape[1])]
        curve.append((len(labeled), float(np.mean(f1)), *f1))
        if len(labeled) + batch > budget:
            return curve
        eligible = np.ones(len(y), dtype=bool)
        eligible[labeled] = False
        if strategy == "random":
            new = rng.choice(np.flatnonzero(eligible), batch, replace=False).tolist()
        elif strategy == "uncertainty":
            margin = margins(proba, thresholds).min(axis=1)
            margin[~eligible] = np.inf
            new = np.argsort(margin, kind="stable")[:batch].tolist()
        else:
            duplicates = GroupDuplicates(groups, labeled)
            picks = select_queue(proba, thresholds, batch, SHARES[strategy], duplicates.admit, LABELS,
                                 clusters=clusters, eligible=eligible, seed=int(rng.integers(1 << 31)))
            new = [p.index for p in picks]
        labeled += new


def labels_to_reach(curve: pd.DataFrame, level: float) -> str:
    reached = curve[curve["f1"] >= level]
    return f"{int(reached['labels'].iloc[0]):,}" if len(reached) else "not reached"


def scenario(pool: pd.DataFrame, challenge: pd.DataFrame, args) -> tuple[pd.DataFrame, float, int]:
    """Mean learning curves of the strategies on one pool, the F1 with every pool label, the pool's size."""
    y, yc = pool[LABELS].to_numpy(), challenge[LABELS].to_numpy()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, lowercase=False)
    X = vectorizer.fit_transform(pool["norm"])  # unsupervised, on the pool's text only: the labels stay hidden
    Xc = vectorizer.transform(challenge["norm"])
    clusters = ngram_clusters(pool["norm"].tolist(), max(1, round(DEFAULT_SHARES["diverse"] * args.batch)))
    groups = pool["group"].to_numpy()
    full = fit_predict(X, y, list(range(len(y))), [Xc])[0]
    ceiling = float(np.mean([f1_score(yc[:, j], full[:, j] >= 0.5) for j in range(len(LABELS))]))
    rows = []
    for repeat in range(args.repeats):
        seed_rows = seed_set(y, np.random.default_rng(100 + repeat))
        for strategy in STRATEGIES:
            for labels, f1, *per_label in run(strategy, X, y, groups, clusters, Xc, yc, seed_rows, args.batch,
                                              args.budget, seed=repeat):
                rows.append({"strategy": strategy, "repeat": repeat, "labels": labels, "f1": f1,
                             **dict(zip(LABELS, per_label, strict=True))})
    results = pd.DataFrame(rows)
    return results.groupby(["strategy", "labels"], as_index=False)[["f1", *LABELS]].mean(), ceiling, len(pool)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="runs per strategy, each from another seed set")
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--budget", type=int, default=1020, help="labels at most, the seed set included")
    parser.add_argument("--background", type=int, nargs="+", default=[0, 20000],
                        help="pools to simulate: the labeled corpus plus this many background posts (0: alone)")
    parser.add_argument("--plot", default=str(ROOT / "benchmarks" / "active_learning.png"))
    parser.add_argument("--write-readme", action="store_true", help="write the figures into benchmarks/README.md")
    args = parser.parse_args(argv)
    texts, panels = [], []
    labeled, challenge, extra = load(args.background)
    for background in args.background:
        started = time.perf_counter()
        curves, ceiling, size = scenario(pool_of(labeled, extra, background), challenge, args)
        texts.append(report(curves, ceiling, size, background, args, time.perf_counter() - started))
        print(texts[-1] + "\n", flush=True)
        panels.append((curves, ceiling, size, background))
    plot(panels, args.plot)
    if args.write_readme:
        write_section(texts, Path(args.plot), args)
    return 0


def report(curves: pd.DataFrame, ceiling: float, pool_size: int, background: int, args, seconds: float) -> str:
    wide = curves.pivot(index="labels", columns="strategy", values="f1")[list(STRATEGIES)]
    shown = wide.loc[[n for n in wide.index if (n - wide.index[0]) % 100 == 0 or n == wide.index[-1]]]
    lines = [f"pool: {pool_size:,} posts ({background:,} of them background); challenge macro-F1 (mean of the two "
             f"labels), mean of {args.repeats} runs; batches of {args.batch}",
             f"all {pool_size:,} pool labels: F1 {ceiling:.3f}", "",
             "| labels | " + " | ".join(STRATEGIES) + " |", "| ---: | " + " | ".join("---:" for _ in STRATEGIES) + " |"]
    lines += [f"| {n:,} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for n, row in shown.iterrows()]
    lines += ["", "labels needed to reach a challenge macro-F1:", "",
              "| F1 | " + " | ".join(STRATEGIES) + " |", "| ---: | " + " | ".join("---:" for _ in STRATEGIES) + " |"]
    for level in LEVELS:
        cells = [labels_to_reach(curves[curves["strategy"] == s], level) for s in STRATEGIES]
        lines.append(f"| {level:.2f} | " + " | ".join(cells) + " |")
    lines += ["", f"({seconds:.0f} s)"]
    return "\n".join(lines)


def plot(panels: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2), dpi=110, squeeze=False)
    for axis, (curves, ceiling, size, background) in zip(axes[0], panels, strict=True):
        for strategy in STRATEGIES:
            curve = curves[curves["strategy"] == strategy]
            axis.plot(curve["labels"], curve["f1"], marker=".", label=strategy)
        axis.axhline(ceiling, color="grey", linestyle="--", linewidth=1, label=f"all {size:,} labels")
        axis.set_xlabel("labels used")
        axis.set_ylabel("challenge F1 (mean of the two labels)")
        axis.set_title(f"pool: labeled corpus + {background:,} background posts" if background
                       else "pool: labeled corpus")
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_section(texts: list[str], plot_path: Path, args) -> None:
    """Write this benchmark's section of benchmarks/README.md, between its markers; other sections stay as they are."""
    readme = ROOT / "benchmarks" / "README.md"
    start, end = f"<!-- {SECTION}:start -->", f"<!-- {SECTION}:end -->"
    lines = [start, "## Active learning: does the review queue pay?", "",
             "`python benchmarks/active_learning.py --write-readme` hides the labels of the labeled corpus, "
             "starts from a balanced seed of 20 posts (5 per label, 10 with neither) and labels batches of 50 by "
             "four strategies: the review queue of `pipeline.suggest` (default shares), uniform random sampling, "
             "pure uncertainty sampling, and the queue without its checking slices (no flagged or random picks: "
             "near-threshold and diverse picks only, 4:3). After each batch it retrains a fast version of the model "
             "(character 1–3-gram TF-IDF, class-balanced logistic regression per label, threshold 0.5) and measures "
             "F1 on the "
             "independent challenge set. The second pool adds unlabeled background posts as negatives, as in the "
             "real loop.", ""]
    for text in texts:
        head, rest = text.split("\n\n", 1)
        lines += [f"**{head.splitlines()[0].split(';')[0]}** ({head.splitlines()[1]})", "",
                  *rest.rsplit("\n\n", 1)[0].splitlines(), ""]
    current = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    # What the figures show is written by hand below a notes marker; a new run keeps it for the reader to revise.
    notes = re.search(re.escape(NOTES) + "(.*?)" + re.escape(end), current, re.S)
    lines += [f"![learning curves]({plot_path.name})", "", NOTES + (notes.group(1) if notes else "\n"), end]
    body = "\n".join(lines[:-2]) + "\n" + lines[-2] + lines[-1]
    updated = pattern.sub(lambda _: body, current) if pattern.search(current) else current.rstrip("\n") + "\n\n" + body
    readme.write_text(updated.rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
