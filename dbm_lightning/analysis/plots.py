"""Figures of labels, microstates and metrics (files and TensorBoard).

Every function takes plain arrays and returns a :class:`matplotlib.figure.Figure` drawn on the
Agg canvas without pyplot (no global state, no display, nothing to close; safe in loops and
worker processes). Write it
with :func:`save_figure` or send it to TensorBoard with :func:`log_figure`.

The figures follow the original DBM demo script and the paper: pseudo-label and microstate
rasters (sessions x frames), "% of each pseudo-label per microstate", head position scatter
coloured by microstate and per-microstate occupancy maps, per mouse and day share of time in
left / centre / right port microstates, plus a transition matrix and a confusion matrix.
Microstates are numbered from 0, as in the arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap, PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from dbm_lightning.analysis.summaries import transition_probabilities
from dbm_lightning.atomic import write_atomic

__all__ = [
    "confusion_matrix_figure",
    "group_share_by_day",
    "label_per_microstate_heatmap",
    "label_raster",
    "log_figure",
    "microstate_raster",
    "normalize_confusion",
    "occupancy_grid",
    "position_scatter",
    "save_figure",
    "state_colors",
    "transition_matrix",
]

_PAD_COLOUR = (1.0, 1.0, 1.0, 1.0)  # after the end of a shorter session
_MISSING_COLOUR = (0.82, 0.82, 0.82, 1.0)  # unlabelled / invalid frame
_GROUP_COLOURS = {  # the paper's Fig. 13c
    "centre": "tab:blue",
    "center": "tab:blue",
    "left": "tab:green",
    "right": "tab:red",
    "other": "0.3",
}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def label_colors(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA categorical colours for labels (tab10, tab20 beyond 10)."""
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return np.array([cmap(i % cmap.N) for i in range(n)])


def state_colors(k: int) -> np.ndarray:
    """``(k, 4)`` RGBA colours of microstates: ``turbo`` sampled at k points (the original
    uses ``jet``), so neighbouring states -- related behaviour -- get neighbouring hues."""
    return colormaps["turbo"](np.linspace(0.03, 0.97, max(k, 1)))[:k]


def _pad_rows(rows: Sequence[np.ndarray], pad: int) -> np.ndarray:
    """Stack 1-D int arrays of different lengths into a matrix padded with ``pad``."""
    rows = [np.asarray(r, dtype=np.int64).ravel() for r in rows]
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def _row_ticks(ax: Any, names: Sequence[str] | None, n_rows: int) -> None:
    if names is None:
        return
    if len(names) != n_rows:
        raise ValueError(f"{len(names)} session names for {n_rows} sessions")
    step = max(1, int(np.ceil(n_rows / 60)))
    idx = np.arange(0, n_rows, step)
    ax.set_yticks(idx, [str(names[i]) for i in idx], fontsize=7 if n_rows > 20 else 9)


def _state_ticks(k: int) -> np.ndarray:
    """Tick positions for k states: all when few, else every 5th."""
    return np.arange(k) if k <= 25 else np.arange(0, k, 5)


def _state_colorbar(fig: Figure, ax: Any, k: int, shrink: float = 1.0) -> Any:
    """Discrete colour bar of the k microstate colours (nothing else), thin on tall figures."""
    cmap = ListedColormap(state_colors(k))
    mappable = ScalarMappable(norm=BoundaryNorm(np.arange(-0.5, k), cmap.N), cmap=cmap)
    height = fig.get_figheight()
    cb = fig.colorbar(
        mappable, ax=ax, ticks=_state_ticks(k), pad=0.01, shrink=shrink, aspect=max(20, 4 * height)
    )
    cb.set_label("Microstate")
    cb.ax.tick_params(labelsize=7)
    return cb


