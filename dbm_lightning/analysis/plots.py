"""Figures of labels, microstates and metrics (files and TensorBoard).

Every function takes plain arrays and returns a :class:`matplotlib.figure.Figure` drawn on the
Agg canvas without pyplot (no global state, no display, nothing to close; safe in loops and
worker processes). Write it
with :func:`save_figure` or send it to TensorBoard with :func:`log_figure`.

The figures follow the original DBM demo script and the paper: pseudo-label and microstate
rasters (sessions x frames), "% of each pseudo-label per microstate", head position scatter
coloured by microstate and per-microstate occupancy maps, per mouse and day share of time in
left / centre / right port microstates (one panel of one bar per session when the sessions
have no days per mouse), plus a transition matrix and a confusion matrix.
Microstates are numbered from 0, as in the arrays.

Readability: categories (labels, microstates) get distinct qualitative colours
(:func:`categorical_colors`) and colour bars label every microstate; position plots span the
arena when it is known, else the 0.5-99.5 percentiles of the coordinates
(:func:`robust_extent`), and say how many frames fall outside the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dbm_lightning.analysis.plot_style import (
    MISSING_COLOUR,
    arena_extent,
    categorical_colors,
    colorbar_height,
    count_outside,
    finite_points,
    group_colours,
    label_colors,
    new_figure,
    pad_rows,
    raster_figure,
    robust_extent,
    state_colorbar,
    state_colors,
    state_ticks,
    view_note,
)
from dbm_lightning.analysis.summaries import transition_probabilities
from dbm_lightning.atomic import write_atomic

__all__ = [
    "categorical_colors",
    "confusion_matrix_figure",
    "count_outside",
    "group_share_by_day",
    "has_day_structure",
    "label_per_microstate_heatmap",
    "label_raster",
    "log_figure",
    "microstate_raster",
    "normalize_confusion",
    "occupancy_grid",
    "position_scatter",
    "robust_extent",
    "save_figure",
    "state_colors",
    "transition_matrix",
]


# --------------------------------------------------------------------------------------------
# rasters
# --------------------------------------------------------------------------------------------


def label_raster(
    labels_per_session: Sequence[np.ndarray],
    label_names: Sequence[str],
    session_names: Sequence[str] | None = None,
    title: str = "Pseudo-label occurrence",
    fps: float | None = None,
) -> Figure:
    """Sessions x frames image of the label of every frame, with a categorical legend.

    Unlabelled frames (-1) are light grey; frames after the end of a shorter session white.
    With ``fps`` the x axis is in minutes.
    """
    label_names = list(label_names)
    matrix = pad_rows(labels_per_session, pad=-2)
    if matrix.max() >= len(label_names):
        raise ValueError(f"label {matrix.max()} but only {len(label_names)} label names")
    colours = label_colors(len(label_names))
    fig, ax, _ = raster_figure(matrix, colours, session_names, title, fps)
    handles = [Patch(facecolor=c, label=n) for c, n in zip(colours, label_names, strict=True)]
    if (matrix == -1).any():
        handles.append(Patch(facecolor=MISSING_COLOUR, label="(unlabelled)"))
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title="Label",
        fontsize=9,
    )
    return fig


def microstate_raster(
    states_per_session: Sequence[np.ndarray],
    k: int,
    session_names: Sequence[str] | None = None,
    title: str = "Microstate occurrence",
    fps: float | None = None,
    state_names: Sequence[str] | None = None,
) -> Figure:
    """Sessions x frames image of the microstate of every frame, with a discrete colour bar
    that labels every state (``"3 EATING"`` with ``state_names``, e.g. the dominant labels).

    Invalid frames (-1) are light grey; frames after the end of a shorter session white.
    """
    matrix = pad_rows(states_per_session, pad=-2)
    if matrix.max() >= k:
        raise ValueError(f"state {matrix.max()} out of range for k={k}")
    if (matrix == -1).any():
        title = f"{title} (grey: invalid frame)"
    fig, ax, _ = raster_figure(
        matrix, state_colors(k), session_names, title, fps, min_height=colorbar_height(k)
    )
    state_colorbar(fig, ax, k, state_names=state_names)
    return fig


# --------------------------------------------------------------------------------------------
# microstates vs labels, positions
# --------------------------------------------------------------------------------------------


def label_per_microstate_heatmap(
    overlap: np.ndarray,
    label_names: Sequence[str],
    title: str = "% of each pseudo-label within each microstate",
    annotate: bool | None = None,
) -> Figure:
    """Heat map of ``overlap`` ``(k, n_labels)`` (% of each label within each microstate,
    e.g. :func:`dbm_lightning.analysis.summaries.overlap_table`): labels as rows, microstates as
    columns (each column sums to ~100 %), as in the original. Values are printed in the
    cells when ``annotate`` (default: when k <= 60)."""
    overlap = np.asarray(overlap, dtype=np.float64)
    k, n_labels = overlap.shape
    if n_labels != len(label_names):
        raise ValueError(f"{n_labels} overlap columns for {len(label_names)} label names")
    if annotate is None:
        annotate = k <= 60
    fig = new_figure(float(np.clip(2.8 + 0.24 * k, 6.0, 20.0)), 1.6 + 0.42 * n_labels)
    ax = fig.add_subplot()
    im = ax.imshow(overlap.T, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    ticks = np.arange(k) if k <= 60 else state_ticks(k)
    ax.set_xticks(ticks, [str(i) for i in ticks], fontsize=7 if k > 25 else 9)
    ax.set_yticks(np.arange(n_labels), list(label_names))
    ax.set_xlabel("Microstate")
    ax.set_ylabel("Pseudo-label")
    ax.set_title(title)
    cb = fig.colorbar(im, ax=ax, pad=0.01)
    cb.set_label("% of microstate's frames")
    if annotate:
        size = 6 if k > 25 else 8
        for (s, lab), v in np.ndenumerate(overlap):
            if v >= 0.5:
                ax.text(
                    s,
                    lab,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=size,
                    color="black" if v > 60 else "white",
                )
    return fig


def position_scatter(
    xy: np.ndarray,
    states: np.ndarray,
    k: int,
    max_points: int = 30_000,
    seed: int = 0,
    arena: Any = None,
    title: str = "Head position by microstate",
    point_size: float = 3.0,
    percentiles: tuple[float, float] = (0.5, 99.5),
    state_names: Sequence[str] | None = None,
) -> Figure:
    """Scatter of (x, y) positions (e.g. the head) coloured by microstate, in image
    coordinates (y grows downwards). At most ``max_points`` random points are drawn, in
    random order so that no state hides the others. ``arena`` = ``(x_min, x_max, y_min,
    y_max)`` or ``ArenaBounds`` fixes the axes; without it they span the ``percentiles`` of
    the coordinates (so tracking artefacts do not stretch them). The title says how many
    frames fall outside the view. The colour bar labels every state (with ``state_names``)."""
    xy, states = finite_points(xy, states)
    if states.size and states.max() >= k:
        raise ValueError(f"state {states.max()} out of range for k={k}")
    rng = np.random.default_rng(seed)
    n = states.size
    idx = rng.permutation(n)[: min(n, max_points)]
    colours = state_colors(k)
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(-0.5, k), cmap.N)
    extent = arena_extent(arena, xy, percentiles)
    x_min, x_max, y_min, y_max = extent
    n_out = count_outside(xy, extent)
    aspect = (y_max - y_min) / max(x_max - x_min, 1e-9)
    height = max(0.9 + 6.0 * aspect, colorbar_height(k))
    fig = new_figure(8.0 if k <= 25 else 9.0, float(np.clip(height, 3.0, 12.0)))
    ax = fig.add_subplot()
    ax.scatter(
        xy[idx, 0],
        xy[idx, 1],
        c=states[idx],
        cmap=cmap,
        norm=norm,
        s=point_size,
        linewidths=0,
        rasterized=True,
    )
    ax.set_xlim(x_min, x_max)
    ax.set_ylim(y_max, y_min)  # image coordinates: y down
    ax.set_aspect("equal")
    ax.set_xlabel("x (px)")
    ax.set_ylabel("y (px, downwards)")
    shown = f"{idx.size:,} of {n:,} frames" if idx.size < n else f"{n:,} frames"
    note = view_note(n_out, n, arena is not None, percentiles)
    ax.set_title(f"{title} ({shown})\n{note}", fontsize=10)
    state_colorbar(fig, ax, k, state_names=state_names)
    return fig


def occupancy_grid(
    xy: np.ndarray,
    states: np.ndarray,
    k: int,
    bins: int = 24,
    arena: Any = None,
    ncols: int = 10,
    state_names: Sequence[str] | None = None,
    title: str = "Where each microstate occurs (occupancy, normalised per state)",
    percentiles: tuple[float, float] = (0.5, 99.5),
) -> Figure:
    """One small 2-D histogram of positions per microstate, in a grid (y downwards).

    Each panel is normalised to its own maximum; its title gives the state, an optional name
    (e.g. the dominant label from ``Microstates.dominant_label_names()``) and its share of
    frames; its frame has the state's colour (as in the rasters and the scatter). ``bins`` is
    the number of bins along x (y follows the arena's aspect). The extent is the ``arena`` or
    the ``percentiles`` of the coordinates; the title says how many frames fall outside.
    """
    xy, states = finite_points(xy, states)
    if states.size and states.max() >= k:
        raise ValueError(f"state {states.max()} out of range for k={k}")
    if state_names is not None and len(state_names) != k:
        raise ValueError(f"{len(state_names)} state names for k={k}")
    extent = arena_extent(arena, xy, percentiles)
    x_min, x_max, y_min, y_max = extent
    n_out = count_outside(xy, extent)
    aspect = (y_max - y_min) / max(x_max - x_min, 1e-9)
    bx, by = int(bins), max(1, int(round(bins * aspect)))
    hist, _ = np.histogramdd(
        np.column_stack([states, xy[:, 1], xy[:, 0]]),
        bins=(
            np.arange(-0.5, k),
            np.linspace(y_min, y_max, by + 1),
            np.linspace(x_min, x_max, bx + 1),
        ),
    )
    peak = hist.reshape(k, -1).max(axis=1)
    norm_hist = np.divide(
        hist, peak[:, None, None], out=np.zeros_like(hist), where=peak[:, None, None] > 0
    )
    share = 100.0 * np.bincount(states, minlength=k)[:k] / max(states.size, 1)
    colours = state_colors(k)

    ncols = max(1, min(ncols, k))
    nrows = int(np.ceil(k / ncols))
    panel_w = 1.35
    fig = new_figure(panel_w * ncols + 0.9, (panel_w * aspect + 0.35) * nrows + 0.6)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    im = None
    for s, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if s >= k:
            ax.set_axis_off()
            continue
        im = ax.imshow(
            norm_hist[s],
            extent=(x_min, x_max, y_max, y_min),
            origin="upper",
            cmap="magma",
            vmin=0,
            vmax=1,
            interpolation="nearest",
            aspect="equal",
        )
        for spine in ax.spines.values():
            spine.set_edgecolor(colours[s])
            spine.set_linewidth(2.5)
        name = f" {state_names[s]}" if state_names is not None else ""
        ax.set_title(f"{s}{name}\n{share[s]:.1f}%", fontsize=7, pad=2)
        if peak[s] == 0:
            ax.text(
                0.5,
                0.5,
                "no frames",
                transform=ax.transAxes,
                ha="center",
                va="center",
                fontsize=7,
                color="white",
            )
    fig.suptitle(f"{title}\n{view_note(n_out, states.size, arena is not None, percentiles)}")
    if im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.6, pad=0.01)
        cb.set_label("Occupancy / state max")
    return fig


# --------------------------------------------------------------------------------------------
# learning over days
# --------------------------------------------------------------------------------------------


def has_day_structure(df: Any) -> bool:
    """Whether a ``mouse, day`` share table has real days: at least half of the mice were seen
    on two or more days (else every "mouse" is one session, or the day is unknown)."""
    if len(df) == 0:
        return False
    days_per_mouse = df.groupby("mouse", sort=False)["day"].nunique()
    return bool((days_per_mouse >= 2).mean() >= 0.5)


def group_share_by_day(
    df: Any,
    group_order: Sequence[str] | None = None,
    colors: dict[str, Any] | None = None,
    ncols: int = 4,
    title: str = "Share of time in microstate groups per day",
    layout: str = "auto",
    entry_name: str = "Mouse",
) -> Figure:
    """Share of time in each group of microstates (left port / centre port / right port /
    other) as stacked bars. ``df`` is the table of
    :func:`dbm_lightning.analysis.summaries.time_share_by_group`
    (columns ``mouse, day, group, share``). Default colours follow the paper: centre
    blue, left green, right red, other dark grey; every group gets its own colour.

    ``layout``: ``"days"`` draws one panel per mouse with one bar per day (the paper's
    learning-over-days view); ``"pooled"`` draws one panel with one bar per mouse (and day,
    when they differ), for data without days per mouse -- e.g. trials of a file that names
    no mice or days, where per-mouse panels would be dozens of one-bar panels; ``"auto"``
    picks ``"days"`` when :func:`has_day_structure`. ``entry_name`` labels the bars' axis in
    the pooled layout (e.g. ``"Session"`` when the "mice" are sessions).
    """
    needed = {"mouse", "day", "group", "share"}
    if not needed.issubset(df.columns):
        raise ValueError(f"df needs columns {sorted(needed)}, has {list(df.columns)}")
    if layout not in ("auto", "days", "pooled"):
        raise ValueError(f"layout must be 'auto', 'days' or 'pooled', got {layout!r}")
    groups = list(group_order) if group_order is not None else list(dict.fromkeys(df["group"]))
    colours = group_colours(groups, colors)
    if layout == "auto":
        layout = "days" if has_day_structure(df) else "pooled"
    table = df.pivot_table(index=["mouse", "day"], columns="group", values="share", aggfunc="sum")
    table = table.reindex(columns=groups).fillna(0.0)
    if layout == "pooled":
        fig = _pooled_share(table, groups, colours, entry_name)
    else:
        fig = _share_per_day(table, df, groups, colours, ncols)
    handles = [Patch(facecolor=colours[g], label=g) for g in reversed(groups)]
    fig.legend(handles=handles, loc="outside right upper", frameon=False, title="Group")
    fig.suptitle(title)
    return fig


def _pooled_share(
    table: Any, groups: Sequence[str], colours: dict[str, Any], entry_name: str
) -> Figure:
    """One panel, one stacked bar per (mouse, day) row of ``table``."""
    keys = list(table.index)
    n = len(keys)
    one_day = len({d for _, d in keys}) <= 1
    names = [str(m) if one_day else f"{m}, day {d}" for m, d in keys]
    fig = new_figure(float(np.clip(3.0 + 0.2 * n, 6.0, 24.0)), 4.8)
    ax = fig.add_subplot()
    x = np.arange(n)
    bottom = np.zeros(n)
    for g in groups:
        vals = table[g].to_numpy(dtype=np.float64)
        ax.bar(x, vals, bottom=bottom, color=colours[g], width=0.85, label=g)
        bottom += vals
    step = max(1, int(np.ceil(n / 100)))
    ticks = x[::step]
    ax.set_xticks(
        ticks,
        [names[i] for i in ticks],
        rotation=90 if n > 10 else 0,
        fontsize=7 if n > 30 else 9,
    )
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0, 1)
    ax.set_ylabel("Share of time")
    ax.set_xlabel(entry_name if one_day else f"{entry_name}, day")
    return fig


def _share_per_day(
    table: Any, df: Any, groups: Sequence[str], colours: dict[str, Any], ncols: int
) -> Figure:
    """One panel per mouse, one stacked bar per day."""
    mice = list(dict.fromkeys(df["mouse"]))
    days = sorted(dict.fromkeys(df["day"]))
    ncols = max(1, min(ncols, len(mice)))
    nrows = int(np.ceil(len(mice) / ncols)) if mice else 1
    fig = new_figure(3.2 * ncols + 1.6, 2.6 * nrows + 0.8)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    x = np.arange(len(days))
    for m_idx, ax in enumerate(axes.ravel()):
        if m_idx >= len(mice):
            ax.set_axis_off()
            continue
        mouse = mice[m_idx]
        sub = table.xs(mouse, level="mouse").reindex(days)
        bottom = np.zeros(len(days))
        for g in groups:
            vals = sub[g].to_numpy(dtype=np.float64, na_value=0.0)
            ax.bar(x, vals, bottom=bottom, color=colours[g], width=0.8, label=g)
            bottom += vals
        missing = sub.isna().all(axis=1).to_numpy()
        for xi in x[missing]:
            ax.text(xi, 0.5, "n/a", ha="center", va="center", fontsize=7, rotation=90)
        ax.set_title(str(mouse), fontsize=10)
        ax.set_xticks(x, [str(d) for d in days])
        ax.set_ylim(0, 1)
        if m_idx % ncols == 0:
            ax.set_ylabel("Share of time")
        if m_idx // ncols == nrows - 1 or m_idx + ncols >= len(mice):
            ax.set_xlabel("Day")
    return fig


# --------------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------------


def transition_matrix(
    states_per_session: np.ndarray | Sequence[np.ndarray],
    k: int,
    exclude_self: bool = False,
    title: str | None = None,
) -> Figure:
    """Row-normalised microstate transition matrix ``P(next | current)`` (see
    :func:`dbm_lightning.analysis.summaries.transition_probabilities`). States persist for many
    frames, so the colour scale is a square-root one to keep off-diagonal entries visible;
    ``exclude_self`` shows transitions between different states only."""
    p = transition_probabilities(states_per_session, k, exclude_self=exclude_self)
    fig = new_figure(7.8, 6.8)
    ax = fig.add_subplot()
    im = ax.imshow(p, cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=max(p.max(), 1e-12)))
    ticks = state_ticks(k)
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("Next microstate")
    ax.set_ylabel("Current microstate")
    if title is None:
        title = "Microstate transitions" + (" (excluding self-transitions)" if exclude_self else "")
    ax.set_title(title)
    cb = fig.colorbar(im, ax=ax, pad=0.01, shrink=0.9)
    cb.set_label("P(next | current)  (sqrt scale)")
    return fig


def normalize_confusion(cm: np.ndarray) -> np.ndarray:
    """Row-normalise a confusion matrix (rows = true class): each row with samples sums to
    1; rows without samples stay 0."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def confusion_matrix_figure(
    cm: np.ndarray,
    class_names: Sequence[str],
    normalize: bool = True,
    title: str | None = None,
) -> Figure:
    """Confusion matrix (rows = true, columns = predicted) with class names and cell values;
    with ``normalize`` each row is divided by its total (recall on the diagonal)."""
    cm = np.asarray(cm)
    n = len(class_names)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix shape {cm.shape} for {n} class names")
    values = normalize_confusion(cm) if normalize else cm.astype(np.float64)
    side = float(np.clip(2.4 + 0.62 * n, 4.5, 16.0))
    fig = new_figure(side + 1.0, side)
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(values.max(), 1.0)
    im = ax.imshow(values, cmap="Blues", vmin=0, vmax=vmax)
    ax.set_xticks(np.arange(n), list(class_names), rotation=45, ha="right")
    ax.set_yticks(np.arange(n), list(class_names))
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    if title is None:
        title = "Confusion matrix" + (" (row-normalised)" if normalize else " (counts)")
    ax.set_title(title)
    if n <= 30:
        size = 9 if n <= 10 else 7
        for (i, j), v in np.ndenumerate(values):
            text = f"{v:.2f}" if normalize else f"{int(round(v))}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=size,
                color="white" if v > 0.6 * vmax else "black",
            )
    cb = fig.colorbar(im, ax=ax, pad=0.01, shrink=0.85)
    cb.set_label("Fraction of true class" if normalize else "Frames")
    return fig


