"""Per-frame features: DBM distances, scaled coordinates, velocities, positional encoding.

Column order of :func:`compute_features` (and :func:`feature_names`):
``[distances, coordinates, velocities, positional encoding]``, each block present when
enabled in :class:`FeatureConfig`. NaN inputs give NaN features; the data module replaces
invalid frames by 0 after standardising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = [
    "FeatureConfig",
    "Standardizer",
    "compute_features",
    "dbm_distance_features",
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
    """

    distances: bool = True
    coordinates: bool = False
    velocity: bool = False
    pe_L: int = 0

    def __post_init__(self) -> None:
        if self.pe_L < 0:
            raise ValueError(f"pe_L must be >= 0, got {self.pe_L}")
        if not (self.distances or self.coordinates or self.velocity or self.pe_L > 0):
            raise ValueError("FeatureConfig selects no features")

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        return asdict(self)


def _velocity(pose_scaled: np.ndarray, fps: float) -> np.ndarray:
    t = pose_scaled.shape[0]
    if t < 2:
        return np.zeros_like(pose_scaled)
    v = np.diff(pose_scaled, axis=0) * fps
    return np.concatenate([v, v[-1:]], axis=0)


def compute_features(
    pose_px: np.ndarray, pose_scaled: np.ndarray, config: FeatureConfig, fps: float
) -> np.ndarray:
    """The ``(T, F)`` float32 feature matrix of one session.

    Parameters
    ----------
    pose_px
        ``(T, P, 2)`` cleaned pixel pose (for the distance features).
    pose_scaled
        The same pose scaled to the arena's [-1, 1] (coordinates, velocities, encoding).
    config
        The blocks to compute.
    fps
        Frames per second (velocities are per second).
    """
    pose_px = _check_pose(pose_px)
    pose_scaled = _check_pose(pose_scaled)
    if pose_px.shape != pose_scaled.shape:
        raise ValueError(f"pose shapes differ: {pose_px.shape} vs {pose_scaled.shape}")
    t, p, _ = pose_px.shape
    blocks = []
    if config.distances:
        blocks.append(dbm_distance_features(pose_px))
    if config.coordinates:
        blocks.append(pose_scaled.reshape(t, 2 * p))
    if config.velocity:
        blocks.append(_velocity(pose_scaled, float(fps)).reshape(t, 2 * p))
    if config.pe_L > 0:
        blocks.append(positional_encoding(pose_scaled, config.pe_L).reshape(t, -1))
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
