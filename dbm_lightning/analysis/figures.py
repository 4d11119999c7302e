"""All figures of a training run (the paper's and the original DBM's), as PNG and TensorBoard.

:func:`make_run_figures` takes a run directory written by ``dbm-train`` /
:func:`dbm_lightning.training.run_training` (``checkpoints/best.ckpt`` or ``last.ckpt``,
``metrics.json``, and ``.hydra/config.yaml`` or ``config.yaml``; without a config file the
configuration stored in the checkpoint is used), rebuilds its data module with
:func:`dbm_lightning.build.build_datamodule`, fits the microstates on all sessions (or
reuses those stored in the checkpoint when ``k`` matches), and draws every figure of
:mod:`dbm_lightning.analysis.plots` into ``RUN_DIR/figures`` and the run's TensorBoard directory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.analysis import plots
from dbm_lightning.analysis.run_microstates import (
    extract_run_microstates,
    load_microstates_from_checkpoint,
)
from dbm_lightning.analysis.summaries import (
    group_microstates,
    group_names,
    overlap_table,
    time_share_by_group,
)
from dbm_lightning.build import build_datamodule
from dbm_lightning.models.lightning import DBMClassifier
from dbm_lightning.runs import RunDir
from dbm_lightning.session import DEFAULT_FPS

__all__ = ["FIGURES", "make_run_figures", "microstate_groups", "part_title", "share_layout"]

log = logging.getLogger(__name__)

FIGURES = (
    "label_raster",
    "microstate_raster",
    "label_per_microstate",
    "head_scatter",
    "occupancy_grid",
    "group_share_by_day",
    "transition_matrix",
    "confusion_matrix",
)
"""File stems (``.png``) written by :func:`make_run_figures`, in order."""

PORT_GROUPS = ("left_port", "centre_port", "right_port")

FIGURE_TITLES = {
    "label_raster": "pseudo-label raster",
    "microstate_raster": "microstate raster",
    "label_per_microstate": "% pseudo-label per microstate",
    "head_scatter": "position scatter by microstate",
    "occupancy_grid": "occupancy per microstate",
    "group_share_by_day": "share of time in microstate groups",
    "transition_matrix": "microstate transitions",
    "confusion_matrix": "confusion matrix",
}
"""What each of :data:`FIGURES` shows (for progress lines)."""

_GENERIC_PART = re.compile(r"part(\d+)")


DBM_PART_ORDER = ("head", "nose", "left ear", "right ear", "body centre", "tail base")
"""The six tracked parts of the original DBM code's data, in their order (its DeepLabCut CSV:
``../shared/DESIGN.md``); the DBM .mat file holds six parts and names none."""


def part_title(part: str, bodyparts: Sequence[str]) -> str:
    """How to name body part ``part`` in a figure title.

    When every name is a generic ``part1``, ``part2``, ... (what
    :func:`dbm_lightning.io.dbm_mat.load_dbm_mat` assigns: the DBM .mat file names no parts),
    say so, and with six parts give the name of the original code's order
    (:data:`DBM_PART_ORDER`): ``"head (body part 1 in the original DBM order; the file names
    no parts)"``; otherwise the name itself."""
    match = _GENERIC_PART.fullmatch(part)
    if not (match and all(_GENERIC_PART.fullmatch(b) for b in bodyparts)):
        return part
    index = int(match.group(1))
    if len(bodyparts) == len(DBM_PART_ORDER) and 1 <= index <= len(DBM_PART_ORDER):
        return (
            f"{DBM_PART_ORDER[index - 1]} (body part {index} in the original DBM order; "
            "the file names no parts)"
        )
    return f"body part {index} (the file names no parts)"


