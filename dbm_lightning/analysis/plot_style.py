"""Canvases, colours, axis limits, ticks and colour bars shared by the figures of plots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, ListedColormap, to_hex
from matplotlib.figure import Figure

__all__ = [
    "GROUP_COLOURS",
    "MISSING_COLOUR",
    "PAD_COLOUR",
    "arena_extent",
    "categorical_colors",
    "colorbar_height",
    "count_outside",
    "finite_points",
    "group_colours",
    "label_colors",
    "new_figure",
    "pad_rows",
    "raster_figure",
    "robust_extent",
    "row_ticks",
    "srgb_to_lab",
    "state_colorbar",
    "state_colors",
    "state_tick_labels",
    "state_ticks",
    "view_note",
]

PAD_COLOUR = (1.0, 1.0, 1.0, 1.0)  # after the end of a shorter session
MISSING_COLOUR = (0.82, 0.82, 0.82, 1.0)  # unlabelled / invalid frame
GROUP_COLOURS = {  # the paper's Fig. 13c
    "centre": "tab:blue",
    "center": "tab:blue",
    "left": "tab:green",
    "right": "tab:red",
    "other": "0.3",
}


# --------------------------------------------------------------------------------------------
# canvases
# --------------------------------------------------------------------------------------------


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches on its own Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def pad_rows(rows: Sequence[np.ndarray], pad: int) -> np.ndarray:
    """Stack 1-D int arrays of different lengths into a matrix padded with ``pad``."""
    rows = [np.asarray(r, dtype=np.int64).ravel() for r in rows]
    width = max((r.size for r in rows), default=0)
    out = np.full((len(rows), max(width, 1)), pad, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


def raster_figure(
    matrix: np.ndarray,
    colours: np.ndarray,
    session_names: Sequence[str] | None,
    title: str,
    fps: float | None,
    min_height: float = 3.0,
) -> tuple[Figure, Any, Any]:
    """Image of a padded (sessions, frames) int matrix; -2 = padding, -1 = missing."""
    n_rows, n_cols = matrix.shape
    cmap = ListedColormap(np.vstack([PAD_COLOUR, MISSING_COLOUR, colours]))
    norm = BoundaryNorm(np.arange(-2.5, len(colours) + 0.5), cmap.N)
    height = float(np.clip(max(1.6 + 0.22 * n_rows, min_height), 3.0, 14.0))
    fig = new_figure(12.0, height)
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
    row_ticks(ax, session_names, n_rows)
    return fig, ax, im


# --------------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------------


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of ``(..., 3)`` sRGB values in [0, 1], to measure colour differences."""
    rgb = np.asarray(rgb, dtype=np.float64)
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])],
        axis=-1,
    )


def _greedy_far(chosen: list[np.ndarray], pool: np.ndarray, n: int) -> list[np.ndarray]:
    """Add up to ``n`` colours of ``pool`` (``(m, 3)`` RGB) to ``chosen``, each time the one
    farthest (in L*a*b*) from everything chosen so far and from the raster's pad/missing
    colours."""
    avoid = [np.asarray(PAD_COLOUR[:3]), np.asarray(MISSING_COLOUR[:3]), *chosen]
    lab_pool = srgb_to_lab(pool)
    dist = np.min(
        np.linalg.norm(lab_pool[:, None] - srgb_to_lab(np.array(avoid))[None], axis=-1), axis=1
    )
    out = list(chosen)
    for _ in range(min(n, pool.shape[0])):
        i = int(np.argmax(dist))
        out.append(pool[i])
        dist = np.minimum(dist, np.linalg.norm(lab_pool - lab_pool[i], axis=-1))
        dist[i] = -1.0
    return out


