"""The review queue: which unlabeled posts to label next, and reading the labels back.

    python -m pipeline.suggest -n 200                      # from the background pool, into review/
    python -m pipeline.suggest --pool month.jsonl.gz -n 100 --near-threshold 0.5 --random 0.3
    python -m pipeline.suggest import review/queue.csv     # or a Label Studio JSON export

The queue mixes four kinds of pick, in shares set by options: posts near a label's threshold (where a label
changes the model most), diverse picks (the post nearest a threshold in each character n-gram cluster of the pool,
so the queue is not forty variants of one post), a random slice of the posts the model flags (so its precision is
checked, not only its doubts) and uniformly random posts (an unbiased sample of the pool). Posts already labeled,
and near-duplicates of them or of each other, are skipped.

Written to ``--output-dir``: ``queue.csv`` (for a spreadsheet: fill the empty label columns with 0 or 1),
``label_studio_tasks.json`` (tasks with the model's predictions as pre-annotations) and
``label_studio_config.xml`` (the labeling config to paste into the Label Studio project).

``import`` checks a filled CSV or a Label Studio JSON export as ``prepare`` checks labeled files, then writes the
posts to a new CSV in ``data/labeled/``, except posts of the background pool: their text is never copied, so
their labels are appended by id to ``paths.background_labels``. ``dvc repro`` then retrains on them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from pipeline import files
from pipeline.config import Params, load_params
from pipeline.data import check_kinds, labeled_files, read_background_labels, read_labeled_file
from pipeline.errors import ArgumentParser, UserError, cli_entry
from pipeline.pool import NearDuplicates, default_pool, read_pool, score_pool
from pipeline.text import make_normalizer

log = logging.getLogger("suggest")

STRATEGIES = ("near_threshold", "diverse", "confident", "random")
DEFAULT_SHARES = {"near_threshold": 0.4, "diverse": 0.3, "confident": 0.1, "random": 0.2}
YES, NO = "yes", "no"
BACKGROUND = "background"


# --- choosing the queue ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pick:
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
               rng: np.random.Generator, labels: list[str]):
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
                 admit, labels: list[str], clusters: np.ndarray | None = None, eligible: np.ndarray | None = None,
                 seed: int = 0) -> list[Pick]:
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


# --- writing the queue ----------------------------------------------------------------------------------------

def queue_table(pool, picks: list[Pick], labels: list[str], pool_name: str) -> pd.DataFrame:
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


def labeling_config(labels: list[str]) -> str:
    """The Label Studio labeling config: the post, one yes/no choice per label and an optional kind."""
    lines = ["<View>", '  <Header value="$post_id: $why"/>', '  <Text name="text" value="$text"/>']
    for label in labels:
        lines += [f"  <Header value={quoteattr(label + ' (see data/LABELING.md)')}/>",
                  f'  <Choices name={quoteattr(label)} toName="text" choice="single-radio" showInline="true" '
                  'required="true">',
                  f'    <Choice value="{YES}"/>', f'    <Choice value="{NO}"/>', "  </Choices>"]
    lines += ['  <Header value="kind (optional), e.g. own_candidacy, reported_warning, hard_neg_tea"/>',
              '  <TextArea name="kind" toName="text" maxSubmissions="1" editable="true"/>', "</View>"]
    return "\n".join(lines) + "\n"


def label_studio_tasks(table: pd.DataFrame, labels: list[str], thresholds: dict[str, float],
                       model_version: str) -> list[dict]:
    """Tasks in Label Studio's JSON import format, the model's decisions as pre-annotations (``predictions``)."""
    tasks = []
    for row in table.to_dict("records"):
        result = []
        for label in labels:
            p = float(row[f"{label}_prob"])
            result.append({"id": f"{label}-pred", "from_name": label, "to_name": "text", "type": "choices",
                           "value": {"choices": [YES if p >= thresholds[label] else NO]}})
        confidence = min(max(float(row[f"{label}_prob"]), 1 - float(row[f"{label}_prob"])) for label in labels)
        data = {"text": row["text"], "post_id": str(row["id"]), "pool": row["pool"], "strategy": row["strategy"],
                "why": row["why"], **{f"{label}_prob": float(row[f"{label}_prob"]) for label in labels}}
        tasks.append({"data": data, "predictions": [{"model_version": model_version, "score": round(confidence, 4),
                                                     "result": result}]})
    return tasks


def write_queue(table: pd.DataFrame, folder: Path, labels: list[str], thresholds: dict[str, float],
                model_version: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():  # the queue holds pool text, which must not end up in the repository
        files.write_text("# review queues hold the pool's text: never commit them\n*\n", ignore)
    with files.atomic_path(folder / "queue.csv") as tmp:  # with a BOM, so spreadsheets open it as UTF-8
        table.to_csv(tmp, index=False, encoding="utf-8-sig")
    files.write_json(label_studio_tasks(table, labels, thresholds, model_version), folder / "label_studio_tasks.json")
    files.write_text(labeling_config(labels), folder / "label_studio_config.xml")


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


def suggest(args: argparse.Namespace) -> int:
    from pipeline.model_file import load_model

    params = load_params(args.params)
    model = load_model(args.model)
    labels = model.labels
    pool_path = Path(args.pool) if args.pool else default_pool(params)
    is_background = pool_path.resolve() == params.root_path(params.paths.background)
    frame = read_pool(pool_path, args.text_column, args.id_column, args.encoding)
    pool = score_pool(model, frame, pool_path.name)
    ids, texts = labeled_posts(params)
    normalizer = model.normalizer
    duplicates = NearDuplicates(normalizer.transform(texts) if texts else [], params.data.near_duplicate_threshold)
    eligible = ~np.isin(pool.ids.astype(str), list(ids))
    thresholds = np.array([model.thresholds[label] for label in labels])
    wanted = quotas(args.shares, args.size)
    clusters = ngram_clusters(pool.norms, max(1, wanted["diverse"]), seed=args.seed) if wanted["diverse"] else None
    picks = select_queue(pool.proba, thresholds, args.size, args.shares, lambda i: duplicates.admit(pool.norms[i]),
                         labels, clusters=clusters, eligible=eligible, seed=args.seed)
    table = queue_table(pool, picks, labels, BACKGROUND if is_background else pool_path.name)
    version = f"{model.card.get('name', 'model')}@{model.card['model']['sha256'][:12]}"
    write_queue(table, Path(args.output_dir), labels, model.thresholds, version)
    counts = table["strategy"].value_counts().reindex(STRATEGIES, fill_value=0)
    log.info("%d posts in the pool, %d already labeled; queue of %d written to %s (%s)", len(pool),
             int((~eligible).sum()), len(table), args.output_dir, ", ".join(f"{k} {v}" for k, v in counts.items()))
    print(str(Path(args.output_dir) / "queue.csv"))
    return 0


# --- reading labels back ----------------------------------------------------------------------------------------

def read_queue_csv(path: Path, params: Params) -> pd.DataFrame:
    """A filled queue (or any labeled CSV), checked by ``prepare``'s own reader; rows left unlabeled are skipped."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, OSError):
        return read_labeled_file(path, params)  # the same one-line error prepare gives
    raw.columns = [c.strip().lstrip("\ufeff") for c in raw.columns]
    present = [label for label in params.labels if label in raw.columns]
    blank = (raw[present].apply(lambda s: s.str.strip()) == "").all(axis=1) if present else pd.Series(False,
                                                                                                       raw.index)
    kept = np.flatnonzero(~blank.to_numpy())
    if len(kept) == 0 and len(raw):
        raise UserError(f"{path}: no row has labels yet: fill the label columns with 0 or 1")
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        raw.iloc[kept].to_csv(copy, index=False)
        try:
            frame = read_labeled_file(copy, params)
        except UserError as err:
            # Name the user's file and record numbers, not the copy's.
            message = str(err).replace(str(copy), str(path))
            message = re.sub(r"record (\d+)", lambda m: f"record {kept[int(m.group(1)) - 1] + 1}", message)
            raise UserError(message) from None
    frame["source"] = [f"{path.name}#{k + 1}" for k in kept]
    frame["pool"] = raw["pool"].iloc[kept].str.strip().to_numpy() if "pool" in raw.columns else ""
    return frame


