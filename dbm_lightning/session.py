"""The :class:`Session`: one recording of one animal, the unit every module passes on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dbm_lightning.errors import DataFormatError

UNLABELLED = -1
"""Label index of a frame with no label (masked out of the loss and of the metrics)."""

DEFAULT_FPS = 30.0
"""Frame rate used when neither a session, its reader nor the config gives one."""

ANIMAL_SEPARATOR = "/"
"""Separates the individual from the part in a multi-animal session's body-part names."""


def animal_parts(bodyparts: Sequence[str], individuals: Sequence[str]) -> tuple[str, ...]:
    """The per-animal part names of a multi-animal session's body parts.

    A multi-animal session names its parts ``"<individual>/<part>"``, individual-major (every
    part of the first animal, then of the second, ...), every individual with the same parts
    in the same order. Without individuals the body parts are the parts.

    Raises
    ------
    ValueError
        When the names do not follow that layout.
    """
    names = tuple(str(b) for b in bodyparts)
    if not individuals:
        return names
    n = len(individuals)
    prefix = f"{individuals[0]}{ANIMAL_SEPARATOR}"
    parts = tuple(b[len(prefix) :] for b in names[: len(names) // n])
    expected = tuple(f"{i}{ANIMAL_SEPARATOR}{p}" for i in individuals for p in parts)
    if len(set(individuals)) != n or len(names) % n or names != expected:
        raise ValueError(
            f"a session of individuals {list(individuals)} needs body parts named "
            "'<individual>/<part>', individual-major, the same parts for every individual; "
            f"got {list(names)[:8]}"
        )
    return parts


def select_individuals(
    path: object, wanted: Sequence[str] | None, available: Sequence[str]
) -> list[str] | None:
    """``wanted`` checked against a file's ``available`` individuals (every reader's rule):
    ``None`` when nothing was asked for; a ``DataFormatError`` naming ``path`` for an unknown
    individual or one named twice."""
    if not wanted:
        return None
    wanted = [str(w) for w in wanted]
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise DataFormatError(
            path, f"unknown individual(s) {unknown}; this file has {list(available)}"
        )
    if len(set(wanted)) != len(wanted):
        raise DataFormatError(path, f"individuals {wanted} name one individual twice")
    return wanted


@dataclass(eq=False)
class Session:
    """One recording of one animal, or of several animals seen together.

    A multi-animal session (a pair of rats, resident and intruder) keeps every animal in one
    ``pose`` array: ``individuals`` names the animals and the body parts are named
    ``"<individual>/<part>"``, individual-major (see :func:`animal_parts`); :attr:`parts` and
    :meth:`animal_pose` give the ``(frames, individuals, parts, 2)`` view. Labels of a
    multi-animal session describe the group (e.g. ``social`` / ``aggression`` of a pair) or
    one animal's behaviour in it.

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
        Metadata; ``None`` when unknown (``mouse`` names the animal, or the group).
    extra
        Free-form metadata from a manifest or reader (e.g. ``{"trial": 7}``).
    individuals
        The animals of a multi-animal session, in pose order; ``()`` for one animal.
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
    individuals: tuple[str, ...] = ()

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
        self.individuals = tuple(str(i) for i in self.individuals)
        animal_parts(self.bodyparts, self.individuals)  # a malformed naming fails here
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

    @property
    def n_animals(self) -> int:
        """Number of animals in the session (1 for a single-animal session)."""
        return max(1, len(self.individuals))

    @property
    def parts(self) -> tuple[str, ...]:
        """The body-part names of one animal (all of :attr:`bodyparts` for one animal)."""
        return animal_parts(self.bodyparts, self.individuals)

    def animal_pose(self) -> np.ndarray:
        """``(frames, individuals, parts, 2)`` view of ``pose`` (one individual when the
        session is single-animal)."""
        return self.pose.reshape(self.n_frames, self.n_animals, -1, 2)

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
