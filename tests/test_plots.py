"""Tests of dbm_lightning.analysis.plots: every figure renders to a real, non-blank PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from dbm_lightning.analysis import plots
from dbm_lightning.analysis.microstates import fit_microstates
from dbm_lightning.analysis.summaries import (
    group_microstates,
    group_names,
    overlap_table,
    time_share_by_group,
    transition_probabilities,
)

LABELS = ("rest", "locomotion", "other", "left_port", "centre_port", "right_port")
PORTS = {3: (160.0, 30.0), 4: (320.0, 30.0), 5: (480.0, 30.0)}
K = 12


@pytest.fixture(scope="module")
def fake():
    """Small realistic data: 2 mice x 3 days, label segments, head xy, clustered embeddings."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, size=(len(LABELS), 6))
    labels, xys, embs, meta, names = [], [], [], [], []
    for mouse in ("m01", "m02"):
        for day in (1, 2, 3):
            seg = rng.integers(0, len(LABELS), size=40)
            y = np.repeat(seg, rng.integers(5, 30, size=seg.size))[:600]
            xy = np.column_stack([rng.uniform(20, 620, y.size), rng.uniform(60, 460, y.size)])
            for lab, (cx, cy) in PORTS.items():
                sel = y == lab
                xy[sel] = np.column_stack(
                    [cx + rng.normal(0, 12, sel.sum()), cy + rng.normal(0, 8, sel.sum())]
                )
            e = centres[y] + 0.3 * rng.normal(size=(y.size, 6))
            y[rng.random(y.size) < 0.03] = -1
            xy[rng.random(y.size) < 0.01] = np.nan
            labels.append(y)
            xys.append(xy)
            embs.append(e)
            meta.append((mouse, day))
            names.append(f"{mouse}_day{day}")
    ms = fit_microstates(embs, labels, LABELS, k=K, seed=0, n_init=2)
    states = [ms.assign(e) for e in embs]
    states[0][:20] = -1  # some invalid frames
    return {
        "labels": labels,
        "xy": np.concatenate(xys),
        "states": states,
        "meta": meta,
        "names": names,
        "ms": ms,
    }


def _check_png(fig: Figure, path, min_kb: float = 5.0) -> np.ndarray:
    assert isinstance(fig, Figure)
    out = plots.save_figure(fig, path)
    assert out.exists() and out.suffix == ".png"
    assert out.stat().st_size > min_kb * 1024
    img = imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    flat = img.reshape(-1, img.shape[2])
    assert np.unique(flat, axis=0).shape[0] > 20, "image is (nearly) a single colour"
    return img


def test_label_raster(fake, tmp_path):
    fig = plots.label_raster(fake["labels"], LABELS, fake["names"], fps=30.0)
    _check_png(fig, tmp_path / "labels.png")
    legend = fig.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [*LABELS, "(unlabelled)"]
    with pytest.raises(ValueError, match="label names"):
        plots.label_raster(fake["labels"], LABELS[:3])
    with pytest.raises(ValueError, match="session names"):
        plots.label_raster(fake["labels"], LABELS, ["a"])


def test_microstate_raster_uneven_sessions(fake, tmp_path):
    states = [fake["states"][0], fake["states"][1][:300]]
    fig = plots.microstate_raster(states, K, ["long", "short"])
    _check_png(fig, tmp_path / "states.png")
    assert "invalid" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="out of range"):
        plots.microstate_raster(states, 3)


def test_label_per_microstate_heatmap(fake, tmp_path):
    table = overlap_table(fake["states"], fake["labels"], K, len(LABELS))
    fig = plots.label_per_microstate_heatmap(table, LABELS)
    _check_png(fig, tmp_path / "heat.png")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == list(LABELS)
    assert len(ax.get_xticklabels()) == K
    with pytest.raises(ValueError, match="label names"):
        plots.label_per_microstate_heatmap(table, LABELS[:2])


