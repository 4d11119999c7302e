"""Readability of the run figures on data like the DBM sample (no mice, no days, no part names,
50 microstates, tracking artefacts), and ``dbm-plots`` progress output."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from matplotlib import colormaps
from matplotlib.image import imread

from dbm_lightning.analysis import plot_style, plots
from dbm_lightning.analysis.figures import FIGURES, part_title, share_layout
from dbm_lightning.analysis.summaries import time_share_by_group
from dbm_lightning.io import load_dbm_mat

GROUPS = ["LEVER", "PORT", "RESTING", "OTHER", "other"]


def _sample_mat(shared_data: Path) -> Path:
    path = shared_data / "dbm_sample" / "DBM_sample_data.mat"
    if not path.is_file():
        pytest.skip(f"DBM sample not found at {path}")
    return path


def _share_table(meta: list[tuple[str, int]], seed: int = 0):
    """A real ``time_share_by_group`` table: random microstate runs, 12 states in 5 groups."""
    rng = np.random.default_rng(seed)
    states = [np.repeat(rng.integers(0, 12, 40), 20) for _ in meta]
    state_group = np.arange(12) % len(GROUPS)
    return time_share_by_group(states, meta, state_group, GROUPS)


def _bar_panels(fig) -> list:
    return [ax for ax in fig.axes if ax.patches]


def _min_lab_distance(rgba: np.ndarray) -> float:
    lab = plot_style.srgb_to_lab(np.asarray(rgba)[:, :3])
    return min(float(np.linalg.norm(a - b)) for a, b in combinations(lab, 2))


# ------------------------------------------------------------------ share of time per session


def test_sessions_without_mice_or_days_get_one_panel(tmp_path: Path) -> None:
    """57 trials, each its own "mouse" on the same day: one panel of 57 bars, not 57 panels."""
    names = [f"trial_{i:02d}" for i in range(1, 58)]
    df = _share_table([(n, 1) for n in names])
    assert not plots.has_day_structure(df)
    fig = plots.group_share_by_day(df, group_order=GROUPS, entry_name="Session")
    panels = _bar_panels(fig)
    assert len(panels) == 1
    ax = panels[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert ax.get_xlabel() == "Session"
    tops: dict[int, float] = {}
    for p in ax.patches:
        x = round(p.get_x() + p.get_width() / 2)
        tops[x] = max(tops.get(x, 0.0), p.get_y() + p.get_height())
    assert len(tops) == 57
    np.testing.assert_allclose(list(tops.values()), 1.0)
    out = plots.save_figure(fig, tmp_path / "share.png")
    assert imread(out).shape[0] < 1000  # one row of bars, not 15 rows of panels


def test_mice_with_several_days_keep_their_panels() -> None:
    df = _share_table([(m, d) for m in ("m01", "m02", "m03") for d in (1, 2, 3)])
    assert plots.has_day_structure(df)
    panels = _bar_panels(plots.group_share_by_day(df, group_order=GROUPS))
    assert [ax.get_title() for ax in panels] == ["m01", "m02", "m03"]
    assert all(len(ax.get_xticks()) == 3 for ax in panels)


def test_mice_seen_on_one_day_each_share_one_panel_with_day_in_labels() -> None:
    df = _share_table([("m01", 1), ("m02", 3), ("m03", 5)])
    fig = plots.group_share_by_day(df, group_order=GROUPS)
    (ax,) = _bar_panels(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == [
        "m01, day 1",
        "m02, day 3",
        "m03, day 5",
    ]
    with pytest.raises(ValueError, match="layout"):
        plots.group_share_by_day(df, layout="grid")


def test_group_colours_are_all_different() -> None:
    """A label OTHER next to the default group other must not share its dark grey."""
    df = _share_table([(f"s{i}", 1) for i in range(4)])
    fig = plots.group_share_by_day(df, group_order=GROUPS)
    legend = fig.legends[0]
    colours = {tuple(np.round(h.get_facecolor(), 3)) for h in legend.legend_handles}
    assert len(colours) == len(GROUPS)


def test_share_layout_names_what_the_data_lacks() -> None:
    assert share_layout([None, None], [None, None]) == (
        "Session",
        "Share of time in microstate groups (by dominant pseudo-label) per session "
        "(the data names no mice or days)",
    )
    assert share_layout(["m1", "m2"], [1, 2])[1].endswith("per mouse and day")
    assert share_layout(["m1", "m2"], [None, None])[0] == "Mouse"


@pytest.mark.real_data
def test_dbm_sample_sessions_give_one_share_panel(shared_data: Path) -> None:
    """The real DBM sample: its trials carry no mouse and no day."""
    sessions = load_dbm_mat(_sample_mat(shared_data))
    assert all(s.mouse is None and s.day is None for s in sessions)
    meta = [(s.mouse or s.name, s.day if s.day is not None else 1) for s in sessions]
    entry, _ = share_layout([s.mouse for s in sessions], [s.day for s in sessions])
    fig = plots.group_share_by_day(_share_table(meta), group_order=GROUPS, entry_name=entry)
    assert len(_bar_panels(fig)) == 1


# ------------------------------------------------------------------ body-part names


@pytest.mark.real_data
def test_generic_part_names_of_the_dbm_file_are_explained(shared_data: Path) -> None:
    parts = load_dbm_mat(_sample_mat(shared_data))[0].bodyparts
    assert parts[0] == "part1"
    assert part_title(parts[0], parts) == (
        "head (body part 1 in the original DBM order; the file names no parts)"
    )
    assert part_title(parts[3], parts).startswith("right ear (body part 4 ")
    four = ("part1", "part2", "part3", "part4")  # not the DBM layout: no name is given
    assert part_title("part2", four) == "body part 2 (the file names no parts)"


def test_real_part_names_are_kept() -> None:
    assert part_title("head", ("head", "nose", "tail_base")) == "head"
    assert part_title("part1", ("part1", "nose")) == "part1"  # a real name among them


# ------------------------------------------------------------------ palettes


def test_fifty_microstates_get_fifty_clearly_different_colours() -> None:
    colours = plots.state_colors(50)
    assert colours.shape == (50, 4)
    assert np.unique(colours, axis=0).shape[0] == 50
    # a continuous map sampled at 50 points (the old turbo) is ~3 units between neighbours
    assert _min_lab_distance(colours) > 15.0
    for n in (60, 120):
        assert np.unique(plots.categorical_colors(n), axis=0).shape[0] == n


def test_few_behaviours_keep_tab10() -> None:
    expected = np.array([colormaps["tab10"](i) for i in range(9)])
    np.testing.assert_allclose(plots.label_colors(9), expected)
    assert _min_lab_distance(plots.label_colors(15)) > 15.0


def test_colour_bar_labels_every_microstate_with_its_name(tmp_path: Path) -> None:
    k = 50
    rng = np.random.default_rng(1)
    states = [rng.integers(0, k, 800) for _ in range(57)]
    names = [f"L{i // 7}" for i in range(k)]
    fig = plots.microstate_raster(states, k, state_names=names, fps=30.0)
    plots.save_figure(fig, tmp_path / "raster.png")
    colorbar_ax = fig.axes[1]
    labels = [t.get_text() for t in colorbar_ax.get_yticklabels()]
    assert labels == [f"{i} {n}" for i, n in enumerate(names)]
    with pytest.raises(ValueError, match="state names"):
        plots.microstate_raster(states, k, state_names=names[:3])


# ------------------------------------------------------------------ axis limits


def _with_artefact() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    xy = np.column_stack([rng.uniform(0, 100, 5000), rng.uniform(0, 50, 5000)])
    xy[17] = (1e4, -1e4)  # one tracking artefact far away
    xy[18] = np.nan
    return xy, rng.integers(0, 8, xy.shape[0])


def test_scatter_limits_ignore_a_far_outlier_and_say_so() -> None:
    xy, states = _with_artefact()
    fig = plots.position_scatter(xy, states, 8)
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    y_bottom, y_top = ax.get_ylim()
    assert -15 < x0 < 5 and 95 < x1 < 115
    assert -10 < y_top < 5 and 45 < y_bottom < 60
    assert "1 of 4,999 frames" in ax.get_title()
    assert plots.count_outside(xy, plots.robust_extent(xy)) == 1


def test_known_arena_fixes_the_view() -> None:
    xy, states = _with_artefact()
    ax = plots.position_scatter(xy, states, 8, arena=(0, 200, 0, 100)).axes[0]
    assert ax.get_xlim() == (0.0, 200.0)
    assert "arena bounds" in ax.get_title()


def test_occupancy_grid_extent_ignores_the_outlier() -> None:
    xy, states = _with_artefact()
    fig = plots.occupancy_grid(xy, states, 8, bins=10)
    x_min, x_max, y_max, y_min = fig.axes[0].images[0].get_extent()
    assert x_max < 115 and y_min > -10
    assert "outside it" in fig._suptitle.get_text()


# ------------------------------------------------------------------ dbm-plots end to end


@pytest.mark.slow
@pytest.mark.real_data
def test_dbm_plots_on_the_dbm_sample_reports_progress(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Train one epoch on the DBM sample, then ``dbm-plots``: a progress line per figure on
    stderr, the files on stdout, one share panel, the part named as unnamed."""
    from dbm_lightning.cli.config import compose_config
    from dbm_lightning.cli.plots import main as plots_main
    from dbm_lightning.training import run_training

    cfg = compose_config(
        [
            "data=dbm_mat",
            f"data.path={_sample_mat(shared_data)}",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "logger=none",
        ]
    )
    run_dir = tmp_path / "run"
    run_training(cfg, run_dir)
    capsys.readouterr()
    assert plots_main([str(run_dir), "--k", "12", "--no-tensorboard"]) == 0
    out, err = capsys.readouterr()
    for i, name in enumerate(FIGURES, start=1):
        assert f"[{i}/{len(FIGURES)}] {name}.png" in err
    assert "done: 8 files written" in err
    written = [Path(line) for line in out.splitlines()]
    assert written == [run_dir / "figures" / f"{name}.png" for name in FIGURES]
    assert all(p.is_file() for p in written)
    share = imread(run_dir / "figures" / "group_share_by_day.png")
    assert share.shape[0] < 1000  # one panel (it was 4,776 px tall with 57 panels)
