"""Stage ``report``: one self-contained HTML page a researcher can read offline and trust.

Headline figures with their confidence intervals, the model against the keyword baseline, curves and
confusion matrices (PNG images inlined as data URIs), a threshold table with expected flags per 10,000
posts, the most telling features and the worst mistakes with their text. Chinese text is rendered as
HTML text, never inside the images, so it shows with whatever CJK font the reader's browser has.
"""

from __future__ import annotations

import base64
import html
import io as _io
import logging

import numpy as np
import pandas as pd

from pipeline import files
from pipeline.config import Params, load_params
from pipeline.errors import cli_entry, stage_args
from pipeline.text import readable

log = logging.getLogger(__name__)

MODEL_COLOUR, KEYWORD_COLOUR = "#1f5fa8", "#d9822b"


def _figure_uri(fig) -> str:
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "weibo-signals", "figure.max_open_warning": 0})
    return plt


def pr_chart(label: str, pr: pd.DataFrame, metrics: dict) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    ax.plot(pr["recall"], pr["model"], color=MODEL_COLOUR, label="model")
    ax.plot(pr["recall"], pr["keyword"], color=KEYWORD_COLOUR, linestyle="--", label="keyword baseline")
    for method, colour, marker in (("model", MODEL_COLOUR, "o"), ("keyword", KEYWORD_COLOUR, "s")):
        m = metrics[method]
        ax.scatter([m["recall"]], [m["precision"]], color=colour, marker=marker, zorder=3,
                   label=f"{method} at its threshold")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=f"{label}: precision-recall")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return _figure_uri(fig)


def threshold_chart(label: str, table: pd.DataFrame, chosen: float) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    for column, style in (("precision", "-"), ("recall", "--"), ("f1", "-.")):
        ax.plot(table["threshold"], table[column], linestyle=style, label=column)
    ax.axvline(chosen, color="grey", linewidth=0.8)
    ax.text(chosen, 0.03, f" chosen {chosen:.2f}", fontsize=7, color="grey")
    ax.set(xlabel="threshold", ylabel="score", xlim=(0, 1), ylim=(0, 1.02), title=f"{label}: scores by threshold")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    return _figure_uri(fig)


def calibration_chart(label: str, calibration: pd.DataFrame) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle=":", label="perfect calibration")
    ax.plot(calibration["predicted"], calibration["observed"], marker="o", color=MODEL_COLOUR, label="model")
    ax.set(xlabel="mean predicted probability", ylabel="observed share positive", xlim=(0, 1), ylim=(0, 1.02),
           title=f"{label}: calibration (test)")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    return _figure_uri(fig)


def confusion_chart(label: str, confusion: pd.DataFrame) -> str:
    plt = _pyplot()
    matrix = pd.crosstab(confusion["actual"], confusion["predicted"]).reindex(index=[0, 1], columns=[0, 1],
                                                                               fill_value=0).to_numpy()
    fig, ax = plt.subplots(figsize=(3.2, 2.9))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, f"{value}", ha="center", va="center", fontsize=11,
                color="white" if value > matrix.max() / 2 else "black")
    ax.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["0", "1"], yticklabels=["0", "1"], xlabel="predicted",
           ylabel="actual", title=f"{label}: confusion (test)")
    return _figure_uri(fig)


