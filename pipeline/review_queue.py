"""The review queue: which posts of a scored pool to label next, and the files a reviewer fills.

The queue mixes four kinds of pick, in shares the caller sets: posts near a label's threshold (where a label
changes the model most), diverse picks (the post nearest a threshold in each character n-gram cluster of the pool,
so the queue is not forty variants of one post), a random slice of the posts the model flags (so its precision is
checked, not only its doubts) and uniformly random posts (an unbiased sample of the pool). Posts already labeled,
and near-duplicates of them or of each other, are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import files
from pipeline.config import Params
from pipeline.data import labeled_files, read_background_labels, read_labeled_file
from pipeline.label_studio import label_studio_tasks, labeling_config
from pipeline.pool import NearDuplicates, ScoredPool

STRATEGIES = ("near_threshold", "diverse", "confident", "random")
DEFAULT_SHARES = {"near_threshold": 0.4, "diverse": 0.3, "confident": 0.1, "random": 0.2}


@dataclass(frozen=True)
class Pick:
    """A post chosen for the queue: its row in the pool, the strategy that chose it and why."""

    index: int
    strategy: str
    why: str


def quotas(shares: dict[str, float], size: int) -> dict[str, int]:
    """Posts per strategy: the shares of ``size``, rounded by largest remainder so they add up to ``size``."""
    raw = {name: shares[name] * size for name in STRATEGIES}
    counts = {name: int(np.floor(value)) for name, value in raw.items()}
    for name in sorted(STRATEGIES, key=lambda n: counts[n] - raw[n])[: size - sum(counts.values())]:
        counts[name] += 1
    return counts


def margins(proba: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per post and label, the distance of the label's log-odds from its threshold's: near 0 is near a threshold."""
    eps = 1e-6
    p = np.clip(proba, eps, 1 - eps)
    t = np.clip(thresholds, eps, 1 - eps)
    return np.abs(np.log(p / (1 - p)) - np.log(t / (1 - t)))


def ngram_clusters(norms: list[str], k: int, seed: int = 0, sample: int = 50_000) -> np.ndarray:
    """Cluster posts by their character 2–3-grams (TF-IDF, k-means); at most ``sample`` posts fit the centroids."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    n = len(norms)
    k = max(1, min(k, n))
    if k == 1:
        return np.zeros(n, dtype=int)
    hashed = HashingVectorizer(analyzer="char", ngram_range=(2, 3), n_features=2**16, alternate_sign=False,
                               norm=None, lowercase=False).transform(norms)
    rng = np.random.default_rng(seed)
    fit_rows = rng.choice(n, size=sample, replace=False) if n > sample else np.arange(n)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(hashed[fit_rows])
    X = tfidf.transform(hashed)
    kmeans = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=2048).fit(X[fit_rows])
    return kmeans.predict(X)


def candidates(strategy: str, proba: np.ndarray, thresholds: np.ndarray, clusters: np.ndarray | None,
               rng: np.random.Generator, labels: list[str]) -> Iterator[tuple[int, str]]:
    """The pool's posts in the order a strategy prefers them, each with why it was picked."""
    if strategy == "near_threshold":
        margin = margins(proba, thresholds)
        closest = np.argmin(margin, axis=1)
        for i in np.argsort(margin.min(axis=1), kind="stable"):
            j = closest[i]
            yield i, f"near threshold: {labels[j]} {proba[i, j]:.2f} (threshold {thresholds[j]:.2f})"
    elif strategy == "confident":
        # A random sample of what each label flags, the labels taken in turn: an estimate of precision.
        queues = [rng.permutation(np.flatnonzero(proba[:, j] >= thresholds[j])).tolist() for j in range(len(labels))]
        while any(queues):
            for j, queue in enumerate(queues):
                if queue:
                    i = queue.pop(0)
                    yield i, f"flagged: {labels[j]} {proba[i, j]:.2f}"
    elif strategy == "diverse":
        # Uncertainty spread over the pool: each cluster's post nearest a threshold, the clusters taken in turn
        # (largest first), then each one's second nearest, and so on.
        margin = margins(proba, thresholds).min(axis=1)
        order = np.lexsort((margin, clusters))
        rank = np.empty(len(order), dtype=int)
        rank[order] = np.arange(len(order)) - np.searchsorted(clusters[order], clusters[order])
        sizes = np.bincount(clusters)
        for i in order[np.lexsort((-sizes[clusters[order]], rank[order]))]:
            yield i, f"diverse: cluster {clusters[i] + 1} of {len(sizes)} ({sizes[clusters[i]]} posts)"
    elif strategy == "random":
        for i in rng.permutation(len(proba)):
            yield i, "random"
    else:
        raise ValueError(strategy)


