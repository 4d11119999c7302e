"""Scores of predicted behaviour against human labels: per-class frame precision, recall and
F1, macro F1, balanced accuracy, the confusion matrix, and bout-level F1.

Frames that are unlabelled (``UNLABELLED``) or invalid (the pose could not be used) are left
out of every score and counted. A predicted bout (a run of one class over the scored frames)
matches a true bout of the same class when their intersection over union reaches ``iou``
(0.5 by default); each bout matches at most one other, best IoU first. Bout precision is the
share of predicted bouts that match, recall the share of true bouts that do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dbm_lightning.models.metrics import metrics_from_confusion
from dbm_lightning.prediction.bouts import run_lengths
from dbm_lightning.session import UNLABELLED

DEFAULT_IOU = 0.5
"""Bout-matching threshold (intersection over union)."""


def _bouts(labels: np.ndarray, cls: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of every run of ``cls`` in ``labels``."""
    starts, lengths, values = run_lengths(labels)
    keep = values == cls
    return starts[keep], starts[keep] + lengths[keep]


def match_bouts(
    true_start: np.ndarray,
    true_end: np.ndarray,
    pred_start: np.ndarray,
    pred_end: np.ndarray,
    iou: float = DEFAULT_IOU,
) -> int:
    """Number of one-to-one matches between true and predicted bouts of one class with
    intersection over union ``>= iou`` (greedy, best IoU first; a loop per bout pair that
    overlaps, never per frame)."""
    if true_start.size == 0 or pred_start.size == 0:
        return 0
    # the true bouts each predicted bout overlaps: a contiguous range (bouts are sorted, disjoint)
    lo = np.searchsorted(true_end, pred_start, side="right")
    hi = np.searchsorted(true_start, pred_end, side="left")
    counts = np.maximum(hi - lo, 0)
    if counts.sum() == 0:
        return 0
    p_idx = np.repeat(np.arange(pred_start.size), counts)
    t_idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True) if b > a])
    inter = np.minimum(pred_end[p_idx], true_end[t_idx]) - np.maximum(
        pred_start[p_idx], true_start[t_idx]
    )
    union = (pred_end[p_idx] - pred_start[p_idx]) + (true_end[t_idx] - true_start[t_idx]) - inter
    ratio = inter / union
    ok = ratio >= iou
    order = np.argsort(-ratio[ok], kind="stable")
    used_p: set[int] = set()
    used_t: set[int] = set()
    matched = 0
    for p, t in zip(p_idx[ok][order].tolist(), t_idx[ok][order].tolist(), strict=True):
        if p in used_p or t in used_t:
            continue
        used_p.add(p)
        used_t.add(t)
        matched += 1
    return matched


