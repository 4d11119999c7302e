"""The :class:`Session`: one recording of one animal, the unit every module passes on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

UNLABELLED = -1
"""Label index of a frame with no label (masked out of the loss and of the metrics)."""

DEFAULT_FPS = 30.0
"""Frame rate used when neither a session, its reader nor the config gives one."""


@dataclass(eq=False)
class Session:
    """One recording of one animal.

    Attributes
    ----------
    pose
        ``(frames, bodyparts, 2)`` float32 pixel coordinates (x, y); NaN where missing.
    likelihood
        ``(frames, bodyparts)`` float32 tracking confidence in [0, 1]; ones when the source
        has none (e.g. the original DBM .mat files).
    bodyparts
        Body-part names, in the order of axis 1 of ``pose``.
    name
        A unique, human-readable id (e.g. ``m01_day3`` or ``trial_07``).
    labels
        Optional ``(frames,)`` int64 indices into ``label_names``; ``UNLABELLED`` (-1) where a
        frame has no label.
    label_names
        Names of the label indices, required when ``labels`` is given.
    mouse, day, condition, fps, source
        Metadata; ``None`` when unknown.
    extra
        Free-form metadata from a manifest or reader (e.g. ``{"trial": 7}``).
    """

    pose: np.ndarray
    likelihood: np.ndarray
    bodyparts: tuple[str, ...]
    name: str
    labels: np.ndarray | None = None
    label_names: tuple[str, ...] | None = None
    mouse: str | None = None
    day: int | None = None
    condition: str | None = None
    fps: float | None = None
    source: Path | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pose = np.asarray(self.pose, dtype=np.float32)
        self.likelihood = np.asarray(self.likelihood, dtype=np.float32)
        self.bodyparts = tuple(self.bodyparts)
        if self.pose.ndim != 3 or self.pose.shape[2] != 2:
            raise ValueError(
                f"{self.name}: pose must be (frames, bodyparts, 2), got {self.pose.shape}"
            )
        if self.likelihood.shape != self.pose.shape[:2]:
            raise ValueError(
                f"{self.name}: likelihood shape {self.likelihood.shape} does not match pose "
                f"{self.pose.shape[:2]}"
            )
        if len(self.bodyparts) != self.pose.shape[1]:
            raise ValueError(
                f"{self.name}: {len(self.bodyparts)} body-part names for {self.pose.shape[1]} parts"
            )
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (self.n_frames,):
                raise ValueError(
                    f"{self.name}: {self.labels.shape[0]} labels for {self.n_frames} frames"
                )
            if self.label_names is None:
                raise ValueError(f"{self.name}: labels given without label_names")
            self.label_names = tuple(self.label_names)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.pose.shape[0])

    @property
    def n_bodyparts(self) -> int:
        """Number of tracked body parts."""
        return int(self.pose.shape[1])

    def bodypart_index(self, name: str) -> int:
        """Index of body part ``name``; a clear error lists the known parts when it is absent."""
        try:
            return self.bodyparts.index(name)
        except ValueError:
            raise KeyError(
                f"{self.source or self.name}: unknown body part {name!r}; "
                f"this session has {list(self.bodyparts)}"
            ) from None

    def with_labels(self, labels: np.ndarray, label_names: tuple[str, ...] | list[str]) -> Session:
        """A copy of this session carrying ``labels``."""
        return replace(self, labels=labels, label_names=tuple(label_names))

    def with_pose(self, pose: np.ndarray) -> Session:
        """A copy of this session with ``pose`` replaced (same shape)."""
        return replace(self, pose=pose)
