"""The keypoint-MoSeq "trajectory plot": one panel per state, the mean pose over the first
frames of random bouts of that state, every bout aligned egocentrically on its first frame
(:func:`~dbm_lightning.summarise.bout_poses.align_first_frame`), light to dark with time
(:func:`trajectory_figure`, :func:`trajectory_plot`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dbm_lightning.analysis.plot_style import new_figure, robust_extent
from dbm_lightning.analysis.plots import save_figure
from dbm_lightning.session import DEFAULT_FPS, Session
from dbm_lightning.summarise.bout_poses import (
    align_first_frame,
    check_labels,
    choose_bouts,
    ego_indices,
    grid_shape,
    nan_mean,
    session_edges,
    square_extent,
    state_code,
)

__all__ = ["TRAJECTORY_CMAPS", "mean_trajectory", "trajectory_figure", "trajectory_plot"]

TRAJECTORY_CMAPS = ("Blues", "Oranges", "Greens", "Purples", "Reds", "Greys")
"""Light-to-dark colour maps of the individuals in :func:`trajectory_figure` (in order)."""


def _bout_windows(
    sessions: Sequence[Session], bouts: pd.DataFrame, frames: int, n_animals: int
) -> np.ndarray:
    """``(B, frames, n_animals, P, 2)`` pose from every bout's first frame, NaN after its end
    (and for animals a session does not have); a loop per session, none per frame."""
    p = len(sessions[0].parts)
    out = np.full((len(bouts), frames, n_animals, p, 2), np.nan)
    offsets = np.arange(frames)
    for s, rows in bouts.groupby("session").indices.items():
        session = sessions[s]
        pose = session.animal_pose()
        t = bouts["start"].to_numpy()[rows, None] + offsets  # (b, F)
        running = t <= bouts["end"].to_numpy()[rows, None]
        w = pose[np.minimum(t, session.n_frames - 1)].astype(np.float64)  # (b, F, A, P, 2)
        w[~running] = np.nan
        out[rows, :, : session.n_animals] = w
    return out


def mean_trajectory(
    sessions: Sequence[Session],
    labels: Sequence[np.ndarray],
    code: int,
    *,
    frames: int = 15,
    max_bouts: int = 200,
    seed: int = 0,
    ego_centre: str | None = None,
    ego_front: str | None = None,
) -> tuple[np.ndarray | None, int]:
    """The mean aligned pose of up to ``max_bouts`` random bouts of ``code``.

    Every bout's first ``frames`` frames are gathered at once (a loop per session, none per
    frame), aligned on the bout's first frame (:func:`align_first_frame`) and averaged over
    the bouts: at each offset over the bouts still running (a bout shorter than ``frames``
    counts for the offsets it lasts) and, per point, over the bouts where it is not missing.

    Returns
    -------
    ``(mean, n)``: ``mean`` is ``(frames, animals, parts, 2)`` (animals: the most of any
    session; NaN where no bout has the point), ``n`` the number of bouts averaged (those
    whose first frame has the body centre and front part); ``(None, 0)`` without any.
    """
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    labels = check_labels(sessions, labels)
    if not sessions:
        return None, 0
    parts = sessions[0].parts
    for s in sessions[1:]:
        if s.parts != parts:
            raise ValueError(
                f"{s.name}: parts {list(s.parts)} differ from {sessions[0].name}'s {list(parts)}"
            )
    centre, front = ego_indices(parts, ego_centre, ego_front)
    bouts = choose_bouts(labels, code, max_bouts, seed=seed)
    if bouts.empty:
        return None, 0
    n_animals = max(s.n_animals for s in sessions)
    aligned = align_first_frame(_bout_windows(sessions, bouts, frames, n_animals), centre, front)
    used = np.isfinite(aligned[:, 0, 0, front]).all(axis=-1)
    if not used.any():
        return None, 0
    return nan_mean(aligned[used], axis=0)[0], int(used.sum())


def trajectory_figure(
    sessions: Sequence[Session],
    labels: Sequence[np.ndarray],
    names: Sequence[str],
    *,
    frames: int = 15,
    max_bouts: int = 200,
    seed: int = 0,
    ego_centre: str | None = None,
    ego_front: str | None = None,
    states: Sequence[str] | None = None,
    edges: Sequence[tuple[int, int]] | None = None,
    panel_inches: float = 2.4,
) -> Figure:
    """One panel per state: the mean egocentric pose over the first ``frames`` frames of up to
    ``max_bouts`` random bouts of the state.

    Parameters
    ----------
    sessions, labels, names
        ``labels[i]`` are ``(T,)`` codes into ``names`` for ``sessions[i]`` (-1: none); every
        session must have the same parts (pixels are averaged as they are: sessions of very
        different camera scales blur the mean).
    frames, max_bouts, seed
        Up to ``max_bouts`` random bouts per state (:func:`choose_bouts`), their first
        ``frames`` frames averaged by :func:`mean_trajectory`: a bout shorter than ``frames``
        counts for the offsets it lasts (the mean at an offset is over the bouts still
        running, and their points that are not missing).
    ego_centre, ego_front
        The alignment (:func:`align_first_frame`): every bout is translated and rotated so
        that on its first frame the first individual's centre is at the origin and its axis
        to the front part points to the right (+x); the plot keeps image y pointing down.
        Other individuals are drawn in that same frame.
    states
        The states to draw, in order (default: all of ``names``).
    edges
        The skeleton (default :func:`skeleton_edges` of the first session, animals pooled).

    Every state's mean poses are drawn as skeletons from light (first frame) to dark (last),
    one colour map per individual (:data:`TRAJECTORY_CMAPS`), all panels in the same view,
    which spans the first individual's mean poses of every state (and the origin; the other
    individuals are cut where they leave it);
    the title is ``'<state> (<n> bouts)'`` (bouts whose first frame has the centre and front
    part), a state without a bout gets an empty panel saying ``no bout``.
    """
    labels = check_labels(sessions, labels)
    if not sessions:
        raise ValueError("trajectory_figure needs at least one session")
    parts = sessions[0].parts
    centre, front = ego_indices(parts, ego_centre, ego_front)
    states = list(names) if states is None else [str(s) for s in states]
    codes = [state_code(names, s, "state") for s in states]
    edges = session_edges(sessions[0]) if edges is None else [tuple(e) for e in edges]
    n_animals = max(s.n_animals for s in sessions)
    individuals = next((s.individuals for s in sessions if s.n_animals == n_animals), ())
    means, counts = [], []
    for code in codes:
        mean, count = mean_trajectory(
            sessions,
            labels,
            code,
            frames=frames,
            max_bouts=max_bouts,
            seed=seed,
            ego_centre=ego_centre,
            ego_front=ego_front,
        )
        means.append(mean)
        counts.append(count)

    rows, cols = grid_shape(len(states))
    fig = new_figure(cols * panel_inches, rows * panel_inches + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    # the view spans the aligned (first) individual, the same in every panel; others are cut
    focal = [m[:, 0].reshape(-1, 2) for m in means if m is not None]
    extent = square_extent(
        robust_extent(np.concatenate([np.zeros((1, 2)), *focal]), (0.0, 100.0), 0.08)
    )
    shade = np.linspace(0.3, 1.0, frames)  # light -> dark with time
    cmaps = [colormaps[TRAJECTORY_CMAPS[a % len(TRAJECTORY_CMAPS)]] for a in range(n_animals)]
    for ax, state, mean, count in zip(axes, states, means, counts, strict=False):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[3], extent[2])  # image y down
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(f"{state} ({count} bout{'' if count == 1 else 's'})", fontsize=8)
        if mean is None:
            ax.text(0.5, 0.5, "no bout", transform=ax.transAxes, ha="center", va="center")
            continue
        ax.plot([0.0], [0.0], "+", color="0.2", ms=7, mew=1.0, zorder=5)
        for a in range(n_animals):
            colours = cmaps[a](shade)  # (F, 4)
            if edges:
                e = np.asarray(edges, dtype=np.int64)
                seg = np.stack([mean[:, a, e[:, 0]], mean[:, a, e[:, 1]]], axis=2)  # (F,E,2,2)
                seg_colours = np.repeat(colours, len(edges), axis=0)
                seg = seg.reshape(-1, 2, 2)
                ok = np.isfinite(seg).all(axis=(1, 2))
                ax.add_collection(LineCollection(seg[ok], colors=seg_colours[ok], linewidths=1.0))
            pts = mean[:, a].reshape(-1, 2)
            pt_colours = np.repeat(colours, mean.shape[2], axis=0)
            ok = np.isfinite(pts).all(axis=1)
            ax.scatter(pts[ok, 0], pts[ok, 1], s=4, c=pt_colours[ok], linewidths=0)
        if n_animals > 1 and individuals:
            handles = [
                Line2D([], [], color=cmaps[a](0.85), lw=1.5, label=individuals[a])
                for a in range(n_animals)
            ]
            ax.legend(handles=handles, loc="upper right", fontsize=6, frameon=False)
    for ax in axes[len(states) :]:
        ax.set_axis_off()
    fps = float(sessions[0].fps) if sessions[0].fps else DEFAULT_FPS
    centre_name = "centroid" if centre is None else parts[centre]
    fig.suptitle(
        f"mean pose over the first {frames} frames ({frames / fps:.2f} s) of each bout, "
        f"light -> dark with time; aligned on the bout's first frame: {centre_name} at +, "
        f"{parts[front]} to the right (pixels, image y down)"
        + (f"; {individuals[0]} aligned, the others in its frame" if n_animals > 1 else ""),
        fontsize=8,
        wrap=True,
    )
    return fig


def trajectory_plot(
    sessions: Sequence[Session],
    labels: Sequence[np.ndarray],
    names: Sequence[str],
    out_path: str | Path,
    *,
    dpi: int = 120,
    **options: Any,
) -> Path:
    """:func:`trajectory_figure` (``options`` are its keyword arguments) written as a PNG
    (atomically) to ``out_path``; returns the path."""
    return save_figure(trajectory_figure(sessions, labels, names, **options), out_path, dpi=dpi)