def test_position_scatter_subsamples(fake, tmp_path):
    s = np.concatenate(fake["states"])
    fig = plots.position_scatter(fake["xy"], s, K, max_points=1000, arena=(0, 640, 0, 480))
    _check_png(fig, tmp_path / "scatter.png")
    ax = fig.axes[0]
    assert ax.collections[0].get_offsets().shape[0] == 1000
    y0, y1 = ax.get_ylim()
    assert y0 > y1  # image coordinates: y grows downwards


def test_occupancy_grid(fake, tmp_path):
    s = np.concatenate(fake["states"])
    fig = plots.occupancy_grid(
        fake["xy"], s, K, bins=16, ncols=5, state_names=fake["ms"].dominant_label_names()
    )
    _check_png(fig, tmp_path / "occ.png")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == K
    assert all(np.nanmax(ax.images[0].get_array()) == pytest.approx(1.0) for ax in images)


def test_group_share_by_day(fake, tmp_path):
    groups = {"left_port": ["left_port"], "centre_port": ["centre_port"], "right": ["right_port"]}
    g = group_microstates(fake["ms"], groups)
    df = time_share_by_group(fake["states"], fake["meta"], g, group_names(groups))
    fig = plots.group_share_by_day(df)
    _check_png(fig, tmp_path / "share.png")
    panels = [ax for ax in fig.axes if ax.patches]
    assert [ax.get_title() for ax in panels] == ["m01", "m02"]
    # stacked bars reach 1 on every day
    for ax in panels:
        tops = {}
        for p in ax.patches:
            x = round(p.get_x() + p.get_width() / 2)
            tops[x] = max(tops.get(x, 0.0), p.get_y() + p.get_height())
        assert np.allclose(list(tops.values()), 1.0)
    with pytest.raises(ValueError, match="needs columns"):
        plots.group_share_by_day(pd.DataFrame({"mouse": ["a"]}))


def test_transition_matrix_rows_sum_to_one(fake, tmp_path):
    p = transition_probabilities(fake["states"], K)
    visited = np.bincount(
        np.concatenate([s[:-1][s[:-1] >= 0] for s in fake["states"]]), minlength=K
    )
    np.testing.assert_allclose(p[visited > 0].sum(axis=1), 1.0)
    fig = plots.transition_matrix(fake["states"], K)
    _check_png(fig, tmp_path / "trans.png")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array().sum(axis=1)[visited > 0], 1.0)
    fig = plots.transition_matrix(fake["states"], K, exclude_self=True)
    shown = np.asarray(fig.axes[0].images[0].get_array())
    assert np.all(np.diag(shown) == 0)


def test_confusion_matrix_normalisation(tmp_path):
    cm = np.array([[8, 2, 0], [1, 1, 0], [0, 0, 0]])
    norm = plots.normalize_confusion(cm)
    np.testing.assert_allclose(norm, [[0.8, 0.2, 0], [0.5, 0.5, 0], [0, 0, 0]])
    names = ["rest", "left_port", "right_port"]
    fig = plots.confusion_matrix_figure(cm, names)
    _check_png(fig, tmp_path / "cm.png")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), norm)
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert "0.80" in [t.get_text() for t in ax.texts]
    fig = plots.confusion_matrix_figure(cm, names, normalize=False)
    assert "8" in [t.get_text() for t in fig.axes[0].texts]
    with pytest.raises(ValueError, match="class names"):
        plots.confusion_matrix_figure(cm, names[:2])


def test_log_figure_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    fig = plots.confusion_matrix_figure(np.eye(2), ["a", "b"])
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    plots.log_figure(writer, "cm", fig, step=3)

    class FakeLogger:  # Lightning's TensorBoardLogger exposes the writer as .experiment
        experiment = writer

    plots.log_figure([object(), FakeLogger()], "cm2", fig, step=4)
    writer.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    with pytest.raises(TypeError, match="no TensorBoard writer"):
        plots.log_figure(object(), "x", fig)
