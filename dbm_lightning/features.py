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

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from dbm_lightning.kinematics import (
    body_length,
    centre_axis,
    forward,
    per_window,
    segment_angles,
    unit_axis,
)
from dbm_lightning.preprocess import ArenaBounds
from dbm_lightning.ranges import at_least, check_ranges, one_of
from dbm_lightning.session import ANIMAL_SEPARATOR
from dbm_lightning.skeleton import part_index
from dbm_lightning.social_features import social_block, social_feature_names

__all__ = [
    "FeatureConfig",
    "Standardizer",
    "body_axis",
    "check_windows",
    "compute_features",
    "dbm_distance_features",
    "ego_part_indices",
    "ego_scale",
    "feature_names",
    "positional_encoding",
    "window_features",
]


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
    social
        For sessions of two or more animals, the social block
        (:mod:`~dbm_lightning.social_features`): distances between the animals' parts, facing
        of each to the other, centre distance, approach rate, relative speed and speed
        towards the other, in the egocentric blocks' units.
    units
        ``"arena"``: the egocentric, speed and social blocks in isotropic arena units
        (:func:`ego_scale`), the distance block in pixels (the paper's). ``"body_length"``:
        every distance and speed (the distance, egocentric, speed and social blocks) divided
        by the body length, the median over the window's frames (a whole session when it is
        prepared; every animal pooled) of the distance from ``ego_centre`` to ``ego_front``:
        features that survive a new camera (scale) and other animals (size).
    angles
        The angle at every inner part of the skeleton in part order (between the segments
        ``part[i] -> part[i+1]`` and ``part[i+1] -> part[i+2]``) as sin and cos, per animal:
        ``2 (P - 2)`` columns, unchanged by rotation, scale and position.
    session_zscore
        Standardise every feature per session (its own mean and spread over its valid
        frames) before the training-split z-score: removes what differs between recordings
        as a whole (camera, animal size, arena), also what differs in behaviour; not
        combinable with pose augmentation.
    symmetric
        Make the per-animal blocks (egocentric, heading, speed: each column sorted over the
        animals) and the social block unchanged when the tracker swaps identities. The
        distance and coordinate blocks list the parts of every animal in file order and are
        not symmetric: turn them off for an identity-free model.

    In a multi-animal session the egocentric, heading and speed blocks are computed for each
    animal (its own body centre and axis, ``ego_centre``/``ego_front`` naming one animal's
    parts), one animal after the other; the distance and coordinate blocks take every part of
    every animal.
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
    social: bool = False
    symmetric: bool = False
    units: str = field(default="arena", metadata=one_of(("arena", "body_length"), "units"))
    angles: bool = False
    session_zscore: bool = False

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
            or self.social
            or self.angles
        ):
            raise ValueError("FeatureConfig selects no features")

    @property
    def uses_body_axis(self) -> bool:
        """Whether a block needs the body centre / front part (egocentric, heading, speed)."""
        return self.egocentric or self.heading or self.speed

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        return asdict(self)


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
    for key, name in (("ego_centre", config.ego_centre), ("ego_front", config.ego_front)):
        if name is not None and bodyparts is None:
            raise ValueError(
                f"features.{key}={name!r} needs the body part names (pass bodyparts=...)"
            )
    parts = [str(b) for b in bodyparts or ()]
    centre = part_index(parts, config.ego_centre, "features.ego_centre", "the data has")
    front = part_index(parts, config.ego_front, "features.ego_front", "the data has")
    return centre, 0 if front is None else front