def _raster(
    matrix: np.ndarray,
    colours: np.ndarray,
    session_names: Sequence[str] | None,
    title: str,
    fps: float | None,
) -> tuple[Figure, Any, Any]:
    """Image of a padded (sessions, frames) int matrix; -2 = padding, -1 = missing."""
    n_rows, n_cols = matrix.shape
    cmap = ListedColormap(np.vstack([_PAD_COLOUR, _MISSING_COLOUR, colours]))
    norm = BoundaryNorm(np.arange(-2.5, len(colours) + 0.5), cmap.N)
    fig = _figure(12.0, float(np.clip(1.6 + 0.22 * n_rows, 3.0, 14.0)))
    ax = fig.add_subplot()
    extent = None
    if fps:
        extent = (0.0, n_cols / fps / 60.0, n_rows - 0.5, -0.5)
    im = ax.imshow(
        matrix, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm, extent=extent
    )
    ax.set_xlabel("Time (min)" if fps else "Video frame")
    ax.set_ylabel("Session")
    ax.set_title(title)
    _row_ticks(ax, session_names, n_rows)
    return fig, ax, im


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
    matrix = _pad_rows(labels_per_session, pad=-2)
    if matrix.max() >= len(label_names):
        raise ValueError(f"label {matrix.max()} but only {len(label_names)} label names")
    colours = label_colors(len(label_names))
    fig, ax, _ = _raster(matrix, colours, session_names, title, fps)
    handles = [Patch(facecolor=c, label=n) for c, n in zip(colours, label_names, strict=True)]
    if (matrix == -1).any():
        handles.append(Patch(facecolor=_MISSING_COLOUR, label="(unlabelled)"))
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
) -> Figure:
    """Sessions x frames image of the microstate of every frame (discrete colour bar).

    Invalid frames (-1) are light grey; frames after the end of a shorter session white.
    """
    matrix = _pad_rows(states_per_session, pad=-2)
    if matrix.max() >= k:
        raise ValueError(f"state {matrix.max()} out of range for k={k}")
    if (matrix == -1).any():
        title = f"{title} (grey: invalid frame)"
    fig, ax, _ = _raster(matrix, state_colors(k), session_names, title, fps)
    _state_colorbar(fig, ax, k)
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
    fig = _figure(float(np.clip(2.8 + 0.24 * k, 6.0, 20.0)), 1.6 + 0.42 * n_labels)
    ax = fig.add_subplot()
    im = ax.imshow(overlap.T, aspect="auto", cmap="viridis", vmin=0, vmax=100)
    ticks = np.arange(k) if k <= 60 else _state_ticks(k)
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


