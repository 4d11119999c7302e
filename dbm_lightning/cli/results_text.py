"""What a run's numbers say, in words: the one-line headline of a sweep's progress line and
the closing lines of a single run (:func:`explain`)."""

from __future__ import annotations

import math
from typing import Any

WEAK_F1 = 0.2
"""A class whose F1 is under this is named as one the model does not find."""


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def headline(metrics: dict[str, Any]) -> str:
    """The run's headline numbers, each named: held-out macro F1 when the run has a held-out
    fold, else the best epoch's validation accuracy and macro F1, and the test accuracy."""
    parts = []
    heldout = metrics.get("heldout") or {}
    if _finite(heldout.get("heldout/macro_f1")):
        parts.append(f"held-out macro F1 {heldout['heldout/macro_f1']:.3f}")
    best = metrics.get("val_best") or {}
    for key, name in (("acc", "accuracy"), ("macro_f1", "macro F1")):
        if _finite(best.get(key)):
            parts.append(f"val {name} {best[key]:.3f} (best epoch)")
    test = metrics.get("test") or {}
    if _finite(test.get("test/acc")) and not heldout:
        parts.append(f"test accuracy {test['test/acc']:.3f}")
    return ", ".join(parts) or "no validation metrics"


def _weak_classes(section: dict[str, Any], prefix: str) -> list[tuple[str, float]]:
    scores = [
        (key.removeprefix(f"{prefix}/f1/"), float(value))
        for key, value in section.items()
        if key.startswith(f"{prefix}/f1/") and _finite(value)
    ]
    return sorted((c for c in scores if c[1] < WEAK_F1), key=lambda c: c[1])


def explain(metrics: dict[str, Any]) -> str:
    """The closing lines of a run: each headline number with what it measures, and the
    classes the model does not find (F1 under :data:`WEAK_F1`) when accuracy hides them."""
    lines = []
    best = metrics.get("val_best") or {}
    val = metrics.get("val") or {}
    epochs = metrics.get("epochs")
    if _finite(best.get("acc")):
        at = ""
        if best.get("epoch") is not None and epochs:
            at = f", epoch {int(best['epoch']) + 1} of {epochs}, chosen on {best.get('monitor')}"
        lines.append(
            f"  validation accuracy {best['acc']:.3f} (best epoch{at}): the share of frames "
            "labelled right"
        )
    if _finite(best.get("macro_f1")):
        lines.append(
            f"  validation macro F1 {best['macro_f1']:.3f}: the mean of the classes' F1, every "
            "class counted the same however rare"
        )
    if _finite(val.get("val/acc")) and epochs:
        lines.append(f"  last epoch: validation accuracy {val['val/acc']:.3f}")
    heldout = metrics.get("heldout") or {}
    if _finite(heldout.get("heldout/macro_f1")):
        lines.append(
            f"  held-out test sessions: macro F1 {heldout['heldout/macro_f1']:.3f} (never used to "
            "choose anything)"
        )
    elif _finite((metrics.get("test") or {}).get("test/acc")):
        test = metrics["test"]
        lines.append(
            f"  test sessions: accuracy {test['test/acc']:.3f}, macro F1 "
            f"{test.get('test/macro_f1', float('nan')):.3f}"
        )
    weak = _weak_classes(val, "val")
    if weak:
        named = ", ".join(f"{name} (F1 {score:.3f})" for name, score in weak)
        line = f"  not found on validation: {named}"
        if _finite(val.get("val/acc")) and val["val/acc"] >= 0.5:
            line += (
                ". Accuracy counts frames, so a class can fail while accuracy is high; check "
                "that the features can tell it apart (a behaviour defined by place needs "
                "position: features=full, or features.pe_L)"
            )
        lines.append(line)
    if not lines:
        return ""
    return "Results (metrics.json):\n" + "\n".join(lines)
