"""Keyword discovery: the words a search for each label misses, and how good a list of search terms is.

In the spirit of King, Lam and Roberts (2017, "Computer-assisted keyword and document set discovery from
unstructured text"): the model splits a pool into a target set (the posts it flags for a label; on the test split,
the posts labeled so) and the rest, and the words and word pairs that separate the two, which the lexicon does not
already cover, are ranked by the z-score of their log-odds ratio. Each comes with its counts as a search box would
find them (substring search on the post in simplified characters and lower case, as the keyword baseline
searches), its estimated precision (of the posts holding it, the share in the target set) and a few example ids.
Any list of terms is scored the same way, with its precision on the labeled test split. The report ends with a
Boolean query per label: the lexicon's terms and the discovered ones, minus terms that mostly mark the lexicon's
false hits (``AND NOT``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Params
from pipeline.errors import UserError
from pipeline.pool import ScoredPool, default_pool, read_pool, score_pool
from pipeline.simplified import to_simplified

log = logging.getLogger("keywords")

TEST = "test"
_TERMLIKE = re.compile(r"[\u3400-\u9fffA-Za-z]")
# Terms holding a function character (我的, 的朋友) are ranked after the others at the same z: they separate the sets
# in a small pool by chance more often than they name anything a researcher would search for.
_FUNCTION = re.compile("[的了我你他她是在着吧呢吗啊也就都和]")


@dataclass
class Searchable:
    """A pool ready for term search: ids, the text as the keyword baseline searches it, tokens, the target set."""

    ids: np.ndarray
    searched: list[str]
    tokens: list[tuple[str, ...]]
    target: np.ndarray  # posts x labels, bool
    judged_by: str


def searchable(pool: ScoredPool, thresholds: np.ndarray, truth: np.ndarray | None = None) -> Searchable:
    target = truth.astype(bool) if truth is not None else pool.proba >= thresholds
    return Searchable(pool.ids, [to_simplified(t).lower() for t in pool.texts], pool.tokens, target,
                      "labels" if truth is not None else "model")


def doc_terms(tokens: tuple[str, ...], max_chars: int = 6) -> set[str]:
    """Candidate terms of one post: words of two or more characters and adjacent word pairs, joined."""
    words = [t for t in tokens if _TERMLIKE.search(t)]
    terms = {w for w in words if len(w) >= 2}
    terms.update(a + b for a, b in zip(tokens, tokens[1:], strict=False)
                 if _TERMLIKE.search(a) and _TERMLIKE.search(b) and len(a) + len(b) <= max_chars)
    return terms


def log_odds_z(hits_in: np.ndarray, size_in: int, hits_out: np.ndarray, size_out: int) -> np.ndarray:
    """z-score of the log-odds ratio of a term's document frequency in the target set against the rest."""
    a, b = hits_in + 0.5, hits_out + 0.5
    c, d = size_in - hits_in + 0.5, size_out - hits_out + 0.5
    return (np.log(a / c) - np.log(b / d)) / np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)


def term_table(terms: list[str], pool: Searchable, j: int, examples: int = 3) -> pd.DataFrame:
    """Counts of each term by substring search: hits, hits in the target set, estimated precision, example ids."""
    target = pool.target[:, j]
    rows = []
    for term in terms:
        hit = np.fromiter((term in text for text in pool.searched), dtype=bool, count=len(pool.searched))
        flagged = hit & target
        rows.append({"term": term, "hits": int(hit.sum()), "flagged": int(flagged.sum()),
                     "precision": flagged.sum() / hit.sum() if hit.any() else np.nan,
                     "examples": " ".join(map(str, pool.ids[flagged][:examples]))})
    table = pd.DataFrame(rows, columns=["term", "hits", "flagged", "precision", "examples"])
    flagged, hits = table["flagged"].to_numpy(), table["hits"].to_numpy()
    table["z"] = log_odds_z(flagged, int(target.sum()), hits - flagged, int((~target).sum()))
    return table