def _pct(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def _num(value, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _interval(m: dict, name: str) -> str:
    if m.get(f"{name}_lo") is None:
        return _num(m.get(name))
    return f"{m[name]:.3f} <span class=ci>[{m[name + '_lo']:.3f}, {m[name + '_hi']:.3f}]</span>"


def _esc(text) -> str:
    return html.escape(str(text))


def headline_table(labels: list[str], metrics: dict, with_far: bool = True, css: str = "headline") -> str:
    rows = []
    for label in labels:
        for method in ("model", "keyword"):
            m = metrics[label][method]
            far = ("not measured" if m["background_far"] is None else
                   f"{_pct(m['background_far'], 2)} <span class=ci>[{_pct(m['background_far_lo'], 2)}, "
                   f"{_pct(m['background_far_hi'], 2)}]</span>")
            far = f"<td>{far}</td>" if with_far else ""
            rows.append(
                f"<tr class={method}><th>{_esc(label)}</th>"
                f"<td>{'model' if method == 'model' else 'keyword baseline'}</td>"
                f"<td>{_interval(m, 'precision')}</td><td>{_interval(m, 'recall')}</td>"
                f"<td><b>{_interval(m, 'f1')}</b></td>"
                f"<td>{_num(m['pr_auc'])}</td><td>{_num(m['roc_auc'])}</td><td>{_num(m.get('brier'))}</td>"
                f"{far}</tr>")
    head = ("<tr><th>label</th><th>method</th><th>precision</th><th>recall</th><th>F1</th><th>PR-AUC</th>"
            "<th>ROC-AUC</th><th>Brier</th>" + ("<th>false alarms on real posts</th>" if with_far else "") + "</tr>")
    return f"<table class={css}>{head}{''.join(rows)}</table>"


def challenge_html(labels: list[str], challenge: dict) -> str:
    if not challenge.get("present"):
        return f"<p>{_esc(challenge.get('note', 'No challenge set.'))}</p>"
    support = ", ".join(f"{_esc(label)} {challenge[label]['support']}" for label in labels)
    writers = challenge.get("writers", {})
    head = "<tr><th>writer</th><th>posts</th>" + "".join(
        f"<th>{_esc(label)}: positives</th><th>{_esc(label)}: model F1</th><th>{_esc(label)}: keyword F1</th>"
        for label in labels) + "</tr>"
    rows = "".join(
        f"<tr><th>{_esc(writer)}</th><td>{scores['posts']}</td>" + "".join(
            f"<td>{scores[label]['support']}</td><td><b>{_interval(scores[label]['model'], 'f1')}</b></td>"
            f"<td>{_num(scores[label]['keyword']['f1'], 2)}</td>" for label in labels) + "</tr>"
        for writer, scores in writers.items())
    return (f"<p>{challenge['posts']} posts written independently to the labeling guide by {len(writers)} writers, "
            f"each of whom saw none of the training data, and never trained on (positives: {support}). The gap "
            "between these figures and the test split's estimates how much the test split flatters the model.</p>"
            + headline_table(labels, challenge, with_far=False, css="challenge")
            + f"<h3>Per writer</h3><table class=challenge>{head}{rows}</table>")


def real_posts_html(labels: list[str], real: dict, found: dict) -> str:
    """Figures on real posts labeled by a third party; their text never enters the report."""
    if not real.get("present"):
        return f"<p>{_esc(real.get('note', 'Not measured.'))}</p>"
    support = ", ".join(f"{_esc(label)} {real[label]['support']} of {real['posts']}" for label in labels)
    flagged = ", ".join(f"{_esc(label)} {real[label]['model']['fp']} of {real[label]['negatives']}"
                        for label in labels)
    clear = real["without_ambiguous"]
    found_note = ""
    if found.get("present"):
        found_note = ("<p>Real positives found in the background pool and labeled by id "
                      "(<code>data/background_labels.csv</code>), held out from training: " + ", ".join(
                          f"{_esc(label)} {found[label]['flagged']} of {found[label]['positives']} flagged"
                          for label in labels if found[label]["positives"]) + ".</p>")
    return (f"<p>{real['posts']} real microblog posts from public archives, labeled to the guide by a third party "
            f"(positives: {support}); never trained on, and never copied into this project (their text is not in "
            f"this report). Negatives flagged: {flagged}. With few positives the intervals are wide; a label with "
            "a handful of positives measures false alarms, not recall.</p>"
            + headline_table(labels, real, with_far=False, css="challenge")
            + f"<h3>Without the {real['posts'] - clear['posts']} rows whose label depends on missing context</h3>"
            + headline_table(labels, clear, with_far=False, css="challenge") + found_note)


def threshold_html(table: pd.DataFrame) -> str:
    head = ("<tr><th>threshold</th><th>precision</th><th>recall</th><th>F1</th><th>share of test posts flagged</th>"
            "<th>expected flags per 10,000 real posts</th></tr>")
    rows = []
    for row in table.itertuples(index=False):
        flags = "not measured" if pd.isna(row.background_flags_per_10k) else f"{row.background_flags_per_10k:,.1f}"
        mark = " class=chosen" if row.chosen else ""
        rows.append(f"<tr{mark}><td>{row.threshold:.2f}{' ← chosen' if row.chosen else ''}</td>"
                    f"<td>{row.precision:.3f}</td><td>{row.recall:.3f}</td><td>{row.f1:.3f}</td>"
                    f"<td>{_pct(row.flagged_share)}</td><td>{flags}</td></tr>")
    return f"<table class=thresholds>{head}{''.join(rows)}</table>"


def features_html(features: dict) -> str:
    def column(title: str, items: list[dict]) -> str:
        cells = "".join(f"<li><span class=feat>{_esc(readable(i['feature']))}</span> "
                        f"<span class=weight>{i['weight']:+.2f}</span></li>" for i in items)
        return f"<div><h4>{title}</h4><ol>{cells}</ol></div>"

    return (f"<div class=features>{column('pushes towards 1', features['positive'])}"
            f"{column('pushes towards 0', features['negative'])}</div>")


def errors_html(errors: pd.DataFrame, label: str, limit: int) -> str:
    part = errors[errors["label"] == label].head(limit)
    if part.empty:
        return "<p>No mistakes on the test split.</p>"
    rows = "".join(f"<tr><td>{'missed' if r.error == 'false_negative' else 'false alarm'}</td><td>{r.prob:.3f}</td>"
                   f"<td>{_esc(r.kind)}</td><td class=post>{_esc(r.text)}</td></tr>"
                   for r in part.itertuples(index=False))
    return ("<table class=errors><tr><th>mistake</th><th>probability</th><th>kind</th><th>post</th></tr>"
            f"{rows}</table>")


def data_html(summary: dict, labels: list[str]) -> str:
    kinds = "".join(f"<tr><td>{_esc(kind)}</td><td>{v['posts']}</td>"
                    + "".join(f"<td>{v[label]}</td>" for label in labels) + "</tr>"
                    for kind, v in sorted(summary["kinds"].items()))
    splits = "".join(f"<tr><td>{split}</td><td>{v['posts']}</td>" + "".join(f"<td>{v[label]}</td>" for label in labels)
                     + "</tr>" for split, v in summary["splits"].items())
    head = "<tr><th></th><th>posts</th>" + "".join(f"<th>{_esc(label)} = 1</th>" for label in labels) + "</tr>"
    bg = summary["background"]
    background = (f"{bg['rows']:,} real Weibo posts (train {bg['per_split']['train']:,}, validation "
                  f"{bg['per_split']['val']:,}, test {bg['per_split']['test']:,})" if bg.get("present")
                  else f"absent ({_esc(bg.get('reason', ''))}): false-alarm rates were not measured")
    return (f"<p>{summary['posts']:,} labeled posts ({summary['rows_read']:,} read; dropped: "
            f"{', '.join(f'{k} {v}' for k, v in summary['rows_dropped'].items())}); "
            f"{_pct(summary['traditional_share'])} in traditional characters; median length "
            f"{summary['length_chars']['median']} characters. Near-duplicate groups: "
            f"{summary['near_duplicate_groups']}, none straddling splits: "
            f"{'yes' if summary['groups_straddling_splits'] == 0 else 'NO'}. Background: {background}.</p>"
            f"<div class=cols><table>{head}{splits}</table><table>{head}{kinds}</table></div>")


CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Zen Hei",
"Helvetica Neue",Arial,sans-serif;margin:0 auto;max-width:1180px;padding:24px;color:#1d2329;line-height:1.5}
h1{margin-bottom:0}h2{border-bottom:2px solid #e3e7eb;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}th,td{border:1px solid #dde2e6;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f3f5f7}tr.keyword td{color:#6b5330}tr.chosen td{background:#fff4d6}
.ci{color:#6b7680;font-size:11px}.charts{display:flex;flex-wrap:wrap;gap:8px}.charts img{border:1px solid #eef0f2}
.features{display:flex;gap:40px}.features ol{margin:0;padding-left:22px;font-size:13px}.weight{color:#6b7680}
.post{max-width:640px}.cols{display:flex;gap:24px;flex-wrap:wrap}.lead{color:#4a545e}.muted{color:#6b7680;font-size:12px}
.label-section{margin-bottom:28px}
"""


def render(params: Params) -> str:
    labels = list(params.labels)
    metrics = files.read_json(params.root_path(params.paths.metrics))
    summary = files.read_json(params.root_path(params.paths.data_summary))
    card = files.read_json(params.root_path(params.paths.model_card))
    features = files.read_json(params.root_path(params.paths.top_features))
    errors = pd.read_csv(params.root_path(params.paths.errors), dtype={"text": str}, keep_default_na=False)
    plots = params.root_path(params.paths.plots)
    sections = []
    for label in labels:
        m = metrics[label]
        pr = pd.read_csv(plots / "pr" / f"{label}.csv")
        table = pd.read_csv(plots / "threshold" / f"{label}.csv")
        calibration = pd.read_csv(plots / "calibration" / f"{label}.csv")
        confusion = pd.read_csv(plots / "confusion" / f"{label}.csv")
        images = [pr_chart(label, pr, m), threshold_chart(label, table, m["threshold"]),
                  calibration_chart(label, calibration), confusion_chart(label, confusion)]
        names = ["precision-recall curve", "precision, recall and F1 by threshold", "calibration curve",
                 "confusion matrix"]
        charts = "".join(f'<img src="{uri}" alt="{_esc(label)}: {name}" width="440">' if name != "confusion matrix"
                         else f'<img src="{uri}" alt="{_esc(label)}: {name}" width="330">'
                         for uri, name in zip(images, names, strict=True))
        lift = m["model"]["f1"] - m["keyword"]["f1"]
        sections.append(
            f"<section class=label-section id='label-{_esc(label)}'><h2>{_esc(label)}</h2>"
            f"<p class=lead>Threshold {m['threshold']:.3f} (chosen on the validation split by rule "
            f"<code>{_esc(card['threshold_rule']['rule'])}</code>). "
            f"Test posts: {m['posts']} ({m['support']} positive). "
            f"F1 {m['model']['f1']:.3f} against {m['keyword']['f1']:.3f} for keyword search: "
            f"{'+' if lift >= 0 else ''}{lift:.3f}.</p>"
            f"<div class=charts>{charts}</div>"
            f"<h3>Thresholds</h3>{threshold_html(table)}"
            f"<h3>Most telling features</h3>{features_html(features[label])}"
            f"<h3>Worst mistakes</h3>{errors_html(errors, label, 15)}</section>")
    bg = metrics["background"]
    bg_note = (f"False alarms are measured on {bg['posts']:,} held-out real Weibo posts (background corpus)."
               if bg["present"] else "The background corpus was absent: false alarms on real posts were not measured.")
    versions = ", ".join(f"{k} {v}" for k, v in card["versions"].items() if v)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>weibo-signals: evaluation report</title><style>{CSS}</style></head>
<body>
<h1>weibo-signals evaluation report</h1>
<p class=muted>Model {_esc(card['model']['sha256'][:16])}… · labeled data {_esc(summary['data_sha256'][:16])}… ·
segmenter {_esc(card['segmenter']['backend'])} (HMM {'on' if card['segmenter']['hmm'] else 'off'}) ·
{_esc(versions)}</p>
<section id=headline><h2>Headline</h2>
<p>Scores on the held-out test split at each label's chosen threshold, with {params.evaluate.confidence:.0%}
bootstrap confidence intervals ({params.evaluate.bootstrap:,} resamples of the test posts). The keyword baseline
flags a post containing any term of
<code>configs/lexicon.yaml</code>. {bg_note}</p>
{headline_table(labels, metrics)}
<p>Macro average F1: model {metrics['macro']['model']['f1']:.3f},
keyword baseline {metrics['macro']['keyword']['f1']:.3f}.</p>
</section>
{''.join(sections)}
<section id=real><h2>Real posts</h2>{real_posts_html(labels, metrics['real_posts'],
                                                   metrics['background_positives'])}</section>
<section id=challenge><h2>Independent challenge writers</h2>{challenge_html(labels, metrics['challenge'])}</section>
<section id=data><h2>Data</h2>{data_html(summary, labels)}</section>
<section id=reading><h2>How to read this report</h2>
<ul>
<li><b>Precision</b>: of the posts flagged, the share that truly carry the label. <b>Recall</b>: of the posts
that carry it, the share flagged. <b>F1</b>: their harmonic mean. Brackets give the
{params.evaluate.confidence:.0%} interval.</li>
<li><b>PR-AUC</b> and <b>ROC-AUC</b> summarise ranking quality over all thresholds; <b>Brier</b> is the mean squared
error of the probabilities (lower is better).</li>
<li><b>False alarms on real posts</b>: the share of held-out real Weibo posts flagged. On a corpus where the label is
rare, this rate times the corpus size is roughly the number of false hits to read through. The background posts
are unlabeled and a few are real positives (its own README says so for <code>police_warning</code>), so the rate is
an upper bound on the false-alarm rate.</li>
<li><b>Choosing a threshold</b>: in the threshold table, pick the lowest threshold whose precision meets your need,
then pass it to predict: <code>--threshold label=0.7</code>.</li>
<li>The test posts were written to the labeling guide by the project; scores on other corpora will differ. The
confusion matrices and errors show what kind of posts the model gets wrong.</li>
</ul></section>
</body></html>
"""


def main(argv: list[str] | None = None) -> None:
    args = stage_args("Write the HTML evaluation report.", argv)
    params = load_params(args.params)
    page = render(params)
    files.write_text(page, params.root_path(params.paths.report_html))
    log.info("wrote %s (%.0f kB)", params.paths.report_html, len(page) / 1024)


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