def _finite_points(xy: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xy = np.asarray(xy, dtype=np.float64)
    states = np.asarray(states, dtype=np.int64).ravel()
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != states.size:
        raise ValueError(f"xy must be (N, 2) matching {states.size} states, got {xy.shape}")
    keep = np.isfinite(xy).all(axis=1) & (states >= 0)
    return xy[keep], states[keep]


def _arena_extent(arena: Any, xy: np.ndarray) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` from a 4-tuple, an object with those attributes
    (e.g. ``ArenaBounds``) or, when None, the data."""
    if arena is None:
        if xy.size == 0:
            return 0.0, 1.0, 0.0, 1.0
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        lo, hi = lo - 0.02 * span, hi + 0.02 * span
        return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])
    if all(hasattr(arena, a) for a in ("x_min", "x_max", "y_min", "y_max")):
        return float(arena.x_min), float(arena.x_max), float(arena.y_min), float(arena.y_max)
    x_min, x_max, y_min, y_max = (float(v) for v in arena)
    return x_min, x_max, y_min, y_max


def position_scatter(
    xy: np.ndarray,
    states: np.ndarray,
    k: int,
    max_points: int = 30_000,
    seed: int = 0,
    arena: Any = None,
    title: str = "Head position by microstate",
    point_size: float = 3.0,
) -> Figure:
    """Scatter of (x, y) positions (e.g. the head) coloured by microstate, in image
    coordinates (y grows downwards). At most ``max_points`` random points are drawn, in
    random order so that no state hides the others. ``arena`` = ``(x_min, x_max, y_min,
    y_max)`` or ``ArenaBounds`` fixes the axes."""
    xy, states = _finite_points(xy, states)
    if states.size and states.max() >= k:
        raise ValueError(f"state {states.max()} out of range for k={k}")
    rng = np.random.default_rng(seed)
    n = states.size
    idx = rng.permutation(n)[: min(n, max_points)]
    colours = state_colors(k)
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(-0.5, k), cmap.N)
    x_min, x_max, y_min, y_max = _arena_extent(arena, xy)
    aspect = (y_max - y_min) / max(x_max - x_min, 1e-9)
    fig = _figure(8.0, float(np.clip(0.9 + 6.0 * aspect, 3.0, 12.0)))
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
    ax.set_title(f"{title} ({shown})")
    _state_colorbar(fig, ax, k, shrink=0.85)
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
) -> Figure:
    """One small 2-D histogram of positions per microstate, in a grid (y downwards).

    Each panel is normalised to its own maximum; its title gives the state, an optional name
    (e.g. the dominant label from ``Microstates.dominant_label_names()``) and its share of
    frames. ``bins`` is the number of bins along x (y follows the arena's aspect).
    """
    xy, states = _finite_points(xy, states)
    if states.size and states.max() >= k:
        raise ValueError(f"state {states.max()} out of range for k={k}")
    if state_names is not None and len(state_names) != k:
        raise ValueError(f"{len(state_names)} state names for k={k}")
    x_min, x_max, y_min, y_max = _arena_extent(arena, xy)
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
    share = 100.0 * hist.reshape(k, -1).sum(axis=1) / max(states.size, 1)

    ncols = max(1, min(ncols, k))
    nrows = int(np.ceil(k / ncols))
    panel_w = 1.35
    fig = _figure(panel_w * ncols + 0.9, (panel_w * aspect + 0.35) * nrows + 0.6)
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
    fig.suptitle(title)
    if im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.6, pad=0.01)
        cb.set_label("Occupancy / state max")
    return fig


# --------------------------------------------------------------------------------------------
# learning over days
# --------------------------------------------------------------------------------------------


def _group_colour(name: str, fallback: Any) -> Any:
    low = name.lower()
    for key, colour in _GROUP_COLOURS.items():
        if key in low:
            return colour
    return fallback


def group_share_by_day(
    df: Any,
    group_order: Sequence[str] | None = None,
    colors: dict[str, Any] | None = None,
    ncols: int = 4,
    title: str = "Share of time in microstate groups per day",
) -> Figure:
    """Per mouse (one panel each), stacked bars over days of the share of time in each group
    of microstates (left port / centre port / right port / other): the paper's
    learning-over-days view. ``df`` is the table of
    :func:`dbm_lightning.analysis.summaries.time_share_by_group`
    (columns ``mouse, day, group, share``). Default colours follow the paper: centre
    blue, left green, right red, other dark grey."""
    needed = {"mouse", "day", "group", "share"}
    if not needed.issubset(df.columns):
        raise ValueError(f"df needs columns {sorted(needed)}, has {list(df.columns)}")
    groups = list(group_order) if group_order is not None else list(dict.fromkeys(df["group"]))
    fallback = label_colors(len(groups))
    colours = {g: _group_colour(g, fallback[i]) for i, g in enumerate(groups)}
    if colors:
        colours.update(colors)
    mice = list(dict.fromkeys(df["mouse"]))
    days = sorted(dict.fromkeys(df["day"]))
    table = df.pivot_table(index=["mouse", "day"], columns="group", values="share", aggfunc="sum")
    table = table.reindex(columns=groups).fillna(0.0)

    ncols = max(1, min(ncols, len(mice)))
    nrows = int(np.ceil(len(mice) / ncols)) if mice else 1
    fig = _figure(3.2 * ncols + 1.6, 2.6 * nrows + 0.8)
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
    handles = [Patch(facecolor=colours[g], label=g) for g in groups]
    fig.legend(handles=handles, loc="outside right upper", frameon=False, title="Group")
    fig.suptitle(title)
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
    fig = _figure(7.8, 6.8)
    ax = fig.add_subplot()
    im = ax.imshow(p, cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=max(p.max(), 1e-12)))
    ticks = _state_ticks(k)
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
    fig = _figure(side + 1.0, side)
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
