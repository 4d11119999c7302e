"""The sessions of a :class:`~dbm_lightning.synthetic.model.SyntheticConfig`, one animal or a
pair each: their arrays (:func:`session_data`, what the files are written from) and the
in-memory :class:`~dbm_lightning.session.Session` objects (:func:`generate_sessions`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from dbm_lightning.session import Session
from dbm_lightning.synthetic.model import (
    BODYPARTS,
    LANDMARKS,
    SCORER,
    TRUE_BEHAVIOURS,
    SyntheticConfig,
    condition_of,
    mouse_names,
    mouse_traits,
    session_rng,
)
from dbm_lightning.synthetic.shift import DomainShift, mouse_shift
from dbm_lightning.synthetic.simulate import simulate_session
from dbm_lightning.synthetic.social import (
    INDIVIDUALS,
    PAIR_BEHAVIOURS,
    pair_bodyparts,
    pair_names,
    simulate_pair_session,
)

_SESSION_FIELDS = {f.name for f in fields(Session)}


@dataclass(frozen=True)
class SessionData:
    """One generated session: arrays, frame rate, domain shift and naming.

    ``pose`` ``(frames, parts, 2)``, ``likelihood`` ``(frames, parts)`` and ``labels``
    ``(frames,)`` (indices into ``label_names``); ``parts`` is the per-animal skeleton
    (:data:`BODYPARTS`) and ``individuals`` the animals (``()`` for one animal; the pose then
    holds every part of the first animal, then of the second).
    """

    pose: np.ndarray
    likelihood: np.ndarray
    labels: np.ndarray
    fps: float
    shift: DomainShift
    label_names: tuple[str, ...]
    parts: tuple[str, ...] = BODYPARTS
    individuals: tuple[str, ...] = ()

    @property
    def bodyparts(self) -> tuple[str, ...]:
        """The session's body-part names (``"<individual>/<part>"`` for a pair)."""
        return pair_bodyparts(self.parts) if self.individuals else self.parts


def session_ids(config: SyntheticConfig) -> list[str]:
    """The mice (``m01`` ..) or, with two animals, the pairs (``p01`` ..) of ``config``."""
    return pair_names(config.mice) if config.animals == 2 else mouse_names(config.mice)


def session_data(config: SyntheticConfig, idx: int, day: int) -> SessionData:
    """The session of mouse (or pair) ``idx`` (0-based) on ``day`` (1-based)."""
    shift = mouse_shift(config.seed, idx, config.domain_shift)
    fps = float(shift.fps or config.fps)
    condition = condition_of(idx, config.mice)
    rng = session_rng(config.seed, idx, day)
    noise = {
        "dropout_rate": config.dropout_rate,
        "outlier_rate": config.outlier_rate,
        "jitter_px": config.jitter_px,
    }
    if config.animals == 2:
        traits = (mouse_traits(config.seed, idx), mouse_traits(config.seed, idx, individual=1))
        pose, like, labels = simulate_pair_session(
            condition,
            day,
            config.frames,
            rng,
            traits=traits,
            fps=config.fps,
            swap_rate=config.swap_rate,
            shift=shift,
            **noise,
        )
        return SessionData(pose, like, labels, fps, shift, PAIR_BEHAVIOURS, BODYPARTS, INDIVIDUALS)
    pose, like, labels = simulate_session(
        idx,
        day,
        condition,
        config.frames,
        rng,
        traits=mouse_traits(config.seed, idx),
        fps=config.fps,
        centre_start=config.centre_start,
        centre_end=config.centre_end,
        shift=shift,
        steady=config.steady,
        **noise,
    )
    if not config.landmarks:
        return SessionData(pose, like, labels, fps, shift, TRUE_BEHAVIOURS)
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, idx, day, 3_000_017]))
    marks, marks_like = tracked_landmarks(shift, len(pose), rng, config.jitter_px)
    return SessionData(
        np.concatenate([pose, marks], axis=1),
        np.concatenate([like, marks_like], axis=1),
        labels,
        fps,
        shift,
        TRUE_BEHAVIOURS,
        BODYPARTS + LANDMARKS,
    )


def tracked_landmarks(
    shift: DomainShift, frames: int, rng: np.random.Generator, jitter_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """The ports as a tracker sees fixed objects: ``(frames, 3, 2)`` image pixels of
    :data:`LANDMARKS` (where ``shift``'s camera puts them, plus white jitter of half the
    animal's ``jitter_px`` scaled by the session's tracking noise) and their likelihood."""
    ports = shift.ports()
    where = np.array([ports[name] for name in LANDMARKS])
    noise = 0.5 * jitter_px * shift.noise_scale
    pose = where[None] + noise * rng.standard_normal((frames, len(LANDMARKS), 2))
    like = np.clip(1.0 - rng.exponential(0.005, (frames, len(LANDMARKS))), 0.6, 0.9999)
    return pose, like


def generate_sessions(config: SyntheticConfig) -> list[Session]:
    """All sessions of ``config`` in memory, labelled with the true behaviour (no files).

    A pair session follows the project's multi-animal convention: body parts
    ``"a/head", ..., "b/tail_base"`` (individual-major), ``mouse`` the pair (``p01``), labels
    the pair behaviours and ``extra["individuals"] == ["a", "b"]``. A shifted mouse's session
    has its frame rate and ``extra["domain_shift"]`` (:meth:`DomainShift.to_dict`).
    """
    sessions = []
    for idx, mouse in enumerate(session_ids(config)):
        for day in range(1, config.days + 1):
            data = session_data(config, idx, day)
            extra: dict = {"scorer": SCORER}
            more: dict = {}
            if data.individuals:
                extra["individuals"] = list(data.individuals)
                if "individuals" in _SESSION_FIELDS:
                    more["individuals"] = data.individuals
            if not data.shift.is_identity:
                extra["domain_shift"] = data.shift.to_dict(data.fps)
            sessions.append(
                Session(
                    pose=data.pose,
                    likelihood=data.likelihood,
                    bodyparts=data.bodyparts,
                    name=f"{mouse}_day{day}",
                    labels=data.labels,
                    label_names=data.label_names,
                    mouse=mouse,
                    day=day,
                    condition=condition_of(idx, config.mice),
                    fps=data.fps,
                    extra=extra,
                    **more,
                )
            )
    return sessions
