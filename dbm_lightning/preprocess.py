"""Cleaning of pose tracks: likelihood masking, short-gap interpolation, arena scaling.

Everything here is vectorised over frames; at most a loop over sessions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from dbm_lightning.errors import DataFormatError
from dbm_lightning.ranges import at_least, between, check_ranges
from dbm_lightning.session import Session

__all__ = [
    "ArenaBounds",
    "GapReport",
    "PreprocessConfig",
    "clean_session",
    "interpolate_gaps",
    "require_valid_frames",
    "scale_pose",
]


@dataclass(frozen=True)
class PreprocessConfig:
    """How to clean a session.

    Parameters
    ----------
    likelihood_threshold
        Points whose tracking likelihood is below this become missing (NaN).
    max_gap
        Interior runs of missing frames up to this length are linearly interpolated (per body
        part and coordinate); longer runs, and runs at the start or end, stay missing.
    """

    likelihood_threshold: float = field(default=0.6, metadata=between(0, 1))
    max_gap: int = field(default=10, metadata=at_least(0))

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class GapReport:
    """Per-session fractions of frames (a frame counts when any body part is affected).

    Attributes
    ----------
    session
        Session name.
    frac_low_likelihood
        Frames with at least one point below the likelihood threshold (or already missing).
    frac_interpolated
        Frames where at least one coordinate was filled by interpolation.
    frac_missing
        Frames still missing at least one coordinate after cleaning (i.e. invalid frames).
    """

    session: str
    frac_low_likelihood: float
    frac_interpolated: float
    frac_missing: float

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        return asdict(self)


def interpolate_gaps(values: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly fill interior NaN runs of length <= ``max_gap`` along axis 0.

    Parameters
    ----------
    values
        ``(T, ...)`` array; every trailing index is an independent series.
    max_gap
        Longest run of NaN frames that is filled.

    Returns
    -------
    filled, filled_mask
        ``filled`` has the same shape and dtype as ``values``; ``filled_mask`` is True where a
        value was interpolated. Observed (finite) values are never changed.
    """
    values = np.asarray(values)
    shape = values.shape
    n = shape[0] if values.ndim else 0
    flat = values.reshape(n, -1).astype(np.float64)
    missing = ~np.isfinite(flat)
    filled_mask = np.zeros_like(missing)
    if n == 0 or max_gap <= 0 or not missing.any():
        return values.copy(), filled_mask.reshape(shape)

    frames = np.arange(n)[:, None]
    # index of the previous / next observed frame for every frame (per column)
    prev_idx = np.maximum.accumulate(np.where(missing, -1, frames), axis=0)
    next_idx = np.minimum.accumulate(np.where(missing, n, frames)[::-1], axis=0)[::-1]
    gap_len = next_idx - prev_idx - 1
    fill = missing & (prev_idx >= 0) & (next_idx < n) & (gap_len <= max_gap)
    out = flat.copy()
    rows, cols = np.nonzero(fill)
    p, q = prev_idx[rows, cols], next_idx[rows, cols]
    v0, v1 = flat[p, cols], flat[q, cols]
    out[rows, cols] = v0 + (v1 - v0) * ((rows - p) / (q - p))
    return out.astype(values.dtype, copy=False).reshape(shape), fill.reshape(shape)


def clean_session(session: Session, config: PreprocessConfig) -> tuple[Session, GapReport]:
    """Mask low-likelihood points, interpolate short gaps, and report what was done.

    Parameters
    ----------
    session
        The raw session (pixel pose, NaN for missing).
    config
        Threshold and longest interpolated gap.

    Returns
    -------
    cleaned, report
        A copy of the session with the cleaned pose, and its :class:`GapReport`.
    """
    pose = np.array(session.pose, dtype=np.float32, copy=True)
    lik = session.likelihood
    low = ~(lik >= config.likelihood_threshold)  # NaN likelihood counts as low
    pose[low] = np.nan
    missing_before = low[:, :, None] | ~np.isfinite(pose)
    filled, filled_mask = interpolate_gaps(pose, config.max_gap)
    n = max(session.n_frames, 1)
    report = GapReport(
        session=session.name,
        frac_low_likelihood=float(missing_before.any(axis=(1, 2)).sum() / n),
        frac_interpolated=float(filled_mask.any(axis=(1, 2)).sum() / n),
        frac_missing=float((~np.isfinite(filled)).any(axis=(1, 2)).sum() / n),
    )
    return session.with_pose(filled), report


