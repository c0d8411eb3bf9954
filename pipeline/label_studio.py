"""Label Studio's formats: the labeling config, tasks to import with the model's pre-annotations, and the labels
of an export read back.

The config shows the post, one yes/no choice per label and an optional free-text kind. An export is read in
either of Label Studio's JSON formats: the full ``JSON`` (tasks with their annotations; the latest one that was
not cancelled counts) or ``JSON_MIN`` (one flat record per task, the choices under the control names).
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import pandas as pd

from pipeline import files
from pipeline.config import Params
from pipeline.errors import UserError

YES, NO = "yes", "no"


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


def model_version(model) -> str:
    """How a task's pre-annotations name the model: its name and the start of its file's SHA-256."""
    return f"{model.card.get('name', 'model')}@{model.card['model']['sha256'][:12]}"


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


def read_export(path: Path, params: Params) -> pd.DataFrame:
    """Annotated tasks of a Label Studio JSON export (full ``JSON`` or ``JSON_MIN``); unannotated tasks skipped.

    Columns: ``id``, ``source`` (file and task, for error messages), ``writer``, ``text``, ``kind``, ``pool`` and
    one 0/1 column per label.
    """
    tasks = files.read_json(path, "Label Studio JSON export", missing=f"{path}: file not found")
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