def read_label_studio(path: Path, params: Params) -> pd.DataFrame:
    """Annotated tasks of a Label Studio JSON export (full ``JSON`` or ``JSON_MIN``); unannotated tasks skipped."""
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not a Label Studio JSON export ({err.__class__.__name__})") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise UserError(f"{path}: not a Label Studio JSON export (expected a list of tasks)")
    rows = []
    for number, task in enumerate(tasks, start=1):
        where = f"{path.name}#task {task.get('id', number)}"
        values = _task_values(task, params.labels, where)
        if values is None:
            continue
        data = task.get("data", task)
        if not isinstance(data.get("text"), str):
            raise UserError(f"{where}: the task has no text")
        rows.append({"id": str(data.get("post_id", data.get("id", ""))).strip(), "source": where,
                     "writer": path.stem, "text": data["text"], "kind": values.pop("kind"),
                     "pool": str(data.get("pool", "")), **values})
    if not rows:
        raise UserError(f"{path}: no annotated task: label some tasks in Label Studio and export again")
    frame = pd.DataFrame(rows)
    too_long = frame["text"].str.len() > params.data.max_chars
    if too_long.any():
        raise UserError(f"{frame.loc[too_long, 'source'].iloc[0]}: text longer than "
                        f"data.max_chars={params.data.max_chars}")
    return frame


