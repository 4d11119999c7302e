"""Summaries of microstates: how they overlap the labels, how they follow each other, and the
share of time in groups of them per mouse and day (what the figures of
:mod:`dbm_lightning.analysis.plots` show)."""

from __future__ import annotations

__all__ = [
    "group_microstates",
    "group_names",
    "overlap_table",
    "time_share_by_group",
    "transition_counts",
    "transition_probabilities",
]

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.analysis.microstates import Microstates, as_session_list, overlap_counts


def overlap_table(
    states: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    k: int | None = None,
    n_labels: int | None = None,
) -> np.ndarray:
    """``(k, n_labels)`` % of each label within each microstate (rows sum to 100).

    The original's heat map "% pseudolabel category by microstate". Rows of microstates
    with no labelled frame are all zero. ``k`` / ``n_labels`` default to max + 1.
    """
    s_list, y_list = as_session_list(states), as_session_list(labels)
    if k is None:
        k = int(max((a.max() for a in s_list if a.size), default=-1)) + 1
    if n_labels is None:
        n_labels = int(max((a.max() for a in y_list if a.size), default=-1)) + 1
    counts = overlap_counts(s_list, y_list, k, n_labels).astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(100.0 * counts, totals, out=np.zeros_like(counts), where=totals > 0)


def transition_counts(states_per_session: np.ndarray | Sequence[np.ndarray], k: int) -> np.ndarray:
    """``(k, k)`` counts of frame-to-frame transitions ``from -> to`` (self-transitions
    included), within sessions; pairs touching an invalid frame (state < 0) are skipped."""
    total = np.zeros(k * k, dtype=np.int64)
    for s in as_session_list(states_per_session):
        s = np.asarray(s, dtype=np.int64).ravel()
        if s.size < 2:
            continue
        a, b = s[:-1], s[1:]
        keep = (a >= 0) & (b >= 0)
        if keep.any() and max(a[keep].max(), b[keep].max()) >= k:
            raise ValueError(f"state {max(a[keep].max(), b[keep].max())} out of range for k={k}")
        total += np.bincount(a[keep] * k + b[keep], minlength=k * k)
    return total.reshape(k, k)


def transition_probabilities(
    states_per_session: np.ndarray | Sequence[np.ndarray], k: int, exclude_self: bool = False
) -> np.ndarray:
    """Row-normalised transition matrix ``P[i, j] = P(next = j | current = i)``.

    With ``exclude_self`` the diagonal is dropped before normalising (transitions between
    different states only). Rows of states never left stay zero.
    """
    counts = transition_counts(states_per_session, k).astype(np.float64)
    if exclude_self:
        np.fill_diagonal(counts, 0.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------


def group_names(groups: Mapping[str, Sequence[str]], default: str = "other") -> list[str]:
    """Names of the groups indexed by :func:`group_microstates`: the keys of ``groups`` in
    order, then ``default`` unless it is already one of them."""
    names = list(groups)
    if default not in names:
        names.append(default)
    return names


def group_microstates(
    ms: Microstates, groups: Mapping[str, Sequence[str]], default: str = "other"
) -> np.ndarray:
    """``(k,)`` group index of each microstate, from its dominant label.

    Parameters
    ----------
    ms
        Fitted microstates (with labels).
    groups
        ``{group_name: [label_name, ...]}``, e.g.
        ``{"left_port": ["left_port"], "centre_port": ["centre_port"],
        "right_port": ["right_port"]}``.
    default
        Group of states whose dominant label is in no group (or who have none).

    Returns
    -------
    ``(k,)`` int64 indices into :func:`group_names(groups, default) <group_names>`.
    """
    names = group_names(groups, default)
    label_to_group = np.full(len(ms.label_names) + 1, names.index(default), dtype=np.int64)
    seen: dict[str, str] = {}
    for g_idx, (g, members) in enumerate(groups.items()):
        for lab in members:
            if lab not in ms.label_names:
                raise KeyError(
                    f"group {g!r}: unknown label {lab!r}; the microstates know "
                    f"{list(ms.label_names)}"
                )
            if lab in seen:
                raise ValueError(f"label {lab!r} is in groups {seen[lab]!r} and {g!r}")
            seen[lab] = g
            label_to_group[ms.label_names.index(lab)] = g_idx
    # dominant -1 indexes the last slot, which holds the default group
    return label_to_group[ms.dominant_label]


def time_share_by_group(
    states_per_session: Sequence[np.ndarray],
    meta: Sequence[tuple[Any, Any]],
    state_group: np.ndarray,
    names: Sequence[str],
) -> pd.DataFrame:
    """Share of time each mouse spends in each group of microstates, per day.

    Parameters
    ----------
    states_per_session
        ``(T,)`` microstate arrays (-1 = invalid frame, not counted).
    meta
        ``(mouse, day)`` of each session; sessions with the same pair are pooled.
    state_group
        ``(k,)`` group index of each microstate (from :func:`group_microstates`).
    names
        Group names (from :func:`group_names`).

    Returns
    -------
    DataFrame with columns ``mouse, day, group, share, frames``: one row per (mouse, day,
    group) including zero shares; ``share`` in [0, 1] sums to 1 over groups.
    """
    if len(meta) != len(states_per_session):
        raise ValueError(f"{len(meta)} metadata rows for {len(states_per_session)} sessions")
    state_group = np.asarray(state_group, dtype=np.int64)
    n_groups = len(names)
    if state_group.size and (state_group.min() < 0 or state_group.max() >= n_groups):
        raise ValueError(f"group indices must be in [0, {n_groups}), got {state_group}")
    pooled: dict[tuple[Any, Any], np.ndarray] = {}
    for s, key in zip(states_per_session, meta, strict=True):
        s = np.asarray(s, dtype=np.int64)
        s = s[s >= 0]
        if s.size and s.max() >= state_group.size:
            raise ValueError(f"state {s.max()} but only {state_group.size} states have a group")
        frames = np.bincount(state_group[s], minlength=n_groups)
        key = (key[0], key[1])
        pooled[key] = pooled.get(key, np.zeros(n_groups, dtype=np.int64)) + frames
    rows = []
    for (mouse, day), frames in pooled.items():
        total = frames.sum()
        for g, name in enumerate(names):
            share = frames[g] / total if total else 0.0
            rows.append((mouse, day, name, float(share), int(frames[g])))
    df = pd.DataFrame(rows, columns=["mouse", "day", "group", "share", "frames"])
    return df.sort_values(["mouse", "day"], kind="stable").reset_index(drop=True)
