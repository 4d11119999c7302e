"""Per-frame metrics from confusion counts (one implementation for every model family), and the
flattening of hyperparameters for TensorBoard's HPARAMS tab."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric


def balanced_accuracy_from_confusion(confusion: torch.Tensor) -> torch.Tensor:
    """Mean recall over the classes present in the targets (rows = true class), as
    ``sklearn.metrics.balanced_accuracy_score``; NaN when the matrix is empty."""
    confusion = confusion.to(torch.float64)
    support = confusion.sum(dim=1)
    present = support > 0
    if not present.any():
        return torch.tensor(float("nan"))
    recall = confusion.diagonal()[present] / support[present]
    return recall.mean().to(torch.float32)


def _safe_divide(num: torch.Tensor, denom: torch.Tensor) -> torch.Tensor:
    """``num / denom`` in float32 (torchmetrics' rule: integer tensors become float first), 0
    where ``denom`` is 0."""
    num = num if num.is_floating_point() else num.float()
    denom = denom if denom.is_floating_point() else denom.float()
    return torch.where(denom != 0, num / denom, torch.zeros((), dtype=num.dtype, device=num.device))


def metrics_from_confusion(confusion: torch.Tensor) -> dict[str, torch.Tensor]:
    """Frame metrics of a confusion matrix of counts (rows = true class, columns = predicted).

    Returns ``acc`` (micro), ``balanced_acc`` (:func:`balanced_accuracy_from_confusion`),
    ``macro_f1`` (mean F1 over the classes that occur as target or prediction) and ``f1``
    (``(C,)``, 0 for a class never seen nor predicted): the values, arithmetic included, of
    torchmetrics' ``MulticlassAccuracy(average="micro")`` and ``MulticlassF1Score(average=
    "macro" | None)`` over the same frames.
    """
    confusion = confusion.to(torch.long)
    tp = confusion.diagonal()
    fp = confusion.sum(dim=0) - tp
    fn = confusion.sum(dim=1) - tp
    acc = _safe_divide(tp.sum(), tp.sum() + fn.sum())
    beta2 = 1.0  # F-beta with beta = 1, written as torchmetrics computes it
    f1 = _safe_divide((1 + beta2) * tp, (1 + beta2) * tp + beta2 * fn + fp)
    weights = torch.ones_like(f1)
    weights[tp + fp + fn == 0] = 0.0
    macro_f1 = _safe_divide(weights * f1, weights.sum(-1, keepdim=True)).sum(-1)
    return {
        "acc": acc,
        "balanced_acc": balanced_accuracy_from_confusion(confusion),
        "macro_f1": macro_f1,
        "f1": f1,
    }


def named_frame_metrics(confusion: torch.Tensor, class_names: Sequence[str]) -> dict[str, float]:
    """:func:`metrics_from_confusion` as the floats every run logs and writes, without the
    stage prefix: ``acc``, ``balanced_acc``, ``macro_f1`` and ``f1/<class>`` (deep and
    classic runs name their metrics through this one function)."""
    values = metrics_from_confusion(confusion)
    out = {key: float(values[key]) for key in ("acc", "balanced_acc", "macro_f1")}
    for name, f1 in zip(class_names, values["f1"].tolist(), strict=True):
        out[f"f1/{name}"] = float(f1)
    return out


class ConfusionCounts(Metric):
    """Running confusion counts ``(C, C)`` (rows = true class) of the frames with target >= 0.

    ``update(logits (..., C), target (...))`` takes the arg-max class of every frame and adds
    all frames with one ``bincount`` (ignored frames go to a spare bin that is dropped): no
    boolean-mask copy, no host sync. Summed across processes like any torchmetrics state.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.n_classes = int(n_classes)
        self.confmat: torch.Tensor
        self.add_state(
            "confmat",
            torch.zeros(self.n_classes, self.n_classes, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        c = self.n_classes
        preds = logits.reshape(-1, c).argmax(dim=-1)
        target = target.reshape(-1).to(torch.long)
        codes = torch.where(target >= 0, target * c + preds, c * c)
        if codes.device.type != "cpu" and torch.are_deterministic_algorithms_enabled():
            counts = torch.zeros(c * c + 1, dtype=torch.long, device=codes.device)
            counts.index_put_((codes,), torch.ones_like(codes), accumulate=True)
        else:
            counts = torch.bincount(codes, minlength=c * c + 1)
        self.confmat += counts[: c * c].view(c, c)

    def compute(self) -> torch.Tensor:
        return self.confmat


def normalise_rows(confusion: np.ndarray) -> np.ndarray:
    """Row-normalised confusion matrix (rows with no frames stay 0)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    support = confusion.sum(axis=1, keepdims=True)
    return np.divide(confusion, support, out=np.zeros_like(confusion), where=support > 0)


def flatten_hparams(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Flatten nested mappings into ``a.b.c`` keys, keeping scalars and short scalar lists."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            flatten_hparams(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, bool | int | float | str):
        out[prefix] = value
    elif value is None:
        out[prefix] = "None"
    elif (
        isinstance(value, list | tuple)
        and len(value) <= 12
        and all(isinstance(v, bool | int | float | str) for v in value)
    ):
        out[prefix] = str(list(value))