def valid_frames(pose: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: True where every body part has finite x and y."""
    return np.isfinite(pose).all(axis=tuple(range(1, pose.ndim)))


def require_valid_frames(cleaned: Session, config: PreprocessConfig) -> None:
    """Raise :class:`DataFormatError` naming the session's file when no frame of the *cleaned*
    session is valid (e.g. every likelihood below the threshold): such a session would
    silently contribute nothing."""
    if cleaned.n_frames and valid_frames(cleaned.pose).any():
        return
    tracked = np.isfinite(cleaned.pose).all(axis=2).any(axis=0)
    never = [p for p, ok in zip(cleaned.bodyparts, tracked, strict=True) if not ok]
    why = (
        f"body part(s) {never} never tracked with likelihood >= {config.likelihood_threshold}"
        if never
        else "the body parts are never all tracked in the same frame"
    )
    raise DataFormatError(
        cleaned.source,
        f"session {cleaned.name!r}: no valid frame after cleaning (likelihood threshold "
        f"{config.likelihood_threshold}, max gap {config.max_gap}) in its {cleaned.n_frames} "
        f"frames: {why}",
    )


@dataclass(frozen=True)
class ArenaBounds:
    """Pixel extent of the arena, mapped to [-1, 1] by :func:`scale_pose`."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def __post_init__(self) -> None:
        for lo, hi, axis in ((self.x_min, self.x_max, "x"), (self.y_min, self.y_max, "y")):
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise ValueError(f"arena bounds for {axis} must be finite, got [{lo}, {hi}]")
            if not hi > lo:
                raise ValueError(
                    f"degenerate arena extent in {axis}: [{lo}, {hi}] (max must exceed min); "
                    "give the arena bounds explicitly in the config"
                )

    @classmethod
    def from_data(cls, sessions: Iterable[Session | np.ndarray]) -> ArenaBounds:
        """The NaN-aware extent of all points of all ``sessions`` (Sessions or pose arrays)."""
        lo = np.array([np.inf, np.inf])
        hi = np.array([-np.inf, -np.inf])
        for s in sessions:
            pose = s.pose if isinstance(s, Session) else np.asarray(s)
            xy = pose.reshape(-1, 2)
            ok = np.isfinite(xy)
            if not ok.any():
                continue
            lo = np.minimum(lo, np.where(ok, xy, np.inf).min(axis=0))
            hi = np.maximum(hi, np.where(ok, xy, -np.inf).max(axis=0))
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise ValueError("cannot infer arena bounds: no finite coordinates in the sessions")
        return cls(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))

    def to_dict(self) -> dict:
        """A JSON-able dict (``x_min, x_max, y_min, y_max``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> ArenaBounds:
        """Inverse of :meth:`to_dict`."""
        return cls(float(d["x_min"]), float(d["x_max"]), float(d["y_min"]), float(d["y_max"]))


def scale_pose(pose: np.ndarray, bounds: ArenaBounds) -> np.ndarray:
    """Map pixel coordinates ``(..., 2)`` linearly so the arena spans [-1, 1] (NaN stays NaN)."""
    pose = np.asarray(pose, dtype=np.float64)
    lo = np.array([bounds.x_min, bounds.y_min])
    span = np.array([bounds.x_max - bounds.x_min, bounds.y_max - bounds.y_min])
    return (2.0 * (pose - lo) / span - 1.0).astype(np.float32)
