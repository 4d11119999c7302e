"""The per-session pipeline: body parts matched, pose cleaned, features computed and standardised;
:func:`prepare_session` applies it to a new session from a run's pipeline state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dbm_lightning.errors import DataFormatError
from dbm_lightning.features import FeatureConfig, Standardizer, compute_features
from dbm_lightning.preprocess import (
    ArenaBounds,
    PreprocessConfig,
    clean_session,
    require_valid_frames,
    scale_pose,
)
from dbm_lightning.session import ANIMAL_SEPARATOR, DEFAULT_FPS, UNLABELLED, Session


def reorder_bodyparts(
    session: Session, bodyparts: Sequence[str], individuals: Sequence[str] = ()
) -> Session:
    """``session`` with its body parts in ``bodyparts`` order (extra parts dropped); a
    multi-animal session's ``individuals`` in that order too."""
    bodyparts = tuple(bodyparts)
    individuals = tuple(individuals)
    if session.bodyparts == bodyparts and session.individuals == individuals:
        return session
    missing = [p for p in bodyparts if p not in session.bodyparts]
    if missing:
        raise DataFormatError(
            session.source,
            f"session {session.name!r} lacks body part(s) {missing} that the pipeline expects "
            f"({list(bodyparts)}); the session has {list(session.bodyparts)}",
        )
    idx = [session.bodyparts.index(p) for p in bodyparts]
    return replace(
        session,
        pose=session.pose[:, idx],
        likelihood=session.likelihood[:, idx],
        bodyparts=bodyparts,
        individuals=individuals,
    )


def match_individuals(session: Session, individuals: Sequence[str]) -> Session:
    """``session``'s animals renamed to ``individuals`` in order when the names differ but
    their number is the same (another recording's tracker names them ``animal0``, ``rat1``
    ...; identities are the tracker's either way); the session unchanged otherwise."""
    individuals = tuple(individuals)
    own = session.individuals
    if not individuals and own:
        raise DataFormatError(
            session.source,
            f"the model was trained on one animal but this file holds {list(own)}: choose one "
            "(dbm-predict --individuals NAME, data.individuals=[NAME])",
        )
    if not individuals or own == individuals or set(own) == set(individuals):
        return session
    if len(own) != len(individuals):
        raise DataFormatError(
            session.source,
            f"session {session.name!r} has {len(own)} animal(s) {list(own)}, the model was "
            f"trained on {len(individuals)} {list(individuals)}",
        )
    parts = session.parts
    return replace(
        session,
        bodyparts=tuple(f"{i}{ANIMAL_SEPARATOR}{p}" for i in individuals for p in parts),
        individuals=individuals,
    )


def check_same_bodyparts(sessions: Sequence[Session]) -> None:
    """Every session tracks the same set of body parts as the first (order may differ): a
    part only some sessions have would otherwise be dropped from them without a word."""
    first = sessions[0]
    ref = set(first.bodyparts)
    for s in sessions[1:]:
        if set(s.bodyparts) == ref:
            continue
        missing = [p for p in first.bodyparts if p not in s.bodyparts]
        extra = [p for p in s.bodyparts if p not in ref]
        raise DataFormatError(
            s.source,
            f"session {s.name!r} has body parts {list(s.bodyparts)} but session {first.name!r} "
            f"({first.source}) has {list(first.bodyparts)} (missing {missing}, unknown "
            f"{extra}): every session must track the same body parts",
        )


def raw_features(
    cleaned: Session, config: FeatureConfig, arena: ArenaBounds, fps: float
) -> np.ndarray:
    """``(T, F)`` float32 features of a cleaned session (NaN where the pose is missing),
    z-scored over the session's own valid frames when ``config.session_zscore``."""
    raw = compute_features(
        cleaned.pose,
        scale_pose(cleaned.pose, arena),
        config,
        fps,
        bodyparts=cleaned.bodyparts,
        arena=arena,
        animals=cleaned.n_animals,
    )
    if config.session_zscore:
        ok = np.isfinite(raw).all(axis=1)
        if ok.any():
            own = Standardizer.fit([raw[ok]])
            raw = own.transform(raw)
    return raw


def finalise_features(raw: np.ndarray, standardizer: Standardizer) -> tuple[np.ndarray, np.ndarray]:
    """Standardise; invalid frames (any non-finite feature) -> 0. Returns (features, valid).

    ``raw`` is standardised in place when it is a writeable C-contiguous float32 array."""
    z = np.require(raw, dtype=np.float32, requirements=["C", "W"])
    return z, standardise_inplace(z, standardizer)


FIT_CHUNK = 1 << 18
"""Rows per piece of a very long training session handed to ``Standardizer.fit`` (which works
in float64 one piece at a time)."""

