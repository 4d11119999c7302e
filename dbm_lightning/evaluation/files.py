"""``dbm-evaluate`` from Python: score a ``dbm-predict`` folder against human label files and
write the tables (CSV, JSON, Markdown) and the normalised confusion matrix (PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.atomic import write_atomic, write_json_atomic
from dbm_lightning.errors import DataFormatError
from dbm_lightning.evaluation.scores import DEFAULT_IOU, Scores, score_session
from dbm_lightning.io.labels import name_key
from dbm_lightning.labeling import FileLabeler
from dbm_lightning.prediction.outputs import (
    SUMMARY_FILE,
    frames_path,
    read_frames_table,
    read_summary,
    valid_mask,
)
from dbm_lightning.session import UNLABELLED

OUTPUTS = {
    "classes": "scores.csv",
    "sessions": "sessions.csv",
    "json": "evaluation.json",
    "markdown": "evaluation.md",
    "confusion": "confusion.png",
}
"""What :func:`write_evaluation` writes into its folder."""


@dataclass
class Evaluation:
    """Pooled and per-session scores of one prediction folder."""

    total: Scores
    sessions: dict[str, Scores] = field(default_factory=dict)
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def session_table(self) -> pd.DataFrame:
        """One row per session: its frame counts and scores."""
        rows = []
        for name, scores in self.sessions.items():
            rows.append({"session": name, **self.sources.get(name, {}), **scores.summary()})
        return pd.DataFrame(rows)

    def class_table(self) -> pd.DataFrame:
        """One row per class, pooled over the sessions."""
        return pd.DataFrame(self.total.per_class())

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: the pooled summary, the per-class rows, the confusion counts and every
        session's summary."""
        return {
            "summary": self.total.summary(),
            "classes": self.total.per_class(),
            "class_names": list(self.total.class_names),
            "confusion": self.total.confusion.tolist(),
            "sessions": {
                name: {**self.sources.get(name, {}), **s.summary()}
                for name, s in self.sessions.items()
            },
        }