def share_layout(mice: Sequence[str | None], days: Sequence[int | None]) -> tuple[str, str]:
    """``(entry_name, title)`` of the share-of-time figure for sessions with these ``mouse``
    and ``day`` fields (None = unknown): sessions without mice are their own entries."""
    has_mouse = any(m is not None for m in mice)
    has_day = any(d is not None for d in days)
    base = "Share of time in microstate groups (by dominant pseudo-label)"
    if not has_mouse and not has_day:
        return "Session", f"{base} per session (the data names no mice or days)"
    if not has_mouse:
        return "Session", f"{base} per session (the data names no mice)"
    if not has_day:
        return "Mouse", f"{base} per mouse (the data names no days)"
    return "Mouse", f"{base} per mouse and day"


def microstate_groups(class_names: list[str]) -> dict[str, list[str]]:
    """Groups of microstates by dominant label: the ports (``left_port``, ``centre_port``,
    ``right_port``) when those labels exist (everything else -> ``other``), else one group per
    label."""
    ports = [p for p in PORT_GROUPS if p in class_names]
    if ports:
        return {p: [p] for p in ports}
    return {n: [n] for n in class_names}


def _confusion(probs: list[np.ndarray], labels: list[np.ndarray], n_classes: int) -> np.ndarray:
    """``(C, C)`` counts (rows = true) over labelled frames."""
    y = np.concatenate([np.asarray(a, dtype=np.int64) for a in labels])
    pred = np.concatenate([np.asarray(p).argmax(axis=1) for p in probs])
    keep = y >= 0
    return np.bincount(y[keep] * n_classes + pred[keep], minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def _log_pngs(log_dir: Path, paths: Sequence[Path]) -> None:
    """Log written PNGs as TensorBoard images ``figures/<stem>`` (no second rendering)."""
    from matplotlib.image import imread
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for path in paths:
            rgb = (np.clip(imread(path)[..., :3], 0.0, 1.0) * 255).round().astype(np.uint8)
            writer.add_image(f"figures/{path.stem}", rgb, global_step=0, dataformats="HWC")
    finally:
        writer.close()


def make_run_figures(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    k: int = 50,
    seed: int = 0,
    refit: bool = False,
    tensorboard: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Draw every figure of a training run; return the PNG paths (see :data:`FIGURES`).

    Parameters
    ----------
    run_dir
        A ``dbm-train`` output directory.
    out_dir
        Where the PNGs go (default ``RUN_DIR/figures``).
    k, seed
        Number of microstates and k-means seed. Microstates stored in the checkpoint with the
        same ``k`` are reused unless ``refit``; otherwise they are fitted on all sessions
        (train + val + test, renumbered by the pseudo-labels) and saved as
        ``RUN_DIR/microstates.npz/.json`` and inside the checkpoint (for ``dbm-predict``).
    tensorboard
        Also log the figures (tags ``figures/<name>``) to the run's TensorBoard directory.
    progress
        Called with a short line before each step (loading, microstates, each figure,
        writing), e.g. ``print``; ``dbm-plots`` prints them.
    """

    def say(msg: str) -> None:
        log.info(msg)
        if progress is not None:
            progress(msg)

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    run = RunDir(run_dir)
    out = Path(out_dir) if out_dir is not None else run.figures_dir
    ckpt = run.find_checkpoint()
    say(f"loading {ckpt} and rebuilding the run's data")
    module = DBMClassifier.from_checkpoint_file(ckpt)
    cfg = run.read_config(module)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    class_names = list(dm.class_names)
    if class_names != list(module.hparams["class_names"]):
        raise ValueError(
            f"{run_dir}: the rebuilt data has classes {class_names} but the model "
            f"{list(module.hparams['class_names'])}; was the data changed since training?"
        )

    stored = None if refit else load_microstates_from_checkpoint(ckpt)
    if stored is not None and stored.k != k:
        stored = None
    if stored is None:
        say(f"fitting {k} microstates (k-means on the embedding of every frame)")
    else:
        say(f"embedding every frame and assigning the {k} stored microstates")
    result = extract_run_microstates(
        module,
        dm,
        k=k,
        seed=seed,
        microstates=stored,
        run_dir=run_dir if stored is None else None,
        ckpt_path=ckpt if stored is None else None,
    )
    ms = result.microstates
    prepared = dm.predict_sessions(names=result.names)
    names = result.names
    labels = result.labels or [np.full(s.shape, -1) for s in result.states]
    fps = float(dm.pipeline_state().get("fps") or DEFAULT_FPS)

    state_names = ms.dominant_label_names()
    bodyparts = list(dm.bodyparts)
    part = "head" if "head" in bodyparts else bodyparts[0]
    p_idx = bodyparts.index(part)
    arena = getattr(dm, "arena", None)  # configured bounds only; else robust percentiles

    def draw_label_raster() -> Any:
        return plots.label_raster(
            labels, class_names, session_names=names, fps=fps, title="Pseudo-label occurrence"
        )

    def draw_microstate_raster() -> Any:
        return plots.microstate_raster(
            result.states, ms.k, session_names=names, fps=fps, state_names=state_names
        )

    def draw_label_per_microstate() -> Any:
        return plots.label_per_microstate_heatmap(
            overlap_table(result.states, labels, k=ms.k, n_labels=len(class_names)), class_names
        )

    xy = np.concatenate([p.session.pose[:, p_idx, :] for p in prepared])
    all_states = np.concatenate(result.states)
    part_name = part_title(part, bodyparts)

    def draw_head_scatter() -> Any:
        return plots.position_scatter(
            xy,
            all_states,
            ms.k,
            arena=arena,
            title=f"{part_name[:1].upper()}{part_name[1:]} position by microstate",
            state_names=state_names,
        )

    def draw_occupancy_grid() -> Any:
        return plots.occupancy_grid(
            xy,
            all_states,
            ms.k,
            arena=arena,
            state_names=state_names,
            title=f"Where each microstate occurs ({part_name}; occupancy, normalised per state)",
        )

    def draw_group_share() -> Any:
        groups = microstate_groups(class_names)
        gnames = group_names(groups)
        mice = [p.session.mouse for p in prepared]
        days = [p.session.day for p in prepared]
        meta = [
            (m or p.name, d if d is not None else 1)
            for m, d, p in zip(mice, days, prepared, strict=True)
        ]
        share = time_share_by_group(result.states, meta, group_microstates(ms, groups), gnames)
        default = gnames[-1]
        if default not in groups and not (share.loc[share["group"] == default, "frames"] > 0).any():
            gnames = gnames[:-1]  # no microstate in the default group: keep it off the legend
            share = share[share["group"] != default]
        entry_name, title = share_layout(mice, days)
        return plots.group_share_by_day(
            share, group_order=gnames, title=title, entry_name=entry_name
        )

    def draw_transitions() -> Any:
        return plots.transition_matrix(result.states, ms.k, exclude_self=True)

    def draw_confusion() -> Any:
        splits = [p.split for p in prepared]
        split = next((s for s in ("val", "test", "train") if s in splits), "train")
        idx = [i for i, s in enumerate(splits) if s == split]
        cm = _confusion([result.probs[i] for i in idx], [labels[i] for i in idx], len(class_names))
        return plots.confusion_matrix_figure(
            cm,
            class_names,
            title=f"Confusion matrix, {split} split ({int(cm.sum()):,} frames, rows = true)",
        )

    drawers: dict[str, Callable[[], Any]] = {
        "label_raster": draw_label_raster,
        "microstate_raster": draw_microstate_raster,
        "label_per_microstate": draw_label_per_microstate,
        "head_scatter": draw_head_scatter,
        "occupancy_grid": draw_occupancy_grid,
        "group_share_by_day": draw_group_share,
        "transition_matrix": draw_transitions,
        "confusion_matrix": draw_confusion,
    }
    paths: list[Path] = []
    for i, name in enumerate(FIGURES, start=1):
        say(f"[{i}/{len(FIGURES)}] {name}.png: {FIGURE_TITLES[name]}")
        paths.append(plots.save_figure(drawers[name](), out / f"{name}.png"))
    if tensorboard:
        say(f"logging the {len(paths)} PNGs to TensorBoard ({run.tensorboard_dir})")
        _log_pngs(run.tensorboard_dir, paths)
    log.info("figures written to %s", out)
    return paths
