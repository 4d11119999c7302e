"""Per-frame features: DBM distances, scaled coordinates, velocities, positional encoding,
egocentric pose, heading and speed.

Column order of :func:`compute_features` (and :func:`feature_names`):
``[distances, coordinates, velocities, positional encoding, egocentric, heading, speed]``,
each block present when enabled in :class:`FeatureConfig` (the blocks added later come last,
so the columns of the older blocks keep their positions). NaN inputs give NaN features; the
data module replaces invalid frames by 0 after standardising.

Egocentric blocks (``egocentric``, ``heading``, ``speed``) use the *body axis*: from the body
centre (``ego_centre``: a body part, or the centroid of all parts) to the front part
(``ego_front``: default the first body part, in DLC configs usually the snout/nose/head).
They are computed on the pixel pose and expressed in *isotropic* arena units
(:func:`ego_scale`: pixels x ``2 / max(arena width, arena height)``, so the arena's longer
side spans 2 like the [-1, 1] coordinates) because :func:`~dbm_lightning.preprocess.scale_pose`
scales x and y separately, which would distort distances and angles. Angles are measured in
image coordinates (from +x towards +y, i.e. clockwise on screen since y grows downwards).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dbm_lightning.preprocess import ArenaBounds
from dbm_lightning.ranges import at_least, check_ranges

__all__ = [
    "FeatureConfig",
    "Standardizer",
    "body_axis",
    "compute_features",
    "dbm_distance_features",
    "ego_part_indices",
    "ego_scale",
    "feature_names",
    "positional_encoding",
]


def _check_pose(pose: np.ndarray) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[2] != 2:
        raise ValueError(f"pose must be (frames, bodyparts, 2), got shape {pose.shape}")
    return pose


def dbm_distance_features(pose: np.ndarray) -> np.ndarray:
    """The 51 (for 6 parts) features of the original ``dbmFormatInputs.m``.

    Parameters
    ----------
    pose
        ``(T, P, 2)`` coordinates.

    Returns
    -------
    np.ndarray
        ``(T, P(P-1)/2 + P*P)`` float32: first ``||part_i(t) - part_j(t)||`` for ``i < j`` in
        lexicographic order, then ``||part_i(t+1) - part_j(t)||`` for all ``i`` (outer) and
        ``j`` (inner); the last frame repeats the previous frame's values (a single frame
        uses its distances to itself).
    """
    pose = _check_pose(pose)
    t, p, _ = pose.shape
    i, j = np.triu_indices(p, k=1)
    n_within = len(i)
    # x and y as contiguous (T, P) arrays; sqrt(dx*dx + dy*dy) is what np.linalg.norm
    # computes over a last axis of 2, without its (T, ., ., 2) temporaries
    x = np.ascontiguousarray(pose[..., 0])
    y = np.ascontiguousarray(pose[..., 1])
    out = np.empty((t, n_within + p * p), dtype=np.float32)
    dx, dy = x[:, i] - x[:, j], y[:, i] - y[:, j]
    out[:, :n_within] = np.sqrt(dx * dx + dy * dy)
    if t >= 2:
        # (T-1, P, P): [t, a, b] = ||part_a(t+1) - part_b(t)||
        dx = x[1:, :, None] - x[:-1, None, :]
        dy = y[1:, :, None] - y[:-1, None, :]
        out[:-1, n_within:] = np.sqrt(dx * dx + dy * dy).reshape(t - 1, p * p)
        out[-1, n_within:] = out[-2, n_within:]
    else:
        dx = x[:, :, None] - x[:, None, :]
        dy = y[:, :, None] - y[:, None, :]
        out[:, n_within:] = np.sqrt(dx * dx + dy * dy).reshape(t, p * p)
    return out


def positional_encoding(p: np.ndarray, L: int) -> np.ndarray:
    """gamma(p) = (sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^(L-1) pi p), cos(2^(L-1) pi p)).

    Parameters
    ----------
    p
        Any array (coordinates scaled to about [-1, 1]).
    L
        Number of frequencies (0 gives an empty last axis).

    Returns
    -------
    np.ndarray
        ``p.shape + (2L,)`` float32.
    """
    if L < 0:
        raise ValueError(f"L must be >= 0, got {L}")
    p = np.asarray(p, dtype=np.float64)
    angles = p[..., None] * (np.pi * 2.0 ** np.arange(L))  # (..., L)
    out = np.stack([np.sin(angles), np.cos(angles)], axis=-1)  # (..., L, 2)
    return out.reshape(*p.shape, 2 * L).astype(np.float32)


@dataclass(frozen=True)
class FeatureConfig:
    """Which feature blocks to compute.

    Parameters
    ----------
    distances
        The original DBM distance features (pixels).
    coordinates
        Scaled x, y of every body part.
    velocity
        Per-second change of the scaled coordinates (forward difference; last frame repeats).
    pe_L
        Positional-encoding frequencies on scaled x, y of every part (0 = off).
    egocentric
        Every body part relative to the body centre, rotated so that the body axis points
        along +x, in isotropic arena units (:func:`ego_scale`): ``2 P`` columns.
    heading
        sin and cos of the body-axis angle, and the turning rate in rad/s (signed angle from
        this frame's axis to the next one's, times fps; last frame repeats): 3 columns.
    speed
        Speed of the body centre in isotropic arena units per second (forward difference;
        last frame repeats): 1 column.
    ego_centre
        Body part used as the body centre (``None``: centroid of all parts).
    ego_front
        Body part the body axis points to (``None``: the first body part).
    """

    distances: bool = True
    coordinates: bool = False
    velocity: bool = False
    pe_L: int = field(default=0, metadata=at_least(0))
    egocentric: bool = False
    heading: bool = False
    speed: bool = False
    ego_centre: str | None = None
    ego_front: str | None = None

    def __post_init__(self) -> None:
        check_ranges(self)
        for name in ("ego_centre", "ego_front"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a body part name or None, got {value!r}")
        if self.ego_centre is not None and self.ego_centre == self.ego_front:
            raise ValueError(
                f"ego_centre and ego_front are both {self.ego_centre!r}: the body axis needs "
                "two different points"
            )
        if not (
            self.distances
            or self.coordinates
            or self.velocity
            or self.pe_L > 0
            or self.egocentric
            or self.heading
            or self.speed
        ):
            raise ValueError("FeatureConfig selects no features")

    @property
    def uses_body_axis(self) -> bool:
        """Whether a block needs the body centre / front part (egocentric, heading, speed)."""
        return self.egocentric or self.heading or self.speed

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        return asdict(self)


def _velocity(pose_scaled: np.ndarray, fps: float) -> np.ndarray:
    t = pose_scaled.shape[0]
    if t < 2:
        return np.zeros_like(pose_scaled)
    v = np.diff(pose_scaled, axis=0) * fps
    return np.concatenate([v, v[-1:]], axis=0)


def ego_scale(arena: ArenaBounds) -> float:
    """Isotropic arena units per pixel: ``2 / max(width, height)`` of the arena bounds.

    :func:`~dbm_lightning.preprocess.scale_pose` maps x and y to [-1, 1] with two different
    factors; egocentric coordinates and speed need one factor for both axes so that
    rotations and distances are preserved. With this one the arena's longer side spans 2.
    """
    return 2.0 / max(arena.x_max - arena.x_min, arena.y_max - arena.y_min)


def ego_part_indices(
    bodyparts: Sequence[str] | None, config: FeatureConfig
) -> tuple[int | None, int]:
    """Indices of the body centre (``None`` = centroid) and front parts of ``config``.

    Raises
    ------
    ValueError
        When ``ego_centre``/``ego_front`` is not one of ``bodyparts`` (or names are given but
        no ``bodyparts``), naming the part and the available ones.
    """
    parts = None if bodyparts is None else [str(b) for b in bodyparts]

    def index(key: str, name: str | None) -> int | None:
        if name is None:
            return None
        if parts is None:
            raise ValueError(
                f"features.{key}={name!r} needs the body part names (pass bodyparts=...)"
            )
        if name not in parts:
            raise ValueError(
                f"features.{key}: unknown body part {name!r}; the data has body parts {parts}"
            )
        return parts.index(name)

    centre = index("ego_centre", config.ego_centre)
    front = index("ego_front", config.ego_front)
    return centre, 0 if front is None else front


def body_axis(pose_px: np.ndarray, centre: int | None, front: int) -> tuple[np.ndarray, np.ndarray]:
    """Body centre ``(T, 2)`` and body-axis vector ``(T, 2)`` (centre -> front) in pixels.

    ``centre=None`` takes the centroid of all parts (NaN when any part is NaN).
    """
    pose_px = _check_pose(pose_px)
    c = pose_px.mean(axis=1) if centre is None else pose_px[:, centre]
    return c, pose_px[:, front] - c


def _forward(values: np.ndarray) -> np.ndarray:
    """``(T-1, ...)`` per-step values -> ``(T, ...)`` with the last frame repeating the one
    before (zeros for a single frame)."""
    if values.shape[0] == 0:
        return np.zeros((1, *values.shape[1:]), dtype=values.dtype)
    return np.concatenate([values, values[-1:]], axis=0)


def _ego_blocks(
    pose_px: np.ndarray,
    config: FeatureConfig,
    fps: float,
    bodyparts: Sequence[str] | None,
    arena: ArenaBounds | None,
) -> list[np.ndarray]:
    """The egocentric, heading and speed blocks (those enabled), float64."""
    t, p, _ = pose_px.shape
    centre, front = ego_part_indices(bodyparts, config)
    if front >= p or (centre is not None and centre >= p):
        raise ValueError(f"body part index out of range for a pose of {p} parts")
    c, axis = body_axis(pose_px, centre, front)
    if (config.egocentric or config.speed) and arena is None:
        raise ValueError("egocentric and speed features need the arena bounds (pass arena=...)")
    scale = ego_scale(arena) if arena is not None else 1.0
    length = np.hypot(axis[:, 0], axis[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        # unit axis (cos, sin); a zero-length axis (centre on the front part) means no rotation
        cos = np.where(length > 0, axis[:, 0] / length, 1.0)
        sin = np.where(length > 0, axis[:, 1] / length, 0.0)
    cos = np.where(np.isfinite(length), cos, np.nan)
    sin = np.where(np.isfinite(length), sin, np.nan)
    blocks = []
    if config.egocentric:
        d = pose_px - c[:, None, :]
        ex = cos[:, None] * d[..., 0] + sin[:, None] * d[..., 1]
        ey = -sin[:, None] * d[..., 0] + cos[:, None] * d[..., 1]
        blocks.append(np.stack([ex, ey], axis=-1).reshape(t, 2 * p) * scale)
    if config.heading:
        # signed angle from the axis at t to the axis at t+1 (wrapped to (-pi, pi])
        cross = cos[:-1] * sin[1:] - sin[:-1] * cos[1:]
        dot = cos[:-1] * cos[1:] + sin[:-1] * sin[1:]
        turn = _forward(np.arctan2(cross, dot) * fps)
        blocks.append(np.stack([sin, cos, turn], axis=1))
    if config.speed:
        step = np.diff(c, axis=0)
        speed = _forward(np.hypot(step[:, 0], step[:, 1]) * (scale * fps))
        blocks.append(speed[:, None])
    return blocks


def compute_features(
    pose_px: np.ndarray,
    pose_scaled: np.ndarray,
    config: FeatureConfig,
    fps: float,
    bodyparts: Sequence[str] | None = None,
    arena: ArenaBounds | None = None,
) -> np.ndarray:
    """The ``(T, F)`` float32 feature matrix of one session.

    Parameters
    ----------
    pose_px
        ``(T, P, 2)`` cleaned pixel pose (for the distance and egocentric features).
    pose_scaled
        The same pose scaled to the arena's [-1, 1] (coordinates, velocities, encoding).
    config
        The blocks to compute.
    fps
        Frames per second (velocities, turning rate and speed are per second).
    bodyparts
        Names of the ``P`` parts (needed when ``ego_centre``/``ego_front`` name a part).
    arena
        The bounds ``pose_scaled`` was scaled with (needed by the egocentric and speed
        blocks, for :func:`ego_scale`).
    """
    pose_px = _check_pose(pose_px)
    pose_scaled = _check_pose(pose_scaled)
    if pose_px.shape != pose_scaled.shape:
        raise ValueError(f"pose shapes differ: {pose_px.shape} vs {pose_scaled.shape}")
    t, p, _ = pose_px.shape
    if bodyparts is not None and len(bodyparts) != p:
        raise ValueError(f"{len(bodyparts)} body part names for a pose of {p} parts")
    blocks = []
    if config.distances:
        blocks.append(dbm_distance_features(pose_px))
    if config.coordinates:
        blocks.append(pose_scaled.reshape(t, 2 * p))
    if config.velocity:
        blocks.append(_velocity(pose_scaled, float(fps)).reshape(t, 2 * p))
    if config.pe_L > 0:
        blocks.append(positional_encoding(pose_scaled, config.pe_L).reshape(t, -1))
    if config.uses_body_axis:
        blocks += _ego_blocks(pose_px, config, float(fps), bodyparts, arena)
    return np.concatenate(blocks, axis=1).astype(np.float32)


def feature_names(bodyparts: Sequence[str], config: FeatureConfig) -> list[str]:
    """Column names of :func:`compute_features` for these body parts, in column order."""
    parts = list(bodyparts)
    p = len(parts)
    names: list[str] = []
    if config.distances:
        i, j = np.triu_indices(p, k=1)
        names += [f"dist_{parts[a]}_{parts[b]}" for a, b in zip(i, j, strict=True)]
        names += [f"step_{parts[a]}(t+1)_{parts[b]}(t)" for a in range(p) for b in range(p)]
    if config.coordinates:
        names += [f"{part}_{c}" for part in parts for c in "xy"]
    if config.velocity:
        names += [f"{part}_v{c}" for part in parts for c in "xy"]
    names += [
        f"pe_{part}_{c}_{fn}{k}"
        for part in parts
        for c in "xy"
        for k in range(config.pe_L)
        for fn in ("sin", "cos")
    ]
    if config.uses_body_axis:
        ego_part_indices(parts, config)  # unknown part names fail here, before any data
    if config.egocentric:
        names += [f"ego_{part}_{c}" for part in parts for c in "xy"]
    if config.heading:
        names += ["heading_sin", "heading_cos", "turn_rate"]
    if config.speed:
        names += ["speed"]
    return names


@dataclass
class Standardizer:
    """Per-feature z-scoring, fitted NaN-aware (on the training split only)."""

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.std = np.asarray(self.std, dtype=np.float64)
        if self.mean.shape != self.std.shape or self.mean.ndim != 1:
            raise ValueError(f"mean {self.mean.shape} and std {self.std.shape} must be equal 1-D")

    @classmethod
    def fit(cls, arrays: Sequence[np.ndarray]) -> Standardizer:
        """Mean and std per column over all finite values of the ``(T, F)`` ``arrays``.

        A column with zero (or undefined) spread gets std 1; one with no finite value gets
        mean 0.
        """
        # the arrays are read twice, each converted to float64 only while it is summed (no
        # float64 copy of the whole data: the training split can be a GiB of float32)
        arrays = [np.asarray(a) for a in arrays]
        if not arrays:
            raise ValueError("Standardizer.fit needs at least one array")
        widths = {a.shape[1] if a.ndim == 2 else -1 for a in arrays}
        if len(widths) != 1 or -1 in widths:
            raise ValueError(f"all arrays must be (T, F) with the same F, got widths {widths}")
        total: Any = 0
        count: Any = 0
        for a in arrays:
            a = np.asarray(a, dtype=np.float64)
            finite = np.isfinite(a)
            total = total + np.where(finite, a, 0.0).sum(axis=0)
            count = count + finite.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
            sq: Any = 0
            for a in arrays:
                a = np.asarray(a, dtype=np.float64)
                sq = sq + np.where(np.isfinite(a), (a - mean) ** 2, 0.0).sum(axis=0)
            std = np.sqrt(sq / np.maximum(count, 1))
        std = np.where(np.isfinite(std) & (std > 1e-12), std, 1.0)
        return cls(mean, std)

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return int(self.mean.shape[0])

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(X - mean) / std`` as float32 (NaN stays NaN)."""
        X = np.asarray(X)
        if X.shape[-1] != self.n_features:
            raise ValueError(f"expected {self.n_features} features, got {X.shape[-1]}")
        return ((X - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict:
        """``{"mean": [...], "std": [...]}`` (JSON-able)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: Mapping) -> Standardizer:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64))
