"""Pose snippets of a behaviour (or k-means microstate): a grid (about square, e.g. 3 x 3) of
short pose-only animations of random bouts (:func:`write_snippets`), as a GIF (matplotlib's
``PillowWriter``, nothing to install) or an MP4 (``FFMpegWriter``, needs ``ffmpeg``: on the
PATH, or the ``video`` extra's ``imageio-ffmpeg``). Every panel draws the animal(s) of one bout
as skeletons in video coordinates (image y pointing down), every individual of a multi-animal
session in its own colour (the labels do not say which animal they describe, so all are drawn),
with the session name, the bout's first and last frame and a frame counter. No figure calls
pyplot or ``matplotlib.use``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.animation import FFMpegWriter, PillowWriter
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import IdentityTransform
from PIL import Image

from dbm_lightning.analysis.plot_style import categorical_colors, new_figure, robust_extent
from dbm_lightning.atomic import atomic_path
from dbm_lightning.session import DEFAULT_FPS, Session
from dbm_lightning.summarise.bout_poses import (
    check_labels,
    choose_bouts,
    ego_indices,
    grid_shape,
    session_edges,
    skeleton_segments,
    square_extent,
    state_code,
)

__all__ = ["SNIPPET_FORMATS", "check_snippet_path", "ffmpeg_path", "write_snippets"]

SNIPPET_FORMATS = (".gif", ".mp4")
"""File suffixes :func:`write_snippets` writes."""


# --------------------------------------------------------------------------------------------
# animations
# --------------------------------------------------------------------------------------------


class _Background(Artist):
    """The figure's static part, drawn once (:func:`_freeze_background`) and pasted as pixels
    under every animation frame."""

    def __init__(self, rgba: np.ndarray) -> None:
        super().__init__()
        self._rgba = np.ascontiguousarray(rgba[::-1])  # draw_image's rows go bottom-up
        self.set_zorder(-1000)

    def draw(self, renderer: RendererBase) -> None:
        gc = renderer.new_gc()
        renderer.draw_image(gc, 0, 0, self._rgba)
        gc.restore()


class _GifWriter(PillowWriter):
    """matplotlib's :class:`~matplotlib.animation.PillowWriter`, every frame reduced to a
    palette by Pillow's fast octree quantiser as it is grabbed (~5 ms; left to the GIF
    encoder, the median-cut conversion of every RGB frame costs ~35 ms)."""

    def grab_frame(self, **savefig_kwargs: object) -> None:
        super().grab_frame(**savefig_kwargs)
        frames = getattr(self, "_frames", None)  # PillowWriter's list; left alone if renamed
        if isinstance(frames, list) and frames and isinstance(frames[-1], Image.Image):
            frames[-1] = frames[-1].convert("RGB").quantize(255, method=Image.Quantize.FASTOCTREE)


def _capture_background(fig: Figure, dynamic: Sequence[Artist]) -> None:
    """Make every later draw of ``fig`` (laid out and with its layout fixed) draw only its
    ``dynamic`` artists (figure-level artists, e.g. lines in an axes' data coordinates) over a
    picture of the rest: draw the figure without them, keep those pixels as a
    :class:`_Background` and hide everything else, the axes too. The movie writers still grab
    every frame with ``savefig``, which then skips every axes, tick, title and legend (a frame
    of a 3 x 3 grid: ~20 instead of ~110 ms)."""
    keep = {id(a) for a in dynamic}
    for a in dynamic:
        a.set_visible(False)
    fig.canvas.draw()
    background = _Background(np.asarray(fig.canvas.buffer_rgba()).copy())
    for a in dynamic:
        a.set_visible(True)
    for child in fig.get_children():
        if id(child) not in keep:
            child.set_visible(False)
    fig.add_artist(background)


class _SnippetPanel:
    """One panel of :func:`write_snippets`: the axes (static: limits, title, the word
    ``frame``, a legend of the individuals) and the figure-level artists that change from
    frame to frame (every animal's skeleton, points and front/centre part; the frame number,
    placed once the layout is fixed: :meth:`dynamic`)."""

    def __init__(
        self,
        fig: Figure,
        ax: Axes,
        pose: np.ndarray,
        edges: Sequence[tuple[int, int]],
        special: Sequence[int],
        title: str,
        start: int,
        individuals: Sequence[str],
    ) -> None:
        self.fig, self.ax, self.pose, self.special, self.start = fig, ax, pose, special, start
        self.segs = skeleton_segments(pose, edges)  # (F, A, 3E, 2): every frame at once
        colours = categorical_colors(pose.shape[1])
        style = {"transform": ax.transData, "clip_box": ax.bbox}
        self.artists = []
        for c in colours:
            ln = Line2D([], [], color=c, lw=1.4, solid_capstyle="round", **style)
            pt = Line2D([], [], color=c, marker="o", ms=2.5, ls="none", **style)
            fr = Line2D([], [], mfc=c, mec="k", mew=0.6, marker="o", ms=5, ls="none", **style)
            for artist in (ln, pt, fr):
                fig.add_artist(artist)
            self.artists.append((ln, pt, fr))
        x0, x1, y0, y1 = square_extent(robust_extent(pose.reshape(-1, 2), (0.0, 100.0), 0.1))
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)  # image y down
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=7)
        self.label = ax.text(0.03, 0.04, "frame", transform=ax.transAxes, fontsize=7)
        self.counter: Text | None = None
        if individuals:
            handles = [
                Line2D([], [], color=colours[a], lw=1.4, label=who)
                for a, who in enumerate(individuals)
            ]
            ax.legend(
                handles=handles, loc="upper right", fontsize=6, frameon=False, handlelength=1.0
            )

    def dynamic(self) -> list[Artist]:
        """The changing artists; call once the figure is drawn and its layout fixed (the frame
        number goes right of the static word ``frame``: only the digits are drawn per frame,
        half the cost of drawing the whole text)."""
        if self.counter is None:
            box = self.label.get_window_extent(self.fig.canvas.get_renderer())
            self.counter = self.fig.text(
                box.x1 + 3.0 * self.fig.dpi / 72.0,
                self.ax.transAxes.transform((0.03, 0.04))[1],
                "",
                transform=IdentityTransform(),
                fontsize=7,
            )
        return [a for group in self.artists for a in group] + [self.counter]

    def show(self, t: int) -> None:
        """Set the artists to animation frame ``t`` (the last frame of the bout once it has
        ended, the frame number then grey)."""
        i = min(t, self.pose.shape[0] - 1)
        for a, (ln, pt, fr) in enumerate(self.artists):
            ln.set_data(self.segs[i, a, :, 0], self.segs[i, a, :, 1])
            pt.set_data(self.pose[i, a, :, 0], self.pose[i, a, :, 1])
            fr.set_data(self.pose[i, a, self.special, 0], self.pose[i, a, self.special, 1])
        if self.counter is not None:
            self.counter.set_text(str(self.start + i))
            self.counter.set_color("0.6" if t >= self.pose.shape[0] else "k")


def write_snippets(
    sessions: Sequence[Session],
    labels: Sequence[np.ndarray],
    names: Sequence[str],
    behaviour: str,
    out_path: str | Path,
    *,
    n_bouts: int = 9,
    max_seconds: float = 2.0,
    fps: float | None = None,
    seed: int = 0,
    ego_centre: str | None = None,
    ego_front: str | None = None,
    min_frames: int = 1,
    panel_inches: float = 2.5,
    dpi: int = 80,
) -> pd.DataFrame:
    """A grid of pose-only animations of up to ``n_bouts`` random bouts of ``behaviour``.

    Parameters
    ----------
    sessions, labels, names
        ``labels[i]`` are ``(T,)`` codes into ``names`` for ``sessions[i]`` (-1: none).
    behaviour
        One of ``names`` (a behaviour or a microstate's name).
    out_path
        ``.gif`` (Pillow, always available) or ``.mp4`` (needs ``ffmpeg`` on the PATH), by
        the suffix; written atomically.
    n_bouts, seed, min_frames
        How many bouts are drawn at random (:func:`choose_bouts`) and how.
    max_seconds
        A longer bout is shown from its start for ``max_seconds``; shorter panels hold their
        last frame until the longest ends.
    fps
        Playback rate and the rate that turns ``max_seconds`` into frames (default the first
        session's fps, else 30).
    ego_centre, ego_front
        Body parts (names of one animal's parts) drawn larger: the front part (default the
        first part), which shows the heading, and the centre part when one is named.
    panel_inches, dpi
        Size of a panel; the file is ``cols x rows`` panels of ``panel_inches * dpi`` pixels.

    Each panel draws every individual of the bout's session as a skeleton
    (:func:`skeleton_edges` of that session), each in its own colour, in a view fixed around
    the shown pose (equal aspect, image y pointing down), titled ``'<session>  <start>-<end>'``
    (the bout's frames) with the video frame shown in its corner (grey once the panel holds).
    Every animation frame differs from the one before (the longest bout's frame number moves
    on), so GIF encoders merge none and the file has exactly ``frames_shown.max()`` frames.

    Returns
    -------
    :func:`choose_bouts`' table plus ``session_name`` and ``frames_shown``.

    Raises
    ------
    ValueError
        For a suffix other than ``.gif``/``.mp4``, or when ``behaviour`` has no bout.
    KeyError
        For a behaviour not in ``names``.
    RuntimeError
        For ``.mp4`` without ``ffmpeg``.
    """
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    ffmpeg = check_snippet_path(out_path)
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    labels = check_labels(sessions, labels)
    code = state_code(names, behaviour)
    bouts = choose_bouts(labels, code, n_bouts, min_frames=min_frames, seed=seed)
    if bouts.empty:
        raise ValueError(
            f"no bout of {behaviour!r} (of at least {min_frames} frames) in "
            f"{len(sessions)} session(s)"
        )
    if fps is None:
        fps = float(sessions[0].fps) if sessions and sessions[0].fps else DEFAULT_FPS
    fps = float(fps)
    max_frames = max(1, int(round(max_seconds * fps)))
    shown = np.minimum(bouts["duration_frames"].to_numpy(), max_frames)
    n_anim = int(shown.max())
    bouts = bouts.assign(
        session_name=[sessions[i].name for i in bouts["session"]], frames_shown=shown
    )

    n = len(bouts)
    rows, cols = grid_shape(n)
    panel_px = 2 * max(8, round(panel_inches * dpi / 2))  # even pixel sizes (video codecs)
    fig = new_figure(cols * panel_px / dpi, rows * panel_px / dpi)
    fig.set_dpi(dpi)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    edges_of: dict[int, list[tuple[int, int]]] = {}
    panels = []
    for k, bout in enumerate(bouts.itertuples(index=False)):
        session = sessions[bout.session]
        if bout.session not in edges_of:
            edges_of[bout.session] = session_edges(session)
        centre, front = ego_indices(session.parts, ego_centre, ego_front)
        pose = session.animal_pose()[bout.start : bout.start + shown[k]].astype(np.float64)
        panels.append(
            _SnippetPanel(
                fig,
                axes[k],
                pose,
                edges_of[bout.session],
                [front] if centre is None else [front, centre],
                f"{session.name}  {bout.start}-{bout.end}",
                int(bout.start),
                session.individuals,
            )
        )
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.suptitle(
        f"{behaviour}: {n} random bout{'s' if n > 1 else ''} (at most {max_seconds:g} s each)",
        fontsize=9,
    )
    fig.canvas.draw()
    with rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # fixed from here on (and savefig draws only once)
    _capture_background(fig, [a for panel in panels for a in panel.dynamic()])
    writer = _GifWriter(fps=fps) if suffix == ".gif" else FFMpegWriter(fps=fps)
    with (
        rc_context({"animation.ffmpeg_path": ffmpeg or "ffmpeg"}),
        atomic_path(out_path) as tmp,
        writer.saving(fig, str(tmp), dpi),
    ):
        for t in range(n_anim):
            for panel in panels:
                panel.show(t)
            writer.grab_frame()
    return bouts


def check_snippet_path(out_path: str | Path) -> str | None:
    """Refuse a snippet file :func:`write_snippets` cannot write, before anything is drawn;
    return the ffmpeg an ``.mp4`` is written with (``None`` for a ``.gif``).

    Raises
    ------
    ValueError
        For a suffix other than ``.gif`` / ``.mp4``.
    RuntimeError
        For ``.mp4`` without ffmpeg (:func:`ffmpeg_path`).
    """
    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in SNIPPET_FORMATS:
        raise ValueError(
            f"{out_path}: unknown snippet format {out_path.suffix!r}; use one of {SNIPPET_FORMATS}"
        )
    if suffix == ".gif":
        return None
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        raise RuntimeError(
            f"{out_path}: writing .mp4 needs ffmpeg, found neither on the PATH, nor at "
            "matplotlib's rcParams['animation.ffmpeg_path'], nor from imageio-ffmpeg; "
            "pip install 'dbm-lightning[video]' or write a .gif, which needs nothing"
        )
    return ffmpeg


def ffmpeg_path() -> str | None:
    """The ffmpeg to write MP4 with: matplotlib's (``rcParams['animation.ffmpeg_path']``, by
    default ``ffmpeg`` on the PATH), else the binary of the ``imageio-ffmpeg`` package (the
    ``video`` extra), else ``None``."""
    from matplotlib import rcParams

    if FFMpegWriter.isAvailable():
        return str(rcParams["animation.ffmpeg_path"])
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package without its binary
        return None


# --------------------------------------------------------------------------------------------
# trajectory plot
# --------------------------------------------------------------------------------------------