def align_classes(
    predicted: Sequence[str], true: Sequence[str]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One class list for a model's classes and a label file's (names compared without case
    or surrounding spaces): the model's classes in order, then the label file's others.
    Returns the names and the index maps ``predicted -> joint``, ``true -> joint``."""
    names = list(predicted)
    keys = {name_key(n): i for i, n in enumerate(names)}
    for n in true:
        if name_key(n) not in keys:
            keys[name_key(n)] = len(names)
            names.append(str(n))
    pred_map = np.array([keys[name_key(n)] for n in predicted], dtype=np.int64)
    true_map = np.array([keys[name_key(n)] for n in true], dtype=np.int64)
    return names, pred_map, true_map


def evaluate_predictions(
    pred_dir: str | Path,
    labeler: FileLabeler,
    iou: float = DEFAULT_IOU,
    sessions: Sequence[str] | None = None,
) -> Evaluation:
    """Score every session of a ``dbm-predict`` folder against its human labels.

    Parameters
    ----------
    pred_dir
        The folder ``dbm-predict --out`` wrote (its ``summary.json`` names each session's
        pose file and frames table).
    labeler
        Finds and reads each session's label file relative to its pose file
        (:class:`~dbm_lightning.labeling.FileLabeler`: pattern, format, stream, rename,
        ignore ...). The label file must have the frames of the pose file.
    iou
        Bout-matching threshold.
    sessions
        Only these sessions (default: all).

    Raises
    ------
    DataFormatError
        A missing or malformed summary, frames table or label file (named).
    """
    pred_dir = Path(pred_dir)
    summary_path = pred_dir / SUMMARY_FILE
    summary = read_summary(pred_dir)
    listed = summary["sessions"]
    model_classes = summary["class_names"]
    if sessions is not None:
        known = {s["name"] for s in listed}
        unknown = sorted(set(sessions) - known)
        if unknown:
            raise DataFormatError(summary_path, f"unknown session(s) {unknown}")
        listed = [s for s in listed if s["name"] in set(sessions)]
    if not listed:
        raise DataFormatError(summary_path, "the prediction folder holds no session")
    fps = summary.get("fps")

    read: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], dict]] = []
    true_names: list[str] = []
    for entry in listed:
        table_path = frames_path(entry, pred_dir)
        table = read_frames_table(table_path)
        if not entry.get("source"):
            raise DataFormatError(
                summary_path, f"session {entry['name']!r} names no pose file (source)"
            )
        label_path = labeler.path_for_source(entry["source"], entry["name"])
        if not label_path.is_file():
            raise DataFormatError(
                label_path,
                f"label file of session {entry['name']!r} not found (pattern "
                f"{labeler.pattern!r} relative to {Path(entry['source']).parent})",
            )
        labels, names = labeler.read(label_path, len(table), fps)
        codes = {name_key(n): i for i, n in enumerate(model_classes)}
        pred_text = table["label"].astype(str).map(name_key)
        unknown = sorted(set(pred_text) - set(codes))
        if unknown:
            raise DataFormatError(
                table_path, f"predicted label(s) {unknown} are not the model's {model_classes}"
            )
        pred = pred_text.map(codes).to_numpy(np.int64)
        valid = valid_mask(table)
        seen = {name_key(t) for t in true_names}
        true_names += [n for n in names if name_key(n) not in seen]
        where = {"source": str(entry["source"]), "labels": str(label_path)}
        read.append((entry["name"], labels, pred, valid, tuple(names), where))

    joint, pred_map, _ = align_classes(model_classes, true_names)
    total = Scores.empty(joint, iou)
    evaluation = Evaluation(total)
    for name, labels, pred, valid, names, where in read:
        to_joint = {name_key(n): i for i, n in enumerate(joint)}
        joint_true = np.array([to_joint[name_key(n)] for n in names], dtype=np.int64)
        true = np.where(labels == UNLABELLED, UNLABELLED, joint_true[np.maximum(labels, 0)])
        scores = score_session(true, pred_map[pred], joint, valid, iou)
        evaluation.sessions[name] = scores
        evaluation.sources[name] = where
        total = total.add(scores)
    evaluation.total = total
    return evaluation


def markdown(evaluation: Evaluation, title: str = "Evaluation") -> str:
    """The pooled scores and the per-class table as Markdown."""
    s = evaluation.total.summary()
    lines = [
        f"# {title}",
        "",
        f"{s['sessions']} session(s), {s['frames']} frames: {s['scored']} scored, "
        f"{s['unlabelled']} unlabelled and {s['invalid']} invalid (left out).",
        "",
        f"- macro F1 **{s['macro_f1']:.3f}**, balanced accuracy {s['balanced_acc']:.3f}, "
        f"accuracy {s['acc']:.3f}",
        f"- bout macro F1 {s['bout_macro_f1']:.3f} (IoU >= {s['iou']:g})",
        "",
        "| class | precision | recall | F1 | frames | bout F1 | true bouts | predicted bouts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in evaluation.total.per_class():
        lines.append(
            f"| {r['class']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | "
            f"{r['support']} | {r['bout_f1']:.3f} | {r['true_bouts']} | {r['pred_bouts']} |"
        )
    lines += [
        "",
        "| session | scored | macro F1 | balanced acc | bout macro F1 |",
        "|---|---|---|---|---|",
    ]
    for name, scores in evaluation.sessions.items():
        t = scores.summary()
        lines.append(
            f"| {name} | {t['scored']} | {t['macro_f1']:.3f} | {t['balanced_acc']:.3f} | "
            f"{t['bout_macro_f1']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_evaluation(evaluation: Evaluation, out_dir: str | Path) -> dict[str, Path]:
    """Write :data:`OUTPUTS` into ``out_dir``; returns their paths."""
    from dbm_lightning.analysis.plots import confusion_matrix_figure, save_figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in OUTPUTS.items()}
    write_atomic(paths["classes"], lambda t: evaluation.class_table().to_csv(t, index=False))
    write_atomic(paths["sessions"], lambda t: evaluation.session_table().to_csv(t, index=False))
    write_json_atomic(paths["json"], evaluation.to_dict())
    write_atomic(paths["markdown"], lambda t: t.write_text(markdown(evaluation)))
    fig = confusion_matrix_figure(
        evaluation.total.confusion,
        evaluation.total.class_names,
        normalize=True,
        title=f"macro F1 {evaluation.total.summary()['macro_f1']:.3f} (rows: true class)",
    )
    save_figure(fig, paths["confusion"])
    return paths
