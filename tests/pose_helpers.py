"""Tiny in-memory sessions, source and labeler for the egocentric and augmentation tests
(the sessions and source of ``test_data``, with a long gap in every session)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from test_data import PARTS, ListSource
from test_data import walk_session as _walk_session

from dbm_lightning.session import Session

__all__ = ["PARTS", "ListSource", "StepLabeler", "walk_session"]


def walk_session(
    name: str, t: int, seed: int, mouse: str | None = None, fps: float = 30.0
) -> Session:
    """:func:`test_data.walk_session` with one long gap (invalid frames) in part 2."""
    return _walk_session(name, t, seed, mouse, fps=fps, long_gap=True)


@dataclass
class StepLabeler:
    """Labels in blocks of 20 frames cycling through 3 classes."""

    label_names: tuple = ("a", "b", "c")

    def label(self, session: Session) -> Session:
        return session.with_labels((np.arange(session.n_frames) // 20) % 3, self.label_names)
