"""A deep network and a classic model fitted beside it on the same training frames, their
class probabilities averaged: the recipe of an ensemble whose members err differently (on
rat pairs the BiLSTM finds the rare class, the forest the frequent one).

- :class:`EnsembleConfig` (``ensemble``, set inline in ``conf/train.yaml``): which classic
  model joins a deep run and the network shares tried on the validation sessions (``1.0``:
  the network alone); the share is chosen there with the post-processing, never on the test
  sessions.
- :class:`EnsemblePredictor`: the pair behind the ``predict_session`` interface of every
  trained model; the embedding (and so the microstates) is the network's.
- :func:`with_member`: a checkpoint's network with the member it was stored with
  (:data:`ENSEMBLE_KEY`), what ``dbm-predict`` and :func:`dbm_lightning.runs.load_model` use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.models.classic import CLASSIC_MODELS, ClassicPredictor, load_classic
from dbm_lightning.ranges import check_ranges, one_of, satisfies

__all__ = ["ENSEMBLE_KEY", "EnsembleConfig", "EnsemblePredictor", "with_member"]

ENSEMBLE_KEY = "dbm_ensemble"
"""Checkpoint entry: ``{"file": member file name in the run folder, "network_weight": w}``."""


def _shares(values: Sequence[float]) -> bool:
    return len(values) > 0 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in values
    )


@dataclass
class EnsembleConfig:
    """``ensemble``: ``classic`` (a classic model name, e.g. ``random_forest``, with its
    defaults; ``null``: none) is fitted beside a deep network; ``weights``: the network's
    shares of the averaged probabilities tried on validation (1.0 = the network alone)."""

    classic: str | None = field(
        default=None, metadata=one_of(lambda: CLASSIC_MODELS, "classic model")
    )
    weights: list[float] = field(
        default_factory=lambda: [1.0, 0.5],
        metadata=satisfies(_shares, "a non-empty list of numbers in [0, 1]"),
    )

    def __post_init__(self) -> None:
        check_ranges(self)


class EnsemblePredictor:
    """``network_weight * network + (1 - network_weight) * member`` class probabilities; the
    network's embedding, hyperparameters and any other attribute."""

    def __init__(self, network: Any, member: ClassicPredictor, network_weight: float) -> None:
        self.network = network
        self.member = member
        self.network_weight = float(network_weight)

    @property
    def hparams(self) -> Any:
        return self.network.hparams

    def __getattr__(self, name: str) -> Any:  # device, eval, ... of the network
        return getattr(self.network, name)

    def predict_session(
        self, features: np.ndarray, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Averaged class probabilities ``(T, C)`` and the network's embedding ``(T, H)``."""
        probs, embedding = self.network.predict_session(features, valid=valid)
        other, _ = self.member.predict_session(features, valid)
        w = self.network_weight
        return (w * np.asarray(probs) + (1 - w) * np.asarray(other)).astype(np.float32), embedding


def member_path(ckpt_path: str | Path, stored: Mapping[str, Any]) -> Path:
    """The member file a checkpoint's :data:`ENSEMBLE_KEY` names (in the checkpoint's run
    folder, ``RUN/checkpoints/X.ckpt`` -> ``RUN/<file>``)."""
    ckpt = Path(ckpt_path)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run / str(stored["file"])


def with_member(network: Any, checkpoint: Mapping[str, Any], ckpt_path: str | Path) -> Any:
    """``network`` as its checkpoint stored it: behind an :class:`EnsemblePredictor` when the
    checkpoint names a member with a share below 1, else unchanged. A missing member file
    raises ``FileNotFoundError`` naming it."""
    stored = checkpoint.get(ENSEMBLE_KEY)
    if not stored or float(stored.get("network_weight", 1.0)) >= 1.0:
        return network
    path = member_path(ckpt_path, stored)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the classic member of {ckpt_path}'s ensemble is missing (keep the run "
            "folder together)"
        )
    return EnsemblePredictor(
        network, ClassicPredictor(load_classic(path)), float(stored["network_weight"])
    )
