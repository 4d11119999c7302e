"""The poses of bouts, shared by the pose snippets and the trajectory plots: which bouts
(:func:`choose_bouts`), the skeleton drawn between the parts (:func:`skeleton_edges`, the
minimum spanning tree of the parts' median distances: no tracker config needed), the
egocentric alignment on a bout's first frame (:func:`ego_indices`, :func:`align_first_frame`),
and small drawing helpers.

Egocentric convention (that of :mod:`dbm_lightning.features`): the body centre is
``ego_centre`` (a part name of one animal, e.g. ``"nose"`` also for the parts ``"a/nose"`` of a
multi-animal session; ``None``: the centroid of the animal's parts) and the body axis points
from it to ``ego_front`` (``None``: the first part). Everything is in pixels and image
coordinates.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from dbm_lightning.prediction.bouts import run_lengths
from dbm_lightning.session import Session
from dbm_lightning.skeleton import part_index

__all__ = [
    "align_first_frame",
    "check_labels",
    "choose_bouts",
    "ego_indices",
    "grid_shape",
    "nan_mean",
    "session_edges",
    "skeleton_edges",
    "skeleton_segments",
    "square_extent",
    "state_code",
]

_MAX_DISTANCE_ENTRIES = 4_000_000  # frames x parts^2 distances held at once by skeleton_edges


# --------------------------------------------------------------------------------------------
# skeleton, bouts, alignment
# --------------------------------------------------------------------------------------------


def skeleton_edges(pose: np.ndarray, *, max_frames: int = 2000) -> list[tuple[int, int]]:
    """Edges to draw between one animal's parts: the minimum spanning tree of the parts'
    median distances over the frames (works for any tracker's parts without a skeleton file).

    Parameters
    ----------
    pose
        ``(T, parts, 2)`` of one animal (several animals' poses may be stacked along T), NaN
        allowed.
    max_frames
        At most this many frames, evenly spaced, enter the medians (fewer for many parts, so
        that at most a few million distances are held at once).

    Returns
    -------
    ``(i, j)`` pairs with ``i < j``, sorted: ``parts - 1`` edges when every pair of parts is
    seen together at least once. A part never seen together with another (e.g. always NaN)
    has no median distance and is left out of the tree, unconnected (draw it as a lone point,
    or not at all).
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 3 or pose.shape[2] != 2:
        raise ValueError(f"pose must be (frames, parts, 2), got shape {pose.shape}")
    t, p = pose.shape[:2]
    if p < 2 or t == 0:
        return []
    keep = int(min(max_frames, max(50, _MAX_DISTANCE_ENTRIES // (p * p))))
    if t > keep:
        pose = pose[np.linspace(0, t - 1, keep).round().astype(np.int64)]
    dist = np.linalg.norm(pose[:, :, None, :] - pose[:, None, :, :], axis=-1)  # (T, P, P)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs: NaN, handled below
        median = np.nanmedian(dist, axis=0)
    finite = np.isfinite(median)
    if not finite.any():
        return []
    # csgraph reads 0 as "no edge": shift every known distance up by a tiny amount so that two
    # parts tracked at the same point still get their (zero-length) edge
    eps = 1e-9 * (float(np.max(median[finite])) + 1.0)
    weights = np.triu(np.where(finite, median + eps, 0.0), k=1)
    rows, cols = minimum_spanning_tree(csr_matrix(weights)).nonzero()
    return sorted((int(min(a, b)), int(max(a, b))) for a, b in zip(rows, cols, strict=True))


def choose_bouts(
    labels: Sequence[np.ndarray], code: int, n: int, *, min_frames: int = 1, seed: int = 0
) -> pd.DataFrame:
    """Up to n bouts of ``code`` drawn at random (without replacement, reproducible by seed)
    from per-session label arrays.

    Parameters
    ----------
    labels
        Per-session ``(T,)`` int codes, -1 = none/invalid.
    code
        The code whose bouts (runs) are drawn.
    n
        The most bouts returned (all of them when there are fewer).
    min_frames
        Only bouts of at least this many frames are drawn.
    seed
        Seed of the draw (``numpy.random.default_rng``).

    Returns
    -------
    DataFrame with int64 columns ``session`` (index into ``labels``), ``start``, ``end``
    (inclusive) and ``duration_frames``, sorted by session and start.
    """
    sessions, starts, lengths = [], [], []
    for i, lab in enumerate(labels):
        lab = np.asarray(lab)
        if lab.ndim != 1:
            raise ValueError(f"labels[{i}] must be 1-D, got shape {lab.shape}")
        s, ln, v = run_lengths(lab)
        hit = (v == code) & (ln >= min_frames)
        sessions.append(np.full(int(hit.sum()), i, dtype=np.int64))
        starts.append(s[hit])
        lengths.append(ln[hit])
    session = np.concatenate(sessions) if sessions else np.zeros(0, np.int64)
    start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    length = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    take = min(max(int(n), 0), session.size)
    pick = np.sort(np.random.default_rng(seed).choice(session.size, size=take, replace=False))
    return pd.DataFrame(
        {
            "session": session[pick].astype(np.int64),
            "start": start[pick].astype(np.int64),
            "end": (start[pick] + length[pick] - 1).astype(np.int64),
            "duration_frames": length[pick].astype(np.int64),
        }
    )


def ego_indices(
    parts: Sequence[str], ego_centre: str | None = None, ego_front: str | None = None
) -> tuple[int | None, int]:
    """Indices in one animal's ``parts`` of the body centre (``None``: the centroid) and of the
    front part (default 0, the first part); an unknown name is a ``ValueError`` listing the
    parts. A multi-animal part name (``"a/nose"``) is read as its part (``"nose"``)."""
    parts = [str(p) for p in parts]

    def one_animal(name: str | None) -> str | None:  # "a/nose" -> "nose" when only that fits
        if name is None or str(name) in parts:
            return name
        part = str(name).split("/", 1)[-1]
        return part if part in parts else name

    centre = part_index(parts, one_animal(ego_centre), "ego_centre")
    front = part_index(parts, one_animal(ego_front), "ego_front")
    return centre, 0 if front is None else front


def align_first_frame(windows: np.ndarray, centre: int | None, front: int) -> np.ndarray:
    """Pose windows aligned egocentrically on their first frame.

    Parameters
    ----------
    windows
        ``(B, F, A, P, 2)`` pixel pose of B bouts, F frames, A animals (NaN allowed).
    centre, front
        Part indices (:func:`ego_indices`); ``centre=None`` is the NaN-mean of the parts.

    Returns
    -------
    ``(B, F, A, P, 2)``: every bout translated and rotated (no scaling, no mirroring) so that,
    on its first frame, the first animal's body centre is at the origin and its body axis
    (centre -> front) points along +x; the other animals and frames move with it. In image
    coordinates (y down, as :func:`trajectory_figure` draws them) +x is to the right, so the
    picture is the video rotated, a turn to the left stays a turn to the left. A zero-length
    axis leaves the bout unrotated; a bout whose first-frame centre or front is missing is all
    NaN.
    """
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim != 5 or w.shape[-1] != 2:
        raise ValueError(f"windows must be (bouts, frames, animals, parts, 2), got {w.shape}")
    ref = w[:, 0, 0]  # (B, P, 2): first frame, first animal
    if centre is None:
        ok = np.isfinite(ref).all(axis=-1, keepdims=True)
        count = ok.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.where(ok, ref, 0.0).sum(axis=1) / count  # 0 / 0 -> NaN
    else:
        c = ref[:, centre]
    axis = ref[:, front] - c
    length = np.hypot(axis[:, 0], axis[:, 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(length > 0, axis[:, 0] / length, 1.0)
        sin = np.where(length > 0, axis[:, 1] / length, 0.0)
    bad = ~(np.isfinite(length) & np.isfinite(c).all(axis=1))
    cos[bad], sin[bad] = np.nan, np.nan
    d = w - c[:, None, None, None, :]
    cos, sin = cos[:, None, None, None], sin[:, None, None, None]
    x = cos * d[..., 0] + sin * d[..., 1]  # rotate by -angle(axis)
    y = -sin * d[..., 0] + cos * d[..., 1]
    return np.stack([x, y], axis=-1)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def check_labels(sessions: Sequence[Session], labels: Sequence[np.ndarray]) -> list[np.ndarray]:
    if len(sessions) != len(labels):
        raise ValueError(f"{len(labels)} label arrays for {len(sessions)} sessions")
    out = []
    for s, lab in zip(sessions, labels, strict=True):
        lab = np.asarray(lab)
        if lab.shape != (s.n_frames,):
            raise ValueError(f"{s.name}: labels of shape {lab.shape} for {s.n_frames} frames")
        out.append(lab)
    return out


def state_code(names: Sequence[str], name: str, what: str = "behaviour") -> int:
    names = [str(n) for n in names]
    if str(name) not in names:
        raise KeyError(f"unknown {what} {name!r}; the known ones are {names}")
    return names.index(str(name))


def session_edges(session: Session) -> list[tuple[int, int]]:
    """:func:`skeleton_edges` of a session, every animal's frames pooled."""
    pose = session.animal_pose()
    return skeleton_edges(np.swapaxes(pose, 0, 1).reshape(-1, pose.shape[2], 2))


def square_extent(extent: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The extent grown along its shorter side to a square around the same centre."""
    x0, x1, y0, y1 = extent
    half = max(x1 - x0, y1 - y0) / 2.0
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    return cx - half, cx + half, cy - half, cy + half


def skeleton_segments(pose: np.ndarray, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """``(..., 3 E, 2)`` polyline of the skeleton of ``(..., P, 2)`` pose: both ends of every
    edge, then a NaN (matplotlib breaks the line at NaN, and skips segments with a missing
    end)."""
    if not edges:
        return np.full((*pose.shape[:-2], 0, 2), np.nan)
    e = np.asarray(edges, dtype=np.int64)
    ends = np.stack([pose[..., e[:, 0], :], pose[..., e[:, 1], :]], axis=-2)  # (..., E, 2, 2)
    gap = np.full((*ends.shape[:-2], 1, 2), np.nan)
    return np.concatenate([ends, gap], axis=-2).reshape(*pose.shape[:-2], -1, 2)


def nan_mean(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over ``axis`` of the finite values (NaN where none) and their count."""
    ok = np.isfinite(x)
    count = ok.sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, x, 0.0).sum(axis=axis) / count
    return mean, count


def grid_shape(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / cols)), cols