def _as_windows(pose: np.ndarray) -> torch.Tensor:
    """A session's ``(T, P, 2)`` pose as one float64 window ``(1, T, P, 2)``."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[2] != 2:
        raise ValueError(f"pose must be (frames, bodyparts, 2), got shape {pose.shape}")
    return torch.from_numpy(pose)[None]


def check_windows(pose: torch.Tensor) -> None:
    """Refuse anything but a batch of pose windows ``(B, W, P, 2)``."""
    if pose.ndim != 4 or pose.shape[-1] != 2:
        raise ValueError(f"pose must be (windows, frames, bodyparts, 2), got {tuple(pose.shape)}")


def _distances(x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    """The DBM distance blocks of ``x``, ``y`` ``(B, W, P)``: within-frame, then frame t+1 to
    frame t (the last frame repeating the previous one's; one frame: its own distances)."""
    b, w, p = x.shape
    i, j = torch.triu_indices(p, p, offset=1, device=x.device)
    dx, dy = x[..., i] - x[..., j], y[..., i] - y[..., j]
    within = torch.sqrt(dx * dx + dy * dy)
    if w >= 2:
        dx = x[:, 1:, :, None] - x[:, :-1, None, :]  # [b, t, a, c] = part_a(t+1) - part_c(t)
        dy = y[:, 1:, :, None] - y[:, :-1, None, :]
    else:
        dx = x[:, :, :, None] - x[:, :, None, :]
        dy = y[:, :, :, None] - y[:, :, None, :]
    step = torch.sqrt(dx * dx + dy * dy).reshape(b, -1, p * p)
    return [within, forward(step, w) if w >= 2 else step]


def _encoding(scaled: torch.Tensor, L: int) -> torch.Tensor:
    """gamma(p) of every value of ``scaled``: ``scaled.shape + (2 L,)``, sin/cos per frequency."""
    freqs = math.pi * 2.0 ** torch.arange(L, dtype=scaled.dtype, device=scaled.device)
    angles = scaled[..., None] * freqs
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)


def _ego_blocks(
    pose_px: torch.Tensor,
    config: FeatureConfig,
    arena: ArenaBounds | None,
    fps: float | torch.Tensor,
    bodyparts: Sequence[str] | None,
    scale: float | torch.Tensor,
) -> list[torch.Tensor]:
    """The egocentric, heading, speed and angle blocks (those enabled) of one animal's pose;
    ``scale`` converts pixels to the feature unit (a number, or one per window)."""
    b, w, p, _ = pose_px.shape
    centre, front = ego_part_indices(bodyparts, config)
    if front >= p or (centre is not None and centre >= p):
        raise ValueError(f"body part index out of range for a pose of {p} parts")
    c, axis = centre_axis(pose_px, centre, front)
    cos, sin = unit_axis(axis)  # a zero-length axis (centre on the front part): no rotation
    rate = per_window(fps, pose_px, 2)
    blocks = []
    if config.egocentric:
        d = pose_px - c[:, :, None, :]
        ex = cos[..., None] * d[..., 0] + sin[..., None] * d[..., 1]
        ey = -sin[..., None] * d[..., 0] + cos[..., None] * d[..., 1]
        blocks.append(
            torch.stack([ex, ey], dim=-1).reshape(b, w, 2 * p) * per_window(scale, pose_px, 3)
        )
    if config.heading:
        # signed angle from the axis at t to the axis at t+1 (wrapped to (-pi, pi])
        cross = cos[:, :-1] * sin[:, 1:] - sin[:, :-1] * cos[:, 1:]
        dot = cos[:, :-1] * cos[:, 1:] + sin[:, :-1] * sin[:, 1:]
        turn = forward(torch.atan2(cross, dot) * rate, w)
        blocks.append(torch.stack([sin, cos, turn], dim=-1))
    if config.speed:
        step = c[:, 1:] - c[:, :-1]
        speed = forward(
            torch.hypot(step[..., 0], step[..., 1]) * (per_window(scale, pose_px, 2) * rate), w
        )
        blocks.append(speed[..., None])
    if config.angles and p >= 3:
        blocks.append(segment_angles(pose_px))
    return blocks


