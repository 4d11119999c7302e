"""A deep network and a classic model fitted beside it on the same training frames, their
class probabilities averaged: the recipe of an ensemble whose members err differently (on
rat pairs the BiLSTM finds the rare class, the forest the frequent one).

- :class:`EnsembleConfig` (``ensemble``, set inline in ``conf/train.yaml``): which classic
  model joins a deep run and the network shares tried on the validation sessions (``1.0``:
  the network alone); the share is chosen there with the post-processing, never on the test
  sessions.
- :class:`EnsemblePredictor`: the pair behind the ``predict_session`` interface of every
  trained model; the embedding (and so the microstates) is the network's.
- :func:`blend`: the one average, used to choose the share and to predict with it.

A checkpoint's network is put together with the member it was stored with
(:data:`ENSEMBLE_KEY`) by :func:`dbm_lightning.runs.with_member`, which ``dbm-predict`` and
:func:`dbm_lightning.runs.load_model` use; the member file is a pickle (joblib), so loading an
ensemble checkpoint runs the code it names: only load your own runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dbm_lightning.models.classic import CLASSIC_MODELS, ClassicPredictor
from dbm_lightning.ranges import check_ranges, one_of, satisfies

__all__ = ["ENSEMBLE_KEY", "EnsembleConfig", "EnsemblePredictor", "blend"]

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
        return blend(probs, other, self.network_weight), embedding


def blend(network: np.ndarray, member: np.ndarray, network_weight: float) -> np.ndarray:
    """``network_weight * network + (1 - network_weight) * member`` (float32; the network's
    probabilities unchanged at weight 1)."""
    w = float(network_weight)
    if w >= 1.0:
        return np.asarray(network, dtype=np.float32)
    return (w * np.asarray(network) + (1 - w) * np.asarray(member)).astype(np.float32)