def _task_values(task: dict, labels: tuple[str, ...], where: str) -> dict | None:
    """The label values (0/1) and kind of one exported task; None when it has no usable annotation."""
    if "annotations" not in task:  # JSON_MIN: one flat record per task, the choices under the control names
        if not any(label in task for label in labels):
            return None
        flat = {label: task.get(label) for label in labels}
        kind = task.get("kind", "")
    else:
        done = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if not done:
            return None
        flat, kind = {}, ""
        for item in done[-1].get("result") or []:  # the latest annotation
            value = item.get("value", {})
            if item.get("type") == "choices" and item.get("from_name") in labels:
                flat[item["from_name"]] = (value.get("choices") or [None])[0]
            elif item.get("type") == "textarea" and item.get("from_name") == "kind":
                kind = " ".join(value.get("text") or [])
    out: dict = {}
    for label in labels:
        choice = flat.get(label)
        choice = choice[0] if isinstance(choice, list) and len(choice) == 1 else choice
        if choice in (YES, "1", 1):
            out[label] = 1
        elif choice in (NO, "0", 0):
            out[label] = 0
        else:
            raise UserError(f"{where}: label {label!r} must be {YES!r} or {NO!r}, got {choice!r}")
    out["kind"] = str(kind or "").strip()
    return out


def background_ids(params: Params) -> set[str]:
    path = params.root_path(params.paths.background)
    if not path.is_file():
        return set()
    return set(pd.read_csv(path, usecols=["id"], dtype=str, keep_default_na=False)["id"])


def import_labels(path: Path, params: Params, stamp: str | None = None) -> dict[str, int | str]:
    """Check a labeled file and add it to the project: pool posts by id, the others as a new labeled CSV."""
    frame = read_label_studio(path, params) if path.suffix.lower() == ".json" else read_queue_csv(path, params)
    frame["kind"] = frame["kind"].fillna("").str.strip()
    check_kinds(frame, params)
    pool_ids = background_ids(params)
    in_pool = frame["id"].isin(pool_ids).to_numpy() | (frame["pool"] == BACKGROUND).to_numpy()
    unknown = frame.loc[(frame["pool"] == BACKGROUND).to_numpy() & ~frame["id"].isin(pool_ids).to_numpy()]
    if len(unknown):
        raise UserError(f"{unknown['source'].iloc[0]}: id {unknown['id'].iloc[0]!r} is not in the background "
                        f"pool at {params.paths.background}")
    labels = list(params.labels)
    stamp = stamp or dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    result: dict[str, int | str] = {"background": 0, "labeled": 0, "unchanged": 0}
    ours = frame[~in_pool]
    if len(ours):
        ours = _new_posts(ours, params)
        result["unchanged"] += int(ours.attrs["unchanged"])
        if len(ours):
            target = params.root_path(params.paths.labeled) / f"suggested-{stamp}.csv"
            if target.exists():
                raise UserError(f"{target} exists already")
            out = ours.assign(kind=ours["kind"].replace("", "reviewed"))[["id", "text", *labels, "kind"]]
            out["id"] = out["id"].where(out["id"] != "", None)
            files.write_csv(out, target)
            result["labeled"], result["labeled_file"] = len(out), str(target)
    theirs = frame[in_pool]
    conflicting = theirs.groupby("id")[labels].nunique().max(axis=1) > 1
    if conflicting.any():
        bad = conflicting[conflicting].index[0]
        raise UserError(f"{theirs.loc[theirs['id'] == bad, 'source'].iloc[-1]}: id {bad!r} is labeled twice, "
                        "differently")
    if len(theirs):
        existing = read_background_labels(params)
        merged = theirs.merge(existing, on="id", how="left", suffixes=("", "_old"))
        again = merged[merged[f"{labels[0]}_old"].notna()]
        differ = again[(again[labels].to_numpy() != again[[f"{x}_old" for x in labels]].to_numpy()).any(axis=1)]
        if len(differ):
            raise UserError(f"{differ['source'].iloc[0]}: id {differ['id'].iloc[0]!r} is already labeled otherwise "
                            f"in {params.paths.background_labels}: correct it there")
        new = theirs[~theirs["id"].isin(existing["id"])].drop_duplicates("id")
        result["unchanged"] += len(theirs) - len(new)
        if len(new):
            new = new.assign(kind=new["kind"].replace("", "background_labeled"))
            target = params.root_path(params.paths.background_labels)
            columns = ["id", *labels, "kind"]
            if target.is_file():
                header = pd.read_csv(target, nrows=0).columns.tolist()
                columns = header if set(header) >= set(columns) else columns
            combined = pd.concat([existing, new[["id", "kind", *labels]]], ignore_index=True)
            files.write_csv(combined.reindex(columns=columns), target)
            result["background"] = len(new)
    return result


