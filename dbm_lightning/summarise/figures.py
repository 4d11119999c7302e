"""Figures of a behaviour summary: the share of each behaviour by day, one line per condition
(mean and 95 % CI over mice, the paper's learning-over-days view), and the group-averaged
bout-to-bout transition graph."""

from __future__ import annotations

__all__ = ["by_day_figure", "mean_ci", "transition_graph_figure"]

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch
from scipy import stats

from dbm_lightning.analysis.plot_style import categorical_colors, label_colors, new_figure
from dbm_lightning.summarise.stats import mouse_day_values

ARC = 0.18
"""Bend of the transition graph's arrows (``a -> b`` and ``b -> a`` apart)."""
NO_CONDITION = "all sessions"
"""The one line (or graph) drawn when the sessions have no condition."""


def mean_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its t interval (NaN bounds for fewer
    than two values)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(v.mean())
    if v.size < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return mean, mean - half, mean + half


def _grid(n: int, max_cols: int = 4) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def by_day_figure(
    table: pd.DataFrame,
    measure: str = "percent_time",
    behaviours: Sequence[str] | None = None,
    mixed: pd.DataFrame | None = None,
) -> Figure:
    """One panel per behaviour: ``measure`` by day, one line per condition (mean over mice and
    the 95 % t interval, shaded); each mouse's value of a day is the mean of its sessions.
    With ``mixed`` (:func:`~dbm_lightning.summarise.stats.mixed_model_tests`) each
    title carries the condition x day interaction's BH-adjusted p."""
    data = table.copy()
    data["condition"] = data["condition"].fillna(NO_CONDITION)
    values = mouse_day_values(data, measure)
    if values.empty:
        raise ValueError("no session has a mouse and a day: nothing to draw by day")
    names = list(behaviours) if behaviours is not None else list(dict.fromkeys(table["behaviour"]))
    conditions = sorted(values["condition"].unique(), key=str)
    colours = dict(zip(conditions, categorical_colors(len(conditions)), strict=True))
    rows, cols = _grid(len(names))
    fig = new_figure(3.2 * cols, 2.6 * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    p_of = {} if mixed is None else dict(zip(mixed["behaviour"], mixed["p_bh"], strict=True))
    for ax, name in zip(axes.ravel(), names, strict=False):
        mine = values[values["behaviour"] == name]
        for cond in conditions:
            per_day = mine[mine["condition"] == cond].groupby("day")["value"]
            days = np.array(sorted(per_day.groups))
            if days.size == 0:
                continue
            summary = np.array([mean_ci(per_day.get_group(d).to_numpy()) for d in days])
            n_mice = mine.loc[mine["condition"] == cond, "mouse"].nunique()
            ax.plot(
                days, summary[:, 0], "o-", color=colours[cond], ms=3, label=f"{cond} ({n_mice})"
            )
            ax.fill_between(days, summary[:, 1], summary[:, 2], color=colours[cond], alpha=0.2)
        title = name
        p = p_of.get(name)
        if p is not None and np.isfinite(p):
            title += f"\ncondition x day p_BH = {p:.2g}"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel(measure.replace("_", " "), fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("day", fontsize=8)
    axes.ravel()[0].legend(fontsize=7, title="condition (mice)", title_fontsize=7)
    fig.suptitle(f"{measure.replace('_', ' ')} by day: mean and 95 % CI over mice", fontsize=10)
    return fig


def _mean_matrices(
    transitions: pd.DataFrame, states: Sequence[str], group: pd.Series
) -> dict[str, np.ndarray]:
    """Per condition, the ``(k, k)`` mean over mice of each mouse's mean over its sessions of
    the transition probabilities (a session where a state never ended into another does not
    count for that state's row; a row no session has stays zero)."""
    data = transitions.assign(group=group.to_numpy())
    per_mouse = data.groupby(["group", "mouse", "from", "to"], sort=False)["probability"].mean()
    per_group = per_mouse.groupby(["group", "from", "to"], sort=True).mean().fillna(0.0)
    index = {s: i for i, s in enumerate(states)}
    out = {}
    for cond, rows in per_group.groupby(level="group"):
        p = np.zeros((len(states), len(states)))
        rows = rows.reset_index()
        p[rows["from"].map(index), rows["to"].map(index)] = rows["probability"]
        out[str(cond)] = p
    return out


def transition_graph_figure(
    transitions: pd.DataFrame,
    budget: pd.DataFrame,
    states: Sequence[str],
    min_probability: float = 0.05,
) -> Figure:
    """One directed graph per condition (mice weighted equally): the states on a circle, each
    node's area proportional to its mean % of time, an arrow ``a -> b`` for every mean transition
    probability of at least ``min_probability`` (width and opacity growing with it, the
    probability written on the stronger ones)."""
    group = transitions["condition"].fillna(NO_CONDITION)
    matrices = _mean_matrices(transitions, states, group)
    shares = (
        budget.assign(condition=budget["condition"].fillna(NO_CONDITION))
        .groupby(["condition", "mouse", "behaviour"])["percent_time"]
        .mean()
        .groupby(["condition", "behaviour"])
        .mean()
    )
    k = len(states)
    angle = np.pi / 2 - 2 * np.pi * np.arange(k) / k
    xy = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    colours = label_colors(k)
    fig = new_figure(4.6 * len(matrices), 5.0)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (cond, p) in zip(axes, matrices.items(), strict=True):
        share = np.array([shares.get((cond, s), 0.0) for s in states])
        radius = 0.05 + 0.17 * np.sqrt(share / max(share.max(), 1e-9))
        nodes = [
            Circle(xy[i], radius[i], facecolor=colours[i], edgecolor="k", lw=0.6, zorder=2)
            for i in range(k)
        ]
        for node in nodes:
            ax.add_patch(node)
        for i, j in zip(*np.nonzero(p >= min_probability), strict=True):
            arrow = FancyArrowPatch(
                xy[i],
                xy[j],
                patchA=nodes[i],
                patchB=nodes[j],
                connectionstyle=f"arc3,rad={ARC}",
                arrowstyle="-|>",
                mutation_scale=8 + 10 * p[i, j],
                lw=0.5 + 5 * p[i, j],
                color="0.2",
                alpha=0.25 + 0.7 * p[i, j],
                zorder=1,
            )
            ax.add_patch(arrow)
            if p[i, j] >= 0.2:  # on the arc's middle (arc3: control point off the chord)
                (dx, dy), bend = xy[j] - xy[i], 0.5 * ARC
                mid = 0.5 * (xy[i] + xy[j]) + bend * np.array([dy, -dx])
                box = {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.8}
                ax.text(*mid, f"{p[i, j]:.2f}", fontsize=6, ha="center", va="center", bbox=box)
        for i, (s, pct) in enumerate(zip(states, share, strict=True)):
            x, y = (1.0 + radius[i] + 0.16) * xy[i]
            ax.text(x, y, f"{s}\n{pct:.1f} %", fontsize=7, ha="center", va="center")
        mine = transitions.loc[group == cond]
        n_mice, n_sessions = mine["mouse"].nunique(), mine["session"].nunique()
        ax.set_title(f"{cond} ({n_mice} mice, {n_sessions} sessions)", fontsize=9)
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(
        "bout-to-bout transitions, mean over mice\n"
        f"arrows: P(next | current) >= {min_probability:g}; node area: % of time",
        fontsize=9,
    )
    return fig
