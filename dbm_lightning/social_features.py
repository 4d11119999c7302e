"""The social block: features of two or more animals seen together.

For every pair of animals ``{a, b}`` (``a < b`` in the session's order of individuals):

* the distance from each part of ``a`` to each part of ``b`` (``P x P`` columns);
* the distance between their body centres, its approach rate (how fast it shrinks, per
  second: positive when they come closer) and their relative speed ``|v_a - v_b|``;

and for every ordered pair ``a -> b``: the facing of ``a`` to ``b`` (cos and sin of the
angle from ``a``'s body axis to the line from ``a``'s centre to ``b``'s; cos 1 = facing it),
and ``a``'s own speed towards ``b`` (the component of ``a``'s velocity along that line).

With ``symmetric`` the block does not change when identities swap (trackers swap them):
each pair's part distances become ``min`` and ``max`` of ``d(a_i, b_j)`` and ``d(a_j, b_i)``
(``i <= j``, ``i < j``), the two directions of each ordered quantity become their min and max,
and with more than two animals every column is sorted over the pairs.

Distances and speeds are in the units of the scale given (arena units, or body lengths; see
:class:`~dbm_lightning.features.FeatureConfig`), speeds per second.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch

from dbm_lightning.kinematics import centre_axis, forward, per_window, unit_axis

_PAIR_NAMES = ("centre_dist", "approach_rate", "relative_speed")
_ORDERED_NAMES = ("facing_cos", "facing_sin", "speed_towards")


def _pairs(animals: int) -> list[tuple[int, int]]:
    return list(itertools.combinations(range(animals), 2))


def social_block(
    pose: torch.Tensor,
    centre: int | None,
    front: int,
    scale: float | torch.Tensor,
    fps: float | torch.Tensor,
    symmetric: bool,
) -> torch.Tensor:
    """The social features of ``(B, W, A, P, 2)`` pixel pose, ``A >= 2``: ``(B, W, F)``.

    ``centre``/``front`` index one animal's parts (the body axis, as the egocentric blocks);
    ``scale`` (a number or one per window) converts pixels to the feature unit.
    """
    b, w, animals, p, _ = pose.shape
    if animals < 2:
        raise ValueError("the social block needs two or more animals")
    scale_w = per_window(scale, pose, 3)  # against (B, W, k)
    scale_p = per_window(scale, pose, 4)  # against (B, W, P, P)
    scale_f = per_window(scale, pose, 2)  # against (B, W)
    rate = per_window(fps, pose, 2)
    flat = pose.permute(0, 2, 1, 3, 4).reshape(b * animals, w, p, 2)
    c, axis = centre_axis(flat, centre, front)
    c, axis = c.reshape(b, animals, w, 2), axis.reshape(b, animals, w, 2)
    cos, sin = unit_axis(axis)
    velocity = forward((c[:, :, 1:] - c[:, :, :-1]).transpose(1, 2), w).transpose(
        1, 2
    )  # (B, A, W, 2) pixels per frame

    part_blocks, pair_blocks, ordered_blocks = [], [], []
    for a_i, b_i in _pairs(animals):
        diff = pose[:, :, a_i, :, None, :] - pose[:, :, b_i, None, :, :]  # (B, W, P, P, 2)
        dist = torch.hypot(diff[..., 0], diff[..., 1]) * scale_p
        if symmetric:
            lo, hi = (
                torch.minimum(dist, dist.transpose(-1, -2)),
                torch.maximum(dist, dist.transpose(-1, -2)),
            )
            iu_lo = torch.triu_indices(p, p, offset=0, device=pose.device)
            iu_hi = torch.triu_indices(p, p, offset=1, device=pose.device)
            dist_cols = torch.cat(
                [lo[..., iu_lo[0], iu_lo[1]], hi[..., iu_hi[0], iu_hi[1]]], dim=-1
            )
        else:
            dist_cols = dist.reshape(b, w, p * p)
        part_blocks.append(dist_cols)

        line = c[:, b_i] - c[:, a_i]  # (B, W, 2) pixels
        centre_dist = torch.hypot(line[..., 0], line[..., 1])
        approach = -forward(centre_dist[:, 1:] - centre_dist[:, :-1], w) * rate
        rel = velocity[:, a_i] - velocity[:, b_i]
        rel_speed = torch.hypot(rel[..., 0], rel[..., 1]) * rate
        pair_blocks.append(torch.stack([centre_dist, approach, rel_speed], dim=-1) * scale_w)

        directions = []
        for src, sign in ((a_i, 1.0), (b_i, -1.0)):
            ux, uy = unit_axis(line * sign)
            facing_cos = cos[:, src] * ux + sin[:, src] * uy
            facing_sin = cos[:, src] * uy - sin[:, src] * ux
            v = velocity[:, src]
            towards = (v[..., 0] * ux + v[..., 1] * uy) * rate * scale_f
            directions.append(torch.stack([facing_cos, facing_sin, towards], dim=-1))
        ordered = torch.stack(directions, dim=-2)  # (B, W, 2, 3)
        if symmetric:
            ordered = ordered.sort(dim=-2).values
        ordered_blocks.append(ordered.reshape(b, w, 6))

    stacks = [torch.stack(blocks, dim=-2) for blocks in (part_blocks, pair_blocks, ordered_blocks)]
    if symmetric and animals > 2:
        stacks = [s.sort(dim=-2).values for s in stacks]
    return torch.cat([s.reshape(b, w, -1) for s in stacks], dim=-1)


def social_feature_names(
    individuals: Sequence[str], parts: Sequence[str], symmetric: bool
) -> list[str]:
    """Column names of :func:`social_block`, in column order."""
    animals = len(individuals)
    p = len(parts)
    pairs = _pairs(animals)
    label = (
        [f"pair{k + 1}" for k in range(len(pairs))]
        if symmetric
        else [f"{individuals[a]}~{individuals[b]}" for a, b in pairs]
    )
    names: list[str] = []
    for pair in label:
        if symmetric:
            names += [
                f"{pair}/min_dist_{parts[i]}~{parts[j]}" for i in range(p) for j in range(i, p)
            ]
            names += [
                f"{pair}/max_dist_{parts[i]}~{parts[j]}" for i in range(p) for j in range(i + 1, p)
            ]
        else:
            a, b = pair.split("~")
            names += [f"{pair}/dist_{a}.{pi}~{b}.{pj}" for pi in parts for pj in parts]
    for pair in label:
        names += [f"{pair}/{n}" for n in _PAIR_NAMES]
    for k, (a, b) in enumerate(pairs):
        if symmetric:
            names += [f"{label[k]}/{which}_{n}" for which in ("min", "max") for n in _ORDERED_NAMES]
        else:
            for src, dst in ((a, b), (b, a)):
                names += [f"{individuals[src]}->{individuals[dst]}/{n}" for n in _ORDERED_NAMES]
    return names