# --------------------------------------------------------------------------------------------
# output
# --------------------------------------------------------------------------------------------


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` as an image (PNG unless ``path`` says otherwise), creating folders.

    The figures here are not registered with pyplot, so nothing needs closing: dropping the
    last reference frees them."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi))


def log_figure(logger_or_writer: Any, tag: str, fig: Figure, step: int = 0) -> None:
    """Send ``fig`` to TensorBoard.

    ``logger_or_writer``: a ``torch.utils.tensorboard.SummaryWriter`` (anything with
    ``add_figure``), a Lightning ``TensorBoardLogger`` (its ``.experiment``), or a list of
    loggers (e.g. ``trainer.loggers``; those without TensorBoard are skipped).
    """
    targets = logger_or_writer if isinstance(logger_or_writer, list | tuple) else [logger_or_writer]
    writers = []
    for t in targets:
        if hasattr(t, "add_figure"):
            writers.append(t)
        elif hasattr(getattr(t, "experiment", None), "add_figure"):
            writers.append(t.experiment)
    if not writers:
        raise TypeError(
            f"no TensorBoard writer in {type(logger_or_writer).__name__}: expected a "
            f"SummaryWriter, a TensorBoardLogger or a list of loggers"
        )
    for w in writers:
        w.add_figure(tag, fig, global_step=step, close=False)
