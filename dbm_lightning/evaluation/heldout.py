"""The held-out evaluation of a trained model inside a run: temporal post-processing chosen
on the validation sessions, then the test sessions scored once with it.

- :class:`PostprocessConfig` (``postprocess`` group): the candidate smoothing windows (a
  centred moving average of the class probabilities, frames) and minimum bout lengths
  (frames); every pair is tried on the validation sessions and the best macro F1 wins (ties:
  the smallest change). The choice is stored with the model (``dbm_postprocess`` in the
  checkpoint, ``postprocess`` in ``model.joblib``) so that ``dbm-predict`` applies it.
- :func:`evaluate_split`: frame and bout scores of a split's sessions
  (:func:`~dbm_lightning.evaluation.scores.score_session`), the unlabelled and invalid frames
  left out and counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.atomic import write_atomic, write_json_atomic
from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.evaluation.files import Evaluation
from dbm_lightning.evaluation.scores import DEFAULT_IOU, Scores, score_session
from dbm_lightning.models.ensemble import blend
from dbm_lightning.models.inference import run_model
from dbm_lightning.prediction.bouts import POSTPROCESS_KEY, decide
from dbm_lightning.prediction.files import write_frames_table
from dbm_lightning.prediction.outputs import SUMMARY_FILE
from dbm_lightning.prediction.session import SessionPrediction
from dbm_lightning.ranges import between, check_ranges, satisfies
from dbm_lightning.session import UNLABELLED


def _non_negative_ints(values: Sequence[int]) -> bool:
    return len(values) > 0 and all(isinstance(v, int) and v >= 0 for v in values)


@dataclass
class PostprocessConfig:
    """``postprocess``: the held-out evaluation and its validation-chosen post-processing.

    ``smoothing`` and ``min_bout`` are the candidates (``[0]`` and ``[1]``: none); ``iou``
    the bout-matching threshold of the scores; ``enabled: false`` skips the step.
    """

    enabled: bool = True
    smoothing: list[int] = field(
        default_factory=lambda: [0, 5, 15, 31],
        metadata=satisfies(_non_negative_ints, "a non-empty list of integers >= 0"),
    )
    min_bout: list[int] = field(
        default_factory=lambda: [1, 5, 15],
        metadata=satisfies(_non_negative_ints, "a non-empty list of integers >= 0"),
    )
    iou: float = field(default=DEFAULT_IOU, metadata=between(0, 1, low_open=True))

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class _Predicted:
    name: str
    probs: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    unlabelled: int
    invalid: int


def _predict(model: Any, sessions: Sequence[Any]) -> list[_Predicted]:
    out = []
    for p in sessions:
        probs, _ = run_model(model, p.features, p.valid)
        raw = p.raw_labels if p.raw_labels is not None else p.labels
        labelled = raw != UNLABELLED
        out.append(
            _Predicted(
                p.name,
                np.asarray(probs, dtype=np.float32),
                np.asarray(p.labels, dtype=np.int64),
                np.asarray(p.valid, dtype=bool),
                int((~labelled).sum()),
                int((labelled & ~p.valid).sum()),
            )
        )
    return out


def _score(
    predicted: Sequence[_Predicted],
    preds: Sequence[np.ndarray],
    class_names: Sequence[str],
    iou: float,
) -> Evaluation:
    """Scores of the sessions' predicted classes ``preds`` (one per session of
    ``predicted``)."""
    total = Scores.empty(class_names, iou)
    evaluation = Evaluation(total)
    for p, pred in zip(predicted, preds, strict=True):
        scores = score_session(p.labels, pred, class_names, p.valid, iou)
        scores.unlabelled, scores.invalid = p.unlabelled, p.invalid  # before the valid mask
        evaluation.sessions[p.name] = scores
        total = total.add(scores)
    evaluation.total = total
    return evaluation


def _classes(predicted: Sequence[_Predicted], smoothing: int, min_bout: int) -> list[np.ndarray]:
    return [decide(p.probs, smoothing, min_bout)[1] for p in predicted]


def _blend(net: Sequence[_Predicted], member: Sequence[_Predicted], w: float) -> list[_Predicted]:
    if w >= 1.0:
        return list(net)
    return [
        _Predicted(a.name, blend(a.probs, b.probs, w), a.labels, a.valid, a.unlabelled, a.invalid)
        for a, b in zip(net, member, strict=True)
    ]


def choose_postprocess(
    model: Any,
    val_sessions: Sequence[Any],
    class_names: Sequence[str],
    config: PostprocessConfig,
    member: Any = None,
    weights: Sequence[float] = (1.0,),
) -> dict[str, Any]:
    """The (smoothing, min_bout) pair with the best validation macro F1, and the table of
    every pair tried (``[]`` and no change when there are no validation sessions).

    With a ``member`` (a classic model fitted beside the network ``model``) every network
    share of ``weights`` is tried too (``network_weight``: the chosen share; 1.0 = the
    network alone; ties: the largest share)."""
    if not val_sessions:
        return {"smoothing": 0, "min_bout": 1, "network_weight": 1.0, "val_macro_f1": None,
                "tried": []}  # fmt: skip
    predicted = _predict(model, val_sessions)
    others = _predict(member, val_sessions) if member is not None else None
    tried = []
    for share in weights if others is not None else (1.0,):
        blended = _blend(predicted, others, share) if others is not None else predicted
        for w in config.smoothing:
            for m in config.min_bout:
                preds = _classes(blended, w, m)
                s = _score(blended, preds, class_names, config.iou).total.summary()
                tried.append({"network_weight": float(share), "smoothing": int(w),
                              "min_bout": int(m), "val_macro_f1": s["macro_f1"]})  # fmt: skip
    best = max(
        tried,
        key=lambda r: (round(r["val_macro_f1"], 12), r["network_weight"], -r["smoothing"],
                       -r["min_bout"]),
    )  # fmt: skip
    return {**best, "tried": tried}


def evaluate_split(
    model: Any,
    sessions: Sequence[Any],
    class_names: Sequence[str],
    smoothing: int = 0,
    min_bout: int = 1,
    iou: float = DEFAULT_IOU,
) -> tuple[Evaluation, Evaluation, list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]]:
    """Scores of ``sessions`` (prepared sessions of one split) with the post-processing and
    without it (the model runs once), and each session's post-processed ``(name, predicted
    class, probabilities, valid)``."""
    predicted = _predict(model, sessions)
    decided = [decide(p.probs, smoothing, min_bout) for p in predicted]
    evaluation = _score(predicted, [pred for _, pred in decided], class_names, iou)
    raw = _score(predicted, _classes(predicted, 0, 1), class_names, iou)
    decisions = [
        (p.name, pred, smoothed, p.valid)
        for p, (smoothed, pred) in zip(predicted, decided, strict=True)
    ]
    return evaluation, raw, decisions


def flat_metrics(evaluation: Evaluation, prefix: str) -> dict[str, float]:
    """``<prefix>/macro_f1``, ``/balanced_acc``, ``/acc``, ``/bout_macro_f1``, ``/f1/<class>``
    and ``/bout_f1/<class>`` of an evaluation (the run's ``metrics.json`` keys)."""
    s = evaluation.total.summary()
    out = {
        f"{prefix}/{k}": float(s[k]) for k in ("macro_f1", "balanced_acc", "acc", "bout_macro_f1")
    }
    for row in evaluation.total.per_class():
        out[f"{prefix}/f1/{row['class']}"] = float(row["f1"])
        out[f"{prefix}/bout_f1/{row['class']}"] = float(row["bout_f1"])
    out[f"{prefix}/scored_frames"] = float(s["scored"])
    return out


def store_postprocess(
    ckpt_path: str | Path, chosen: dict[str, int], extra: dict[str, Any] | None = None
) -> Path:
    """Store the chosen post-processing in a checkpoint under
    :data:`~dbm_lightning.prediction.bouts.POSTPROCESS_KEY`, and any ``extra`` entries (e.g.
    the ensemble's member; ``None`` removes one), atomically; plain numbers, so it still loads
    with weights_only."""
    import torch

    path = Path(ckpt_path)
    ckpt = read_checkpoint(path)
    ckpt[POSTPROCESS_KEY] = {k: int(v) for k, v in chosen.items()}
    for key, value in (extra or {}).items():  # None: remove the entry
        if value is None:
            ckpt.pop(key, None)
        else:
            ckpt[key] = value
    return write_atomic(path, lambda tmp: torch.save(ckpt, tmp))


def write_heldout_predictions(
    out_dir: str | Path,
    sessions: Sequence[Any],
    decisions: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    class_names: Sequence[str],
    chosen: dict[str, int],
) -> Path:
    """The test sessions' predictions as ``dbm-predict`` writes them (a frames table per
    session and ``summary.json`` naming its pose file), so ``dbm-evaluate`` scores a run's
    held-out predictions against the label files as it scores any prediction."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_name = {p.name: p for p in sessions}
    listed = []
    for name, pred, probs, valid in decisions:
        result = SessionPrediction(
            list(class_names), pred, probs, np.full(len(pred), -1, dtype=np.int64), valid
        )
        frames = write_frames_table(result, out / f"{name}.frames.csv")
        source = by_name[name].session.source
        listed.append(
            {
                "name": name,
                "source": str(source) if source is not None else None,
                "frames": int(len(pred)),
                "valid_frames": int(valid.sum()),
                "frames_file": str(frames),
            }
        )
    fps = [by_name[n].session.fps for n, *_ in decisions]
    summary = {
        "out_dir": str(out),
        "class_names": list(class_names),
        "fps": fps[0] if fps and all(f == fps[0] for f in fps) else None,
        **chosen,
        "sessions": listed,
        "skipped": [],
    }
    return write_json_atomic(out / SUMMARY_FILE, summary)