def window_features(
    pose_px: torch.Tensor,
    config: FeatureConfig,
    arena: ArenaBounds | None,
    fps: float | torch.Tensor,
    bodyparts: Sequence[str] | None = None,
    pose_scaled: torch.Tensor | None = None,
    animals: int = 1,
) -> torch.Tensor:
    """The features of every window of a batch: the one implementation, in torch, that the
    data pipeline (through :func:`compute_features`, a session being one window) and
    training-time augmentation (on the device) both use.

    Parameters
    ----------
    pose_px
        ``(B, W, P, 2)`` pixel pose (any float dtype and device; the result has the same).
    config, bodyparts
        The blocks to compute; the ``P`` part names (needed when ``ego_centre``/``ego_front``
        name a part).
    arena
        The arena's pixel bounds: the scaled pose is computed from them (unless
        ``pose_scaled`` is given), and the egocentric and speed blocks use :func:`ego_scale`.
    fps
        Frame rate (velocities, turning rate and speed are per second): a number, or a ``(B,)``
        tensor with one per window.
    pose_scaled
        The pose already scaled to the arena's [-1, 1] (``None``: computed here).
    animals
        Animals in the pose (``P`` parts are ``animals`` x the parts of one, individual-major;
        ``bodyparts`` then names one animal's parts, or all ``P``).

    Returns
    -------
    torch.Tensor
        ``(B, W, F)`` features, the columns of :func:`feature_names`. Each window is treated
        as a whole session: its last frame's "t+1" terms (step distances, velocity, turning
        rate, speed) repeat the previous frame's. NaN pose gives NaN features.
    """
    check_windows(pose_px)
    b, w, p, _ = pose_px.shape
    if animals < 1 or p % animals:
        raise ValueError(f"{p} body parts cannot be split into {animals} animals")
    parts = _one_animal_parts(bodyparts, p, animals)
    per_animal = pose_px.reshape(b, w, animals, p // animals, 2)
    if config.units == "body_length":
        centre, front = ego_part_indices(parts, config)
        scale: float | torch.Tensor = 1.0 / body_length(per_animal, centre, front)
    elif config.egocentric or config.speed or config.social:
        if arena is None:
            raise ValueError(
                "egocentric, speed and social features in arena units need the arena bounds "
                "(pass arena=...)"
            )
        scale = ego_scale(arena)
    else:
        scale = 1.0
    blocks: list[torch.Tensor] = []
    if config.distances:
        dist = _distances(pose_px[..., 0], pose_px[..., 1])
        if config.units == "body_length":
            dist = [d * per_window(scale, pose_px, 3) for d in dist]
        blocks += dist
    if config.coordinates or config.velocity or config.pe_L > 0:
        scaled = pose_scaled
        if scaled is None:
            if arena is None:
                raise ValueError("coordinate features need the arena bounds (pass arena=...)")
            lo = torch.tensor(
                [arena.x_min, arena.y_min], dtype=pose_px.dtype, device=pose_px.device
            )
            span = torch.tensor(
                [arena.x_max - arena.x_min, arena.y_max - arena.y_min],
                dtype=pose_px.dtype,
                device=pose_px.device,
            )
            scaled = 2.0 * (pose_px - lo) / span - 1.0  # (B, W, P, 2)
        if scaled.shape != pose_px.shape:
            raise ValueError(f"pose shapes differ: {tuple(pose_px.shape)} vs {tuple(scaled.shape)}")
        if config.coordinates:
            blocks.append(scaled.reshape(b, w, 2 * p))
        if config.velocity:
            v = (scaled[:, 1:] - scaled[:, :-1]) * per_window(fps, pose_px, 4)
            blocks.append(forward(v, w).reshape(b, w, 2 * p))
        if config.pe_L > 0:
            blocks.append(_encoding(scaled, config.pe_L).reshape(b, w, -1))
    if config.uses_body_axis or config.angles:
        flat = per_animal.permute(0, 2, 1, 3, 4).reshape(b * animals, w, p // animals, 2)
        rate = fps.repeat_interleave(animals) if _is_per_window(fps) else fps
        each = scale.repeat_interleave(animals) if _is_per_window(scale) else scale
        ego = torch.cat(_ego_blocks(flat, config, arena, rate, parts, each), dim=-1)
        ego = ego.reshape(b, animals, w, -1)
        if config.symmetric:
            ego = ego.sort(dim=1).values
        blocks.append(ego.permute(0, 2, 1, 3).reshape(b, w, -1))
    if config.social:
        if animals < 2:
            raise ValueError(
                "features.social needs sessions of two or more animals (a multi-animal pose "
                "file); this data has one animal per session"
            )
        centre, front = ego_part_indices(parts, config)
        blocks.append(social_block(per_animal, centre, front, scale, fps, config.symmetric))
    return torch.cat(blocks, dim=-1)


def _is_per_window(value: float | torch.Tensor) -> bool:
    return isinstance(value, torch.Tensor) and value.ndim > 0


def _one_animal_parts(bodyparts: Sequence[str] | None, p: int, animals: int) -> list[str] | None:
    """One animal's part names from ``bodyparts`` (one animal's, or every animal's)."""
    if bodyparts is None:
        return None
    names = [str(n) for n in bodyparts]
    if len(names) == p // animals:
        return names
    if len(names) != p:
        raise ValueError(f"{len(names)} body part names for a pose of {p} parts")
    if animals == 1:
        return names
    first = names[0].split(ANIMAL_SEPARATOR, 1)[0] + ANIMAL_SEPARATOR
    return [n.removeprefix(first) for n in names[: p // animals]]


def compute_features(
    pose_px: np.ndarray,
    pose_scaled: np.ndarray,
    config: FeatureConfig,
    fps: float,
    bodyparts: Sequence[str] | None = None,
    arena: ArenaBounds | None = None,
    animals: int = 1,
) -> np.ndarray:
    """The ``(T, F)`` float32 feature matrix of one session (:func:`window_features` of the
    session as one window, in float64).

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
    animals
        Animals of a multi-animal session (its parts individual-major).
    """
    px, scaled = _as_windows(pose_px), _as_windows(pose_scaled)
    if px.shape != scaled.shape:
        raise ValueError(f"pose shapes differ: {px.shape[1:]} vs {scaled.shape[1:]}")
    out = window_features(
        px, config, arena, float(fps), bodyparts, pose_scaled=scaled, animals=animals
    )
    return out[0].numpy().astype(np.float32)


def dbm_distance_features(pose: np.ndarray) -> np.ndarray:
    """The 51 (for 6 parts) features of the original ``dbmFormatInputs.m``: ``(T,
    P(P-1)/2 + P*P)`` float32, first ``||part_i(t) - part_j(t)||`` for ``i < j`` in
    lexicographic order, then ``||part_i(t+1) - part_j(t)||`` for all ``i`` (outer) and ``j``
    (inner); the last frame repeats the previous frame's values (a single frame uses its
    distances to itself)."""
    px = _as_windows(pose)
    return torch.cat(_distances(px[..., 0], px[..., 1]), dim=-1)[0].numpy().astype(np.float32)


def positional_encoding(p: np.ndarray, L: int) -> np.ndarray:
    """gamma(p) = (sin(2^0 pi p), cos(2^0 pi p), ..., sin(2^(L-1) pi p), cos(2^(L-1) pi p)) of
    every value of ``p`` (coordinates scaled to about [-1, 1]): ``p.shape + (2L,)`` float32
    (``L = 0``: an empty last axis)."""
    if L < 0:
        raise ValueError(f"L must be >= 0, got {L}")
    values = torch.from_numpy(np.asarray(p, dtype=np.float64))
    return _encoding(values, L).numpy().astype(np.float32)


def body_axis(pose_px: np.ndarray, centre: int | None, front: int) -> tuple[np.ndarray, np.ndarray]:
    """Body centre ``(T, 2)`` and body-axis vector ``(T, 2)`` (centre -> front) in pixels;
    ``centre=None`` takes the centroid of all parts (NaN when any part is NaN)."""
    c, axis = centre_axis(_as_windows(pose_px), centre, front)
    return c[0].numpy(), axis[0].numpy()


def feature_names(
    bodyparts: Sequence[str], config: FeatureConfig, individuals: Sequence[str] = ()
) -> list[str]:
    """Column names of :func:`compute_features` for these body parts (every animal's, as the
    session lists them) and individuals, in column order."""
    parts = list(bodyparts)
    p = len(parts)
    animals = max(1, len(individuals))
    one = _one_animal_parts(parts, p, animals) or parts
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
    if config.uses_body_axis or config.social or config.units == "body_length":
        ego_part_indices(one, config)  # unknown part names fail here, before any data
    ego: list[str] = []
    if config.egocentric:
        ego += [f"ego_{part}_{c}" for part in one for c in "xy"]
    if config.heading:
        ego += ["heading_sin", "heading_cos", "turn_rate"]
    if config.speed:
        ego += ["speed"]
    if config.angles and len(one) < 3:
        raise ValueError(f"features.angles needs 3 or more body parts per animal, got {one}")
    if config.angles:
        ego += [
            f"angle_{one[i]}_{one[i + 1]}_{one[i + 2]}_{fn}"
            for i in range(len(one) - 2)
            for fn in ("sin", "cos")
        ]
    if animals == 1:
        names += ego
    else:
        who = [f"rank{k + 1}" for k in range(animals)] if config.symmetric else list(individuals)
        names += [f"{a}/{n}" for a in who for n in ego]
    if config.social:
        if animals < 2:
            raise ValueError(
                "features.social needs sessions of two or more animals (a multi-animal pose "
                "file); this data has one animal per session"
            )
        names += social_feature_names(list(individuals), one, config.symmetric)
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