def discover(pool: Searchable, j: int, lexicon: list[str], top: int = 20, min_count: int = 3,
             min_precision: float = 0.5) -> pd.DataFrame:
    """The terms that best separate the target set from the rest, that no lexicon term already finds."""
    from sklearn.feature_extraction.text import CountVectorizer

    target = pool.target[:, j]
    if not target.any():
        return term_table([], pool, j)
    vectorizer = CountVectorizer(analyzer=doc_terms, binary=True)
    X = vectorizer.fit_transform(pool.tokens).tocsc()
    names = vectorizer.get_feature_names_out()
    hits_in = np.asarray(X[np.flatnonzero(target)].sum(axis=0)).ravel()
    hits_all = np.asarray(X.sum(axis=0)).ravel()
    z = log_odds_z(hits_in, int(target.sum()), hits_all - hits_in, int((~target).sum()))
    keep = (hits_in >= min_count) & (hits_in >= min_precision * hits_all)
    order = np.flatnonzero(keep)[np.argsort(-z[keep], kind="stable")]
    # Terms a lexicon term already finds (it is inside them) add nothing to a search.
    shortlist = [names[i] for i in order if not any(term in names[i] for term in lexicon)][: 5 * top]
    table = term_table(shortlist, pool, j)
    table = table[(table["flagged"] >= min_count) & (table["precision"] >= min_precision)]
    table = table.assign(plain=~table["term"].str.contains(_FUNCTION), rz=table["z"].round(6))
    table = table.sort_values(["rz", "plain"], ascending=False, kind="stable").drop(columns=["plain", "rz"])
    kept: list[str] = []
    for term in table["term"]:
        if not any(other in term for other in kept):  # a kept, shorter term finds this one's posts too
            kept.append(term)
    return table.set_index("term").loc[kept[:top]].reset_index()


def exclusions(pool: Searchable, j: int, lexicon: list[str], limit: int = 5, min_count: int = 3,
               max_precision: float = 0.1) -> list[str]:
    """Terms frequent among the lexicon's hits that are mostly not in the target set: ``AND NOT`` candidates."""
    from sklearn.feature_extraction.text import CountVectorizer

    hit = np.array([any(term in text for term in lexicon) for text in pool.searched], dtype=bool)
    if hit.sum() < min_count:
        return []
    rows = np.flatnonzero(hit)
    vectorizer = CountVectorizer(analyzer=doc_terms, binary=True)
    X = vectorizer.fit_transform([pool.tokens[i] for i in rows])
    names = vectorizer.get_feature_names_out()
    target = pool.target[rows, j]
    counts = np.asarray(X.sum(axis=0)).ravel()
    in_target = np.asarray(X[np.flatnonzero(target)].sum(axis=0)).ravel() if target.any() else np.zeros(len(names))
    good = (counts >= min_count) & (in_target <= max_precision * counts)
    order = np.flatnonzero(good)[np.argsort(-counts[good], kind="stable")]
    found = [names[i] for i in order if not any(term in names[i] or names[i] in term for term in lexicon)]
    table = term_table(found[: 5 * limit], pool, j)
    table = table[table["precision"] <= max_precision]
    return table["term"].head(limit).tolist()


def precision_on_test(terms: list[str], test: pd.DataFrame | None, label: str) -> pd.DataFrame:
    """Each term's hits and precision on the labeled test split."""
    if test is None:
        return pd.DataFrame({"term": terms, "test_hits": np.nan, "test_precision": np.nan})
    searched = [to_simplified(t).lower() for t in test["text"]]
    truth = test[label].to_numpy() == 1
    rows = []
    for term in terms:
        hit = np.fromiter((term in text for text in searched), dtype=bool, count=len(searched))
        rows.append({"term": term, "test_hits": int(hit.sum()),
                     "test_precision": (hit & truth).sum() / hit.sum() if hit.any() else np.nan})
    return pd.DataFrame(rows, columns=["term", "test_hits", "test_precision"])


def boolean_query(include: list[str], exclude: list[str]) -> str:
    """A search box's query: any of ``include``, and none of ``exclude`` (each term once, in order)."""
    def group(terms: list[str]) -> str:
        quoted = [f'"{t}"' for t in dict.fromkeys(terms)]
        return quoted[0] if len(quoted) == 1 else "(" + " OR ".join(quoted) + ")"

    query = group(include)
    return f"{query} AND NOT {group(exclude)}" if exclude else query