def select_queue(proba: np.ndarray, thresholds: np.ndarray, size: int, shares: dict[str, float],
                 admit: Callable[[int], bool], labels: list[str], clusters: np.ndarray | None = None,
                 eligible: np.ndarray | None = None, seed: int = 0) -> list[Pick]:
    """The next ``size`` posts to label.

    ``admit(i)`` says whether post ``i`` may join (not a near-duplicate of a labeled or already picked post) and
    records it when it does; ``eligible`` masks the posts that may be picked at all (not labeled). A strategy that
    runs out of posts leaves its places to the random picks.
    """
    rng = np.random.default_rng(seed)
    eligible = np.ones(len(proba), dtype=bool) if eligible is None else eligible
    wanted = quotas(shares, size)
    if wanted["diverse"] and clusters is None:
        raise ValueError("diverse picks need the clusters")
    picked: list[Pick] = []
    taken: set[int] = set()
    spare = 0
    for strategy in ("confident", "near_threshold", "diverse", "random"):
        want = wanted[strategy] + (spare if strategy == "random" else 0)
        got = 0
        if want:
            for i, why in candidates(strategy, proba, thresholds, clusters, rng, labels):
                if got == want:
                    break
                if i in taken or not eligible[i] or not admit(i):
                    continue
                taken.add(int(i))
                picked.append(Pick(int(i), strategy, why))
                got += 1
        spare += want - got if strategy != "random" else 0
    return picked


def labeled_posts(params: Params) -> tuple[set[str], list[str]]:
    """Ids and texts already labeled: the labeled corpus and the background posts labeled by id."""
    ids: set[str] = set(read_background_labels(params)["id"])
    texts: list[str] = []
    folder = params.root_path(params.paths.labeled)
    for path in labeled_files(folder) if folder.is_dir() else []:
        frame = read_labeled_file(path, params)
        ids.update(i for i in frame["id"] if i)
        texts.extend(frame["text"])
    return ids, texts


def next_queue(model, params: Params, pool: ScoredPool, pool_name: str, size: int, shares: dict[str, float],
               seed: int = 0) -> tuple[pd.DataFrame, int]:
    """The queue table of the next ``size`` posts of a scored pool, and how many of the pool's posts are labeled
    already. ``pool_name`` is recorded in each row, so ``import`` knows the background pool's posts by it."""
    labels = model.labels
    ids, texts = labeled_posts(params)
    duplicates = NearDuplicates(model.normalizer.transform(texts) if texts else [],
                                params.data.near_duplicate_threshold)
    eligible = ~np.isin(pool.ids.astype(str), list(ids))
    thresholds = np.array([model.thresholds[label] for label in labels])
    wanted = quotas(shares, size)
    clusters = ngram_clusters(pool.norms, wanted["diverse"], seed=seed) if wanted["diverse"] else None
    picks = select_queue(pool.proba, thresholds, size, shares, lambda i: duplicates.admit(pool.norms[i]), labels,
                         clusters=clusters, eligible=eligible, seed=seed)
    return queue_table(pool, picks, labels, pool_name), int((~eligible).sum())


def queue_table(pool: ScoredPool, picks: list[Pick], labels: list[str], pool_name: str) -> pd.DataFrame:
    """One row per pick: the post, the model's probabilities, why it was picked, and empty label columns."""
    rows = [p.index for p in picks]
    table = pd.DataFrame({"id": pool.ids[rows], "text": pd.Series([pool.texts[i] for i in rows], dtype=object)})
    for j, label in enumerate(labels):
        table[f"{label}_prob"] = np.round(pool.proba[rows, j], 4)
    table["strategy"] = [p.strategy for p in picks]
    table["why"] = [p.why for p in picks]
    table["pool"] = pool_name
    for label in labels:
        table[label] = ""
    table["kind"] = ""
    return table


def write_queue(table: pd.DataFrame, folder: Path, labels: list[str], thresholds: dict[str, float],
                model_version: str) -> None:
    """``queue.csv`` for a spreadsheet, and Label Studio's tasks and labeling config, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():  # the queue holds pool text, which must not end up in the repository
        files.write_text("# review queues hold the pool's text: never commit them\n*\n", ignore)
    with files.atomic_path(folder / "queue.csv") as tmp:  # with a BOM, so spreadsheets open it as UTF-8
        table.to_csv(tmp, index=False, encoding="utf-8-sig")
    files.write_json(label_studio_tasks(table, labels, thresholds, model_version), folder / "label_studio_tasks.json")
    files.write_text(labeling_config(labels), folder / "label_studio_config.xml")