@dataclass
class Scores:
    """Counts from which every score follows; :meth:`add` pools sessions.

    ``confusion`` ``(C, C)`` (rows = true class), per-class bout counts, and the frames left
    out: ``unlabelled`` (no human label) and ``invalid`` (labelled but the pose unusable).
    """

    class_names: list[str]
    confusion: np.ndarray
    true_bouts: np.ndarray
    pred_bouts: np.ndarray
    matched_bouts: np.ndarray
    frames: int = 0
    unlabelled: int = 0
    invalid: int = 0
    iou: float = DEFAULT_IOU
    sessions: int = field(default=1)

    @classmethod
    def empty(cls, class_names: Sequence[str], iou: float = DEFAULT_IOU) -> Scores:
        """No frames yet (to :meth:`add` sessions to)."""
        c = len(class_names)
        zeros = np.zeros(c, dtype=np.int64)
        return cls(
            list(class_names),
            np.zeros((c, c), dtype=np.int64),
            zeros.copy(),
            zeros.copy(),
            zeros.copy(),
            iou=iou,
            sessions=0,
        )

    def add(self, other: Scores) -> Scores:
        """The pooled counts of both (same classes)."""
        if list(other.class_names) != list(self.class_names):
            raise ValueError("cannot pool scores of different classes")
        return Scores(
            self.class_names,
            self.confusion + other.confusion,
            self.true_bouts + other.true_bouts,
            self.pred_bouts + other.pred_bouts,
            self.matched_bouts + other.matched_bouts,
            self.frames + other.frames,
            self.unlabelled + other.unlabelled,
            self.invalid + other.invalid,
            self.iou,
            self.sessions + other.sessions,
        )

    @property
    def scored(self) -> int:
        """Frames scored (labelled and valid)."""
        return int(self.confusion.sum())

    def per_class(self) -> list[dict[str, float | int | str]]:
        """One row per class: frame precision, recall, F1, support, predicted frames, and
        bout precision, recall, F1 with the bout counts."""
        tp = np.diag(self.confusion).astype(np.float64)
        support = self.confusion.sum(axis=1)
        predicted = self.confusion.sum(axis=0)
        rows = []
        for k, name in enumerate(self.class_names):
            precision = _ratio(tp[k], predicted[k])
            recall = _ratio(tp[k], support[k])
            b_precision = _ratio(self.matched_bouts[k], self.pred_bouts[k])
            b_recall = _ratio(self.matched_bouts[k], self.true_bouts[k])
            rows.append(
                {
                    "class": name,
                    "precision": precision,
                    "recall": recall,
                    "f1": _f1(precision, recall),
                    "support": int(support[k]),
                    "predicted": int(predicted[k]),
                    "bout_precision": b_precision,
                    "bout_recall": b_recall,
                    "bout_f1": _f1(b_precision, b_recall),
                    "true_bouts": int(self.true_bouts[k]),
                    "pred_bouts": int(self.pred_bouts[k]),
                }
            )
        return rows

    def summary(self) -> dict[str, float | int]:
        """``macro_f1`` and ``bout_macro_f1`` (over the classes that occur as truth or
        prediction), ``balanced_acc`` (mean recall over the true classes), ``acc``, and the
        frame counts (``frames``, ``scored``, ``unlabelled``, ``invalid``)."""
        metrics = metrics_from_confusion(torch.as_tensor(self.confusion))
        rows = self.per_class()
        seen = [
            r for r in rows if r["support"] or r["predicted"] or r["true_bouts"] or r["pred_bouts"]
        ]
        return {
            "macro_f1": float(metrics["macro_f1"]),
            "balanced_acc": float(metrics["balanced_acc"]),
            "acc": float(metrics["acc"]),
            "bout_macro_f1": float(np.mean([r["bout_f1"] for r in seen])) if seen else 0.0,
            "frames": int(self.frames),
            "scored": self.scored,
            "unlabelled": int(self.unlabelled),
            "invalid": int(self.invalid),
            "sessions": int(self.sessions),
            "iou": float(self.iou),
        }


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def score_session(
    true: np.ndarray,
    pred: np.ndarray,
    class_names: Sequence[str],
    valid: np.ndarray | None = None,
    iou: float = DEFAULT_IOU,
) -> Scores:
    """Scores of one session: ``true`` and ``pred`` ``(T,)`` class indices into
    ``class_names`` (``true`` may hold ``UNLABELLED``), ``valid`` ``(T,)`` bool (``None``:
    every frame valid)."""
    true = np.asarray(true, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if true.shape != pred.shape or true.ndim != 1:
        raise ValueError(f"true {true.shape} and pred {pred.shape} must be equal 1-D shapes")
    valid = np.ones(true.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    if valid.shape != true.shape:
        raise ValueError(f"valid {valid.shape} does not match {true.shape}")
    c = len(class_names)
    labelled = true != UNLABELLED
    scored = labelled & valid
    if (true[labelled] >= c).any() or (true < UNLABELLED).any() or ((pred < 0) | (pred >= c)).any():
        raise ValueError(f"class indices outside 0..{c - 1}")
    confusion = np.bincount(true[scored] * c + pred[scored], minlength=c * c).reshape(c, c)
    true_s = np.where(scored, true, UNLABELLED)
    pred_s = np.where(scored, pred, UNLABELLED)
    n_true, n_pred, n_match = (np.zeros(c, dtype=np.int64) for _ in range(3))
    for k in range(c):  # a loop per class and bout, never per frame
        ts, te = _bouts(true_s, k)
        ps, pe = _bouts(pred_s, k)
        n_true[k], n_pred[k] = ts.size, ps.size
        n_match[k] = match_bouts(ts, te, ps, pe, iou)
    return Scores(
        list(class_names),
        confusion.astype(np.int64),
        n_true,
        n_pred,
        n_match,
        frames=int(true.size),
        unlabelled=int((~labelled).sum()),
        invalid=int((labelled & ~valid).sum()),
        iou=float(iou),
    )