def read_seed_terms(path: Path) -> list[str]:
    """One term per line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise UserError(f"--seed-terms: file not found: {path}") from None
    except UnicodeDecodeError:
        raise UserError(f"--seed-terms {path}: not valid UTF-8; save it as UTF-8") from None
    terms = [to_simplified(line.strip()).lower() for line in lines if line.strip() and not line.startswith("#")]
    if not terms:
        raise UserError(f"--seed-terms {path}: no terms (one per line)")
    return list(dict.fromkeys(terms))


def read_test_split(params: Params) -> pd.DataFrame | None:
    path = params.root_path(params.paths.prepared) / "labeled.parquet"
    if not path.is_file():
        log.warning("%s not found: test-split precision is not measured (run dvc repro)", path)
        return None
    frame = pd.read_parquet(path, columns=["id", "text", "split", *params.labels])
    return frame[frame["split"] == "test"].reset_index(drop=True)


def format_table(table: pd.DataFrame) -> str:
    shown = table.copy()
    for column in ("precision", "test_precision"):
        if column in shown:
            shown[column] = shown[column].map(lambda v: "n/a" if pd.isna(v) else f"{v:.2f}")
    if "test_hits" in shown:
        shown["test_hits"] = shown["test_hits"].map(lambda v: "n/a" if pd.isna(v) else f"{int(v)}")
    if "z" in shown:
        shown["z"] = shown["z"].map(lambda v: f"{v:.1f}")
    return shown.to_string(index=False) if len(shown) else "  (none)"


def report(pool: Searchable, labels: list[str], lexicon: dict[str, list[str]], test: pd.DataFrame | None,
           seed_terms: list[str] | None, top: int, min_count: int, min_precision: float) -> list[str]:
    """The printed report: per label, discovered terms, the lexicon's terms, the seed terms and the query."""
    lines = [f"pool: {len(pool.ids):,} posts; target set judged by the {pool.judged_by}"]
    for j, label in enumerate(labels):
        size = int(pool.target[:, j].sum())
        lines += ["", f"## {label}: {size:,} posts in the target set ({size / max(len(pool.ids), 1):.2%})", "",
                  "new terms (not found by the lexicon), ranked; precision: share of its posts in the target set"]
        found = discover(pool, j, lexicon[label], top, min_count, min_precision)
        lines.append(format_table(found.merge(precision_on_test(found["term"].tolist(), test, label), on="term")
                                  [["term", "hits", "flagged", "precision", "z", "test_hits", "test_precision",
                                    "examples"]]))
        scored = [("lexicon terms (configs/lexicon.yaml)", lexicon[label])]
        if seed_terms:
            scored.append(("seed terms (--seed-terms)", seed_terms))
        for title, terms in scored:
            table = term_table(terms, pool, j).merge(precision_on_test(terms, test, label), on="term")
            table = table.sort_values(["flagged", "hits"], ascending=False, kind="stable")
            lines += ["", title,
                      format_table(table[["term", "hits", "flagged", "precision", "test_hits", "test_precision"]])]
        excluded = exclusions(pool, j, lexicon[label])
        lines += ["", f"query: {boolean_query(lexicon[label] + found['term'].tolist(), excluded)}"]
    return lines


def search_pool(model, params: Params, labels: list[str], pool: str | None, test: pd.DataFrame | None,
                text_column: str = "text", id_column: str = "id") -> Searchable:
    """The pool to search, scored for ``labels``: a file predict reads (default: the background corpus), its
    target set judged by the model; or, with ``pool="test"``, the labeled test split judged by its labels."""
    thresholds = np.array([model.thresholds[label] for label in labels])
    if pool == TEST:
        if test is None:
            raise UserError("--pool test: the prepared test split is missing (run dvc repro)")
        scored = score_pool(model, test[["id", "text"]], "test split")
        return searchable(scored, thresholds, truth=test[labels].to_numpy())
    path = Path(pool) if pool else default_pool(params)
    scored = score_pool(model, read_pool(path, text_column, id_column), path.name)
    scored.proba = scored.proba[:, [model.labels.index(label) for label in labels]]
    return searchable(scored, thresholds)