def categorical_colors(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA colours for ``n`` categories, all clearly different: tab10 first (so up
    to 10 classes look as usual), then glasbey-like colours, each the one of a 16^3 RGB grid
    (lightness 20..90, so none vanishes on white or looks black) farthest in CIE L*a*b* from
    all colours chosen before and from the rasters' padding white and missing grey. 50
    colours stay about 25 L*a*b* units apart (tab20 + tab20b + tab20c: under 5; turbo: 3).
    Deterministic."""
    n = int(n)
    if n <= 0:
        return np.zeros((0, 4))
    chosen = [np.asarray(colormaps["tab10"](i)[:3]) for i in range(min(n, 10))]
    if n > len(chosen):
        chosen = _greedy_far(chosen, _glasbey_pool(), n - len(chosen))
    if n > len(chosen):  # more categories than grid colours: repeat (never reached in practice)
        chosen = [chosen[i % len(chosen)] for i in range(n)]
    return np.column_stack([np.array(chosen[:n]), np.ones(n)])


def _glasbey_pool() -> np.ndarray:
    """Candidate RGB colours for :func:`categorical_colors`: a 16^3 grid, lightness 20..90."""
    axis = np.linspace(0.0, 1.0, 16)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    lightness = srgb_to_lab(grid)[:, 0]
    return grid[(lightness > 20) & (lightness < 90)]


def label_colors(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA categorical colours for labels (:func:`categorical_colors`: tab10 for
    up to 10, then further distinct colours)."""
    return categorical_colors(n)


def state_colors(k: int) -> np.ndarray:
    """``(k, 4)`` RGBA colours of microstates: :func:`categorical_colors`, so that every one of
    (say) 50 states has its own clearly different colour (a continuous map such as the
    original's ``jet`` makes neighbouring states indistinguishable)."""
    return categorical_colors(max(k, 0))


def group_colours(groups: Sequence[str], colors: dict[str, Any] | None) -> dict[str, Any]:
    """A different colour for every group: the paper's for port groups (centre blue, left
    green, right red) and ``other`` (dark grey), the next unused categorical colour for the
    rest and for a group whose preset colour is already taken (e.g. a label ``OTHER`` next to
    the default group ``other``); ``colors`` overrides."""
    colours: dict[str, Any] = {}
    used: set[str] = set()
    for g in groups:
        low = g.lower()
        preset = next((c for key, c in GROUP_COLOURS.items() if key in low), None)
        if colors and g in colors:
            preset = colors[g]
        if preset is not None and to_hex(preset) not in used:
            colours[g] = preset
            used.add(to_hex(preset))
    palette = categorical_colors(len(groups) + len(GROUP_COLOURS) + 10)
    spare = (c for c in palette if np.ptp(c[:3]) > 0.05)  # greys are for "other"
    for g in groups:
        if g in colours:
            continue
        c = next(spare)
        while to_hex(c) in used:
            c = next(spare)
        colours[g] = c
        used.add(to_hex(c))
    return colours


# --------------------------------------------------------------------------------------------
# axis limits
# --------------------------------------------------------------------------------------------


def robust_extent(
    xy: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5), margin: float = 0.1
) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` spanning the ``percentiles`` of the finite ``(N, 2)``
    coordinates plus ``margin`` of the span on each side, so that a few tracking artefacts far
    from the animal do not stretch the axes. ``(0, 100)`` gives the full min/max."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    if xy.size == 0:
        return 0.0, 1.0, 0.0, 1.0
    lo, hi = np.percentile(xy, percentiles, axis=0)
    span = hi - lo
    pad = np.where(span > 0, margin * span, 1.0)
    lo, hi = lo - pad, hi + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def count_outside(xy: np.ndarray, extent: tuple[float, float, float, float]) -> int:
    """Number of finite ``(N, 2)`` points outside ``(x_min, x_max, y_min, y_max)``."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    xy = xy[np.isfinite(xy).all(axis=1)]
    x_min, x_max, y_min, y_max = extent
    inside = (xy[:, 0] >= x_min) & (xy[:, 0] <= x_max) & (xy[:, 1] >= y_min) & (xy[:, 1] <= y_max)
    return int((~inside).sum())


def finite_points(xy: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(N, 2)`` with finite coordinates and a valid (>= 0) state, and those states."""
    xy = np.asarray(xy, dtype=np.float64)
    states = np.asarray(states, dtype=np.int64).ravel()
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != states.size:
        raise ValueError(f"xy must be (N, 2) matching {states.size} states, got {xy.shape}")
    keep = np.isfinite(xy).all(axis=1) & (states >= 0)
    return xy[keep], states[keep]


def arena_extent(
    arena: Any, xy: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)
) -> tuple[float, float, float, float]:
    """``(x_min, x_max, y_min, y_max)`` from a 4-tuple, an object with those attributes
    (e.g. ``ArenaBounds``) or, when None, the ``percentiles`` of the data
    (:func:`robust_extent`)."""
    if arena is None:
        return robust_extent(xy, percentiles)
    if all(hasattr(arena, a) for a in ("x_min", "x_max", "y_min", "y_max")):
        return float(arena.x_min), float(arena.x_max), float(arena.y_min), float(arena.y_max)
    x_min, x_max, y_min, y_max = (float(v) for v in arena)
    return x_min, x_max, y_min, y_max


def view_note(n_out: int, n: int, from_arena: bool, percentiles: tuple[float, float]) -> str:
    """Caption line saying how the view was chosen and how many points it leaves out."""
    if from_arena:
        view = "view: arena bounds"
    elif tuple(percentiles) == (0.0, 100.0):
        view = "view: all points"
    else:
        view = f"view: {percentiles[0]:g}-{percentiles[1]:g} percentile range of x and y + margin"
    if n_out == 0:
        return view
    share = 100.0 * n_out / max(n, 1)
    return f"{view}; {n_out:,} of {n:,} frames ({share:.1f} %) outside it, not shown"


# --------------------------------------------------------------------------------------------
# ticks and colour bars
# --------------------------------------------------------------------------------------------


def row_ticks(ax: Any, names: Sequence[str] | None, n_rows: int) -> None:
    """Label a raster's rows with the session ``names`` (every n-th when there are over 60)."""
    if names is None:
        return
    if len(names) != n_rows:
        raise ValueError(f"{len(names)} session names for {n_rows} sessions")
    step = max(1, int(np.ceil(n_rows / 60)))
    idx = np.arange(0, n_rows, step)
    ax.set_yticks(idx, [str(names[i]) for i in idx], fontsize=7 if n_rows > 20 else 9)


def state_ticks(k: int) -> np.ndarray:
    """Tick positions for k states: all when few, else every 5th."""
    return np.arange(k) if k <= 25 else np.arange(0, k, 5)


def state_tick_labels(k: int, state_names: Sequence[str] | None) -> list[str]:
    """``"3"`` or, with names, ``"3 EATING"`` for every state."""
    if state_names is None:
        return [str(i) for i in range(k)]
    if len(state_names) != k:
        raise ValueError(f"{len(state_names)} state names for k={k}")
    return [f"{i} {n}" for i, n in enumerate(state_names)]


def state_colorbar(
    fig: Figure,
    ax: Any,
    k: int,
    shrink: float = 1.0,
    state_names: Sequence[str] | None = None,
) -> Any:
    """Discrete colour bar of the k microstate colours, every state labelled (with its name
    when given) unless the figure is too short for all labels, thin on tall figures."""
    cmap = ListedColormap(state_colors(k))
    mappable = ScalarMappable(norm=BoundaryNorm(np.arange(-0.5, k), cmap.N), cmap=cmap)
    height = fig.get_figheight()
    size = 7 if k <= 25 else 6
    room = 72.0 * height * shrink * 0.85  # points available along the bar
    step = max(1, int(np.ceil(k * size * 1.25 / room)))
    ticks = np.arange(0, k, step)
    labels = state_tick_labels(k, state_names)
    cb = fig.colorbar(
        mappable, ax=ax, ticks=ticks, pad=0.01, shrink=shrink, aspect=max(20, 4 * height)
    )
    cb.ax.set_yticklabels([labels[i] for i in ticks])
    cb.set_label("Microstate")
    cb.ax.tick_params(labelsize=size)
    return cb


def colorbar_height(k: int) -> float:
    """Figure height (inches) at which a colour bar can label all k states."""
    return 1.2 + 0.115 * k
