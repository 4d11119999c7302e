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

__all__ = ["FIGURES", "make_run_figures", "microstate_groups"]

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


def make_run_figures(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    k: int = 50,
    seed: int = 0,
    refit: bool = False,
    tensorboard: bool = True,
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
    """

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: run directory not found")
    run = RunDir(run_dir)
    out = Path(out_dir) if out_dir is not None else run.figures_dir
    ckpt = run.find_checkpoint()
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

    figs: dict[str, Any] = {}
    figs["label_raster"] = plots.label_raster(
        labels, class_names, session_names=names, fps=fps, title="Pseudo-label occurrence"
    )
    figs["microstate_raster"] = plots.microstate_raster(
        result.states, ms.k, session_names=names, fps=fps
    )
    figs["label_per_microstate"] = plots.label_per_microstate_heatmap(
        overlap_table(result.states, labels, k=ms.k, n_labels=len(class_names)), class_names
    )

    bodyparts = list(dm.bodyparts)
    part = "head" if "head" in bodyparts else bodyparts[0]
    p_idx = bodyparts.index(part)
    xy = np.concatenate([p.session.pose[:, p_idx, :] for p in prepared])
    all_states = np.concatenate(result.states)
    arena = dm.arena_bounds
    figs["head_scatter"] = plots.position_scatter(
        xy, all_states, ms.k, arena=arena, title=f"{part} position by microstate"
    )
    figs["occupancy_grid"] = plots.occupancy_grid(
        xy, all_states, ms.k, arena=arena, state_names=ms.dominant_label_names()
    )

    groups = microstate_groups(class_names)
    gnames = group_names(groups)
    meta = [
        (p.session.mouse or p.name, p.session.day if p.session.day is not None else 1)
        for p in prepared
    ]
    share = time_share_by_group(result.states, meta, group_microstates(ms, groups), gnames)
    figs["group_share_by_day"] = plots.group_share_by_day(
        share,
        group_order=gnames,
        title="Share of time in microstate groups (by dominant pseudo-label) per mouse and day",
    )
    figs["transition_matrix"] = plots.transition_matrix(result.states, ms.k, exclude_self=True)

    splits = [p.split for p in prepared]
    split = next((s for s in ("val", "test", "train") if s in splits), "train")
    idx = [i for i, s in enumerate(splits) if s == split]
    cm = _confusion([result.probs[i] for i in idx], [labels[i] for i in idx], len(class_names))
    figs["confusion_matrix"] = plots.confusion_matrix_figure(
        cm,
        class_names,
        title=f"Confusion matrix, {split} split ({int(cm.sum()):,} frames, rows = true)",
    )

    paths = [plots.save_figure(figs[name], out / f"{name}.png") for name in FIGURES]
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(run.tensorboard_dir))
        try:
            for name in FIGURES:
                plots.log_figure(writer, f"figures/{name}", figs[name])
        finally:
            writer.close()
    log.info("figures written to %s", out)
    return paths
