"""Tiny in-memory sessions, source and labeler for the egocentric and augmentation tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dbm_lightning.io import LoadResult
from dbm_lightning.session import Session

PARTS = ("head", "nose", "left_ear", "right_ear", "body_centre", "tail_base")


def walk_session(
    name: str, t: int, seed: int, mouse: str | None = None, fps: float = 30.0
) -> Session:
    """A random walk of 6 parts around a centre, likelihoods mostly high (a few dropouts)."""
    rng = np.random.default_rng(seed)
    centre = np.cumsum(rng.normal(0, 3, (t, 2)), axis=0) + [320, 240]
    offsets = rng.normal(0, 15, (1, len(PARTS), 2))
    pose = centre[:, None, :] + offsets + rng.normal(0, 1, (t, len(PARTS), 2))
    lik = rng.uniform(0.7, 1.0, (t, len(PARTS)))
    lik[rng.random((t, len(PARTS))) < 0.02] = 0.1  # short dropouts (interpolated)
    lik[t // 3 : t // 3 + 12, 2] = 0.0  # one long gap: invalid frames
    return Session(
        pose=pose,
        likelihood=lik,
        bodyparts=PARTS,
        name=name,
        mouse=mouse,
        fps=fps,
        source=Path(f"/nowhere/{name}.csv"),
    )


@dataclass
class ListSource:
    """A data source of in-memory sessions."""

    sessions: list = field(default_factory=list)

    def load(self, cache_dir=None) -> LoadResult:
        return LoadResult(sessions=list(self.sessions), skipped=[])


@dataclass
class StepLabeler:
    """Labels in blocks of 20 frames cycling through 3 classes."""

    label_names: tuple = ("a", "b", "c")

    def label(self, session: Session) -> Session:
        return session.with_labels((np.arange(session.n_frames) // 20) % 3, self.label_names)