TRANSFORM_CHUNK = 1 << 14
"""Rows standardised at a time (bounds the float64 temporaries)."""


def row_chunks(block: np.ndarray, chunk: int) -> list[np.ndarray]:
    """``block`` as views of at most ``chunk`` rows (one view when it is short enough)."""
    if len(block) <= chunk:
        return [block]
    return [block[a : a + chunk] for a in range(0, len(block), chunk)]


def standardise_inplace(block: np.ndarray, standardizer: Standardizer) -> np.ndarray:
    """Standardise the float32 ``block (T, F)`` in place, a few thousand rows at a time; invalid
    frames (any non-finite feature after standardising) -> 0. Returns ``valid (T,)``."""
    valid = np.empty(block.shape[0], dtype=bool)
    for a in range(0, block.shape[0], TRANSFORM_CHUNK):
        z = standardizer.transform(block[a : a + TRANSFORM_CHUNK])
        ok = np.isfinite(z).all(axis=1)
        z[~ok] = 0.0
        block[a : a + TRANSFORM_CHUNK] = z
        valid[a : a + TRANSFORM_CHUNK] = ok
    return valid


def write_raw_features(out: np.ndarray, raw: np.ndarray, session: Session) -> None:
    """Copy a session's raw features into its rows of the split's array; a frame with any
    non-finite feature becomes all NaN there (so that the standardiser's NaN-aware fit skips
    the whole frame, as it skips invalid frames)."""
    if raw.shape != out.shape:
        raise RuntimeError(
            f"session {session.name!r}: features of shape {raw.shape}, expected {out.shape} "
            "(feature_names and compute_features disagree)"
        )
    out[...] = raw
    out[~np.isfinite(out).all(axis=1)] = np.nan


def read_only_view(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (the prepared sessions share the training arrays)."""
    v = a.view()
    v.flags.writeable = False
    return v


def session_fps(session: Session, fallback: float | None) -> float:
    return float(session.fps or fallback or DEFAULT_FPS)


def prepare_session(
    session: Session, pipeline_state: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Features of a new session exactly as the data module computed them for training.

    Parameters
    ----------
    session
        A raw session (as read); body parts are matched by name to the state's.
    pipeline_state
        :meth:`DBMDataModule.pipeline_state` (e.g. from a checkpoint's hyperparameters).

    Returns
    -------
    features, valid
        ``(T, F)`` float32 standardised features with 0 at invalid frames, and the ``(T,)``
        bool mask of valid frames.

    Raises
    ------
    DataFormatError
        When the session lacks body parts the model was trained on (they are named).
    """
    state = pipeline_state
    trained = tuple(state.get("individuals", ()))
    session = reorder_bodyparts(match_individuals(session, trained), state["bodyparts"], trained)
    preprocess = PreprocessConfig(**state["preprocess"])
    cleaned, _ = clean_session(session, preprocess)
    require_valid_frames(cleaned, preprocess)
    raw = raw_features(
        cleaned,
        FeatureConfig(**state["features"]),
        ArenaBounds.from_dict(state["arena"]),
        session_fps(session, state.get("fps")),
    )
    return finalise_features(raw, Standardizer.from_dict(state["standardizer"]))


@dataclass
class PreparedSession:
    """One session after the data module's pipeline, full length (not windowed).

    ``session`` is the cleaned, labelled session (pixel pose), ``features`` ``(T, F)`` float32
    (0 at invalid frames), ``labels`` ``(T,)`` int64 in the data module's class order (-1 at
    unlabelled or invalid frames), ``valid`` ``(T,)`` bool.
    """

    name: str
    split: str
    session: Session
    features: np.ndarray
    labels: np.ndarray
    valid: np.ndarray
    raw_labels: np.ndarray | None = None
    """The labels before invalid frames were masked (to count labelled but invalid frames)."""


def merge_label_names(
    sessions: Sequence[Session], fixed: Sequence[str] | None
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """One class order for all sessions (``fixed`` first, then new names in order of first
    appearance) and every session's labels remapped to it."""
    names: list[str] = list(fixed) if fixed is not None else []
    for s in sessions:
        for n in s.label_names or ():
            if n not in names:
                names.append(n)
    out = []
    for s in sessions:
        if s.labels is None:
            raise DataFormatError(s.source, f"session {s.name!r} has no labels after labelling")
        own = tuple(s.label_names)
        if own == tuple(names[: len(own)]):
            out.append(s.labels)
            continue
        lut = np.array([names.index(n) for n in own], dtype=np.int64)
        lab = s.labels
        out.append(np.where(lab >= 0, lut[np.clip(lab, 0, len(lut) - 1)], UNLABELLED))
    return tuple(names), out
