"""Torch primitives shared by the feature blocks: forward differences over a window, the body
centre and axis, per-window numbers."""

from __future__ import annotations

import torch


def forward(values: torch.Tensor, n_frames: int) -> torch.Tensor:
    """``(B, W-1, ...)`` per-step values -> ``(B, W, ...)``, the last frame repeating the one
    before (zeros for one-frame windows)."""
    if n_frames < 2:
        shape = (values.shape[0], 1, *values.shape[2:])
        return torch.zeros(shape, dtype=values.dtype, device=values.device)
    return torch.cat([values, values[:, -1:]], dim=1)


def per_window(value: float | torch.Tensor, ref: torch.Tensor, ndim: int) -> float | torch.Tensor:
    """A scalar, or a ``(B,)`` tensor shaped to broadcast against ``ndim``-D ``(B, ...)``."""
    if isinstance(value, torch.Tensor) and value.ndim > 0:
        return value.to(device=ref.device, dtype=ref.dtype).reshape(-1, *([1] * (ndim - 1)))
    return float(value)


def centre_axis(pose_px: torch.Tensor, centre: int | None, front: int) -> tuple[torch.Tensor, ...]:
    """Body centre and body-axis vector (centre -> front) of ``(B, W, P, 2)`` pose, ``(B, W,
    2)`` each; ``centre=None`` takes the centroid of all parts."""
    c = pose_px.mean(dim=2) if centre is None else pose_px[:, :, centre]
    return c, pose_px[:, :, front] - c


def unit_axis(axis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of ``(..., 2)`` vectors; a zero vector means no rotation (1, 0), a NaN one
    gives NaN."""
    length = torch.hypot(axis[..., 0], axis[..., 1])
    positive = length > 0
    cos = torch.where(positive, axis[..., 0] / length, torch.ones_like(length))
    sin = torch.where(positive, axis[..., 1] / length, torch.zeros_like(length))
    finite = torch.isfinite(length)
    nan = torch.full_like(length, float("nan"))
    return torch.where(finite, cos, nan), torch.where(finite, sin, nan)


def body_length(pose: torch.Tensor, centre: int | None, front: int) -> torch.Tensor:
    """Body length ``(B,)`` in pixels of ``(B, W, A, P, 2)`` pose: the median over the
    window's frames and animals of the distance from the body centre to the front part
    (NaN frames left out; NaN when none is left)."""
    b, w, a, p, _ = pose.shape
    flat = pose.permute(0, 2, 1, 3, 4).reshape(b * a, w, p, 2)
    c, axis = centre_axis(flat, centre, front)
    length = torch.hypot(axis[..., 0], axis[..., 1]).reshape(b, a * w)
    length = torch.where(length > 0, length, torch.full_like(length, float("nan")))
    return torch.nanmedian(length, dim=1).values


def segment_angles(pose: torch.Tensor) -> torch.Tensor:
    """sin and cos of the angle at each inner part of ``(B, W, P, 2)`` pose (from segment
    ``i -> i+1`` to segment ``i+1 -> i+2``, signed): ``(B, W, 2 (P - 2))``."""
    seg = pose[:, :, 1:] - pose[:, :, :-1]
    c1, s1 = unit_axis(seg[:, :, :-1])
    c2, s2 = unit_axis(seg[:, :, 1:])
    sin = c1 * s2 - s1 * c2
    cos = c1 * c2 + s1 * s2
    b, w, k = sin.shape
    return torch.stack([sin, cos], dim=-1).reshape(b, w, 2 * k)