def _new_posts(frame: pd.DataFrame, params: Params) -> pd.DataFrame:
    """Posts not yet in the labeled corpus; the same post labeled otherwise there is an error (prepare would stop)."""
    normalizer = make_normalizer(params)
    labels = list(params.labels)
    folder = params.root_path(params.paths.labeled)
    existing = pd.concat([read_labeled_file(p, params) for p in labeled_files(folder)], ignore_index=True) \
        if folder.is_dir() and any(folder.glob("*.csv")) else pd.DataFrame(columns=["text", "source", *labels])
    known = dict(zip(normalizer.transform(existing["text"].tolist()),
                     zip(existing["source"], existing[labels].itertuples(index=False, name=None), strict=True),
                     strict=True))
    norms = normalizer.transform(frame["text"].tolist())
    keep = []
    for norm, row in zip(norms, frame.itertuples(index=False), strict=True):
        values = tuple(getattr(row, label) for label in labels)
        if norm in known:
            source, old = known[norm]
            if tuple(old) != values:
                raise UserError(f"{row.source}: the same post is labeled otherwise in {source}")
            keep.append(False)
        else:
            known[norm] = (row.source, values)
            keep.append(True)
    kept = frame[keep].copy()
    kept.attrs["unchanged"] = len(frame) - len(kept)
    return kept


# --- command line -----------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["import"]:
        parser = ArgumentParser(prog="python -m pipeline.suggest import",
                                description="Add a labeled review queue (CSV) or Label Studio JSON export.")
        parser.add_argument("file", help="the filled queue.csv, any labeled CSV, or a Label Studio JSON export")
        parser.add_argument("--params", default="configs/params.yaml")
        args = parser.parse_args(argv[1:])
        args.command = "import"
        return args
    parser = ArgumentParser(prog="python -m pipeline.suggest",
                            description="Write the next posts worth labeling (then: suggest import FILE).")
    parser.add_argument("--params", default="configs/params.yaml")
    parser.add_argument("-m", "--model", help="model file (default: models/model.joblib)")
    parser.add_argument("--pool", help="unlabeled posts, any format predict reads (default: paths.background)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--id-column", default="id")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("-n", "--size", type=int, default=100, help="posts in the queue (default 100)")
    for name in STRATEGIES:
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=DEFAULT_SHARES[name],
                            help=f"share of {name.replace('_', ' ')} picks (default {DEFAULT_SHARES[name]})")
    parser.add_argument("-o", "--output-dir", default="review", help="where the queue goes (default: review/)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.command = "suggest"
    args.shares = {name: getattr(args, name) for name in STRATEGIES}
    if args.size < 1:
        parser.error("--size must be at least 1")
    if any(v < 0 for v in args.shares.values()) or not np.isclose(sum(args.shares.values()), 1.0):
        parser.error("the shares (--near-threshold, --diverse, --confident, --random) must be >= 0 and add up to 1")
    return args


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "import":
        params = load_params(args.params)
        result = import_labels(Path(args.file), params)
        print(json.dumps(result, ensure_ascii=False))
        return 0
    return suggest(args)


if __name__ == "__main__":
    raise SystemExit(main())
