"""The training loss: cross-entropy over the valid frames, optionally class-weighted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from dbm_lightning.ranges import between, check_ranges, one_of
from dbm_lightning.session import UNLABELLED

IGNORE_INDEX = UNLABELLED
"""Label of a frame the loss and the metrics ignore (``dbm_lightning.session.UNLABELLED``)."""
CLASS_WEIGHTINGS = ("none", "inverse", "effective")
"""``loss.class_weighting``: none, inverse frequency, or effective number of samples."""


@dataclass(frozen=True)
class LossConfig:
    """The ``loss`` config group: the class weighting of the cross-entropy and the beta of
    the effective-number-of-samples weighting (:func:`compute_class_weights`)."""

    class_weighting: str = field(
        default="none", metadata=one_of(CLASS_WEIGHTINGS, "class weighting")
    )
    effective_beta: float = field(default=0.999, metadata=between(0, 1, high_open=True))

    def __post_init__(self) -> None:
        check_ranges(self)


def compute_class_weights(
    class_counts: Sequence[int] | np.ndarray | None,
    method: str = "none",
    beta: float = LossConfig.effective_beta,
    n_classes: int | None = None,
) -> torch.Tensor:
    """Per-class loss weights ``(C,)`` float32 from the training frame counts.

    ``none``: all ones. ``inverse``: ``1 / n_c``. ``effective`` (Cui et al. 2019, "Class-Balanced
    Loss Based on Effective Number of Samples"): ``(1 - beta) / (1 - beta ** n_c)``. For both,
    classes with zero count get weight 0 (they have no training frame to weight) and the weights
    are scaled to mean 1 over the classes present, so the loss keeps its scale.
    """
    if method not in CLASS_WEIGHTINGS:
        raise ValueError(f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {method!r}")
    if class_counts is None:
        if method != "none":
            raise ValueError(f"class_weighting={method!r} needs class_counts")
        if n_classes is None:
            raise ValueError("need class_counts or n_classes")
        return torch.ones(n_classes, dtype=torch.float32)
    counts = np.asarray(class_counts, dtype=np.float64)
    if counts.ndim != 1 or (n_classes is not None and counts.shape[0] != n_classes):
        raise ValueError(f"class_counts must have {n_classes} entries, got shape {counts.shape}")
    if np.any(counts < 0):
        raise ValueError(f"class_counts must be >= 0, got {counts.tolist()}")
    if method == "none":
        return torch.ones(counts.shape[0], dtype=torch.float32)
    present = counts > 0
    if not present.any():
        raise ValueError("class_counts are all zero: no training frame to weight")
    weights = np.zeros_like(counts)
    if method == "inverse":
        weights[present] = 1.0 / counts[present]
    else:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"effective_beta must be in [0, 1), got {beta}")
        # 1 - beta**n computed as -expm1(n log(beta)): accurate for beta close to 1
        n = counts[present]
        effective = -np.expm1(n * np.log(beta)) if beta > 0 else np.ones_like(n)
        weights[present] = (1.0 - beta) / effective
    weights[present] *= present.sum() / weights[present].sum()
    return torch.as_tensor(weights, dtype=torch.float32)


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted mean cross-entropy over frames with ``target >= 0``.

    ``logits (..., C)``, ``target (...)``. Equal to ``F.cross_entropy(..., weight=weight,
    ignore_index=-1)`` but returns 0 (still attached to the graph) instead of NaN when no frame
    carries weight (all ignored, or only zero-weight classes).
    """
    c = logits.shape[-1]
    logits = logits.reshape(-1, c)
    target = target.reshape(-1)
    valid = target >= 0
    safe_target = torch.where(valid, target, torch.zeros_like(target))
    per_frame = F.cross_entropy(logits, safe_target, reduction="none")
    w = valid.to(per_frame.dtype)
    if weight is not None:
        w = w * weight.to(per_frame.dtype)[safe_target]
    return (per_frame * w).sum() / w.sum().clamp_min(1e-12)
