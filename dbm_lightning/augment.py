"""Pose augmentation for training (torch, on the device).

One random transform per window -- a rotation by an angle in ``[-rotation_deg,
rotation_deg]`` about the arena centre, a reflection (x mirrored about the arena centre) with
probability ``reflection_p``, an isotropic scale in ``scale`` about the arena centre and a
translation of up to ``translation`` x the arena width/height -- is applied to every frame and
body part of that window alike (``p' = c + s R M (p - c) + t``), so a window stays one
plausible recording of a mouse seen in a rotated/mirrored/shifted/resized arena. The optional
Gaussian jitter (std ``jitter_px`` pixels, independent per point and frame) is the only
per-frame part. NaN points stay NaN. Augmented points may leave the arena bounds (scaled
coordinates then exceed [-1, 1]).

:func:`dbm_lightning.features.window_features` (the one feature implementation) recomputes the
features of augmented pixel windows ``(B, W, P, 2)``, column for column. Within a window, the
last frame's "t+1" terms (DBM step distances, velocity, turning rate, speed) repeat the
previous frame's, as they do at the end of a session: at training
time the last frame of a window that does not end its session therefore differs slightly
from the stored feature of that frame (every other frame is the same, up to float32
rounding).

The data module (:class:`~dbm_lightning.data.DBMDataModule` with an enabled
:class:`AugmentConfig`) applies all this on the device in ``on_after_batch_transfer``, to
training batches only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from dbm_lightning.features import check_windows
from dbm_lightning.preprocess import ArenaBounds
from dbm_lightning.ranges import at_least, between, check_ranges

__all__ = [
    "AugmentConfig",
    "PoseTransform",
    "apply_transform",
    "augment_pose",
    "draw_transforms",
    "standardise_torch",
]


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time pose augmentation (the ``augment`` config group).

    Parameters
    ----------
    enabled
        Off by default: training batches are then exactly the stored features.
    rotation_deg
        Rotation angle drawn uniformly in ``[-rotation_deg, rotation_deg]`` degrees (0..180).
    reflection_p
        Probability of mirroring x about the arena centre.
    translation
        Shift drawn uniformly in ``[-translation, translation]`` x arena width (x) and height
        (y).
    scale
        ``(low, high)``: isotropic scale factor drawn uniformly in this range (about the arena
        centre).
    jitter_px
        Std of independent Gaussian noise added to every point of every frame, in pixels
        (0 = none; the only per-frame part of the augmentation).
    """

    enabled: bool = False
    rotation_deg: float = field(default=180.0, metadata=between(0, 180))
    reflection_p: float = field(default=0.5, metadata=between(0, 1))
    translation: float = field(default=0.1, metadata=at_least(0, integer=False))
    scale: tuple[float, float] = (0.9, 1.1)
    jitter_px: float = field(default=0.0, metadata=at_least(0, integer=False))

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ValueError(f"enabled must be true or false, got {self.enabled!r}")
        check_ranges(self)
        try:
            low, high = (float(v) for v in self.scale)
        except (TypeError, ValueError):
            raise ValueError(f"scale must be a pair [low, high], got {self.scale!r}") from None
        if not (0.0 < low <= high < math.inf):
            raise ValueError(f"scale must be [low, high] with 0 < low <= high, got {self.scale}")
        object.__setattr__(self, "scale", (low, high))

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        d = asdict(self)
        d["scale"] = list(self.scale)
        return d


@dataclass(frozen=True)
class PoseTransform:
    """The transform of each of ``B`` windows: ``angle`` (rad), ``reflect`` (bool), ``shift``
    ``(B, 2)`` pixels, ``scale`` ``(B,)``; applied as ``c + scale R(angle) M (p - c) + shift``
    with ``M`` the mirror of x when ``reflect`` and ``c`` the arena centre."""

    angle: torch.Tensor
    reflect: torch.Tensor
    shift: torch.Tensor
    scale: torch.Tensor


def _arena_centre_size(arena: ArenaBounds) -> tuple[tuple[float, float], tuple[float, float]]:
    centre = ((arena.x_min + arena.x_max) / 2.0, (arena.y_min + arena.y_max) / 2.0)
    size = (arena.x_max - arena.x_min, arena.y_max - arena.y_min)
    return centre, size


def draw_transforms(
    n: int,
    config: AugmentConfig,
    arena: ArenaBounds,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> PoseTransform:
    """One random :class:`PoseTransform` per window for ``n`` windows (one ``torch.rand``
    call; ``generator=None`` uses torch's default generator of ``device``)."""
    u = torch.rand((n, 5), generator=generator, device=device, dtype=dtype)
    _, (width, height) = _arena_centre_size(arena)
    low, high = config.scale
    angle = (2.0 * u[:, 0] - 1.0) * math.radians(float(config.rotation_deg))
    reflect = u[:, 1] < float(config.reflection_p)
    extent = torch.tensor([width, height], device=u.device, dtype=dtype)
    shift = (2.0 * u[:, 2:4] - 1.0) * float(config.translation) * extent
    scale = low + u[:, 4] * (high - low)
    return PoseTransform(angle=angle, reflect=reflect, shift=shift, scale=scale)


def apply_transform(
    pose: torch.Tensor, transform: PoseTransform, arena: ArenaBounds
) -> torch.Tensor:
    """``pose (B, W, P, 2)`` pixels with window ``b`` transformed by ``transform[b]``."""
    check_windows(pose)
    (cx, cy), _ = _arena_centre_size(arena)
    dx = pose[..., 0] - cx
    dy = pose[..., 1] - cy
    dx = torch.where(transform.reflect[:, None, None], -dx, dx)
    cos = (torch.cos(transform.angle) * transform.scale)[:, None, None].to(pose.dtype)
    sin = (torch.sin(transform.angle) * transform.scale)[:, None, None].to(pose.dtype)
    shift = transform.shift.to(pose.dtype)
    x = cx + cos * dx - sin * dy + shift[:, 0, None, None]
    y = cy + sin * dx + cos * dy + shift[:, 1, None, None]
    return torch.stack([x, y], dim=-1)


def augment_pose(
    pose: torch.Tensor,
    config: AugmentConfig,
    arena: ArenaBounds,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Augment a batch of pixel windows ``(B, W, P, 2)`` (see the module doc).

    One transform per window (same for all its frames and parts), then per-point Gaussian
    jitter of std ``config.jitter_px`` pixels when positive. NaN stays NaN. Random numbers
    come from ``generator`` (``None``: torch's default generator of the pose's device).
    """
    check_windows(pose)
    transform = draw_transforms(
        pose.shape[0], config, arena, generator=generator, device=pose.device, dtype=pose.dtype
    )
    out = apply_transform(pose, transform, arena)
    if config.jitter_px > 0:
        noise = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        out = out + float(config.jitter_px) * noise
    return out


def standardise_torch(
    raw: torch.Tensor, mean: torch.Tensor, std: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(raw - mean) / std`` with invalid frames (any non-finite feature) set to 0, as the
    data module does in NumPy. Returns ``(features, valid (B, W) bool)``."""
    z = (raw - mean) / std
    valid = torch.isfinite(z).all(dim=-1)
    return torch.where(valid[..., None], z, torch.zeros((), dtype=z.dtype, device=z.device)), valid
