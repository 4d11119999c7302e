"""Tests of dbm_lightning.summarise (bout_poses, snippets, trajectories): skeletons, bout
choice, pose-snippet animations (GIF read back with Pillow, MP4 or its clear error) and the
egocentric trajectory plot."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from dbm_lightning.errors import DataFormatError
from dbm_lightning.session import Session
from dbm_lightning.summarise.bout_poses import (
    align_first_frame,
    choose_bouts,
    ego_indices,
    skeleton_edges,
)
from dbm_lightning.summarise.snippets import ffmpeg_path, write_snippets
from dbm_lightning.summarise.trajectories import mean_trajectory, trajectory_figure, trajectory_plot

PARTS = ("nose", "head", "neck", "body", "hip", "tail")
NAMES = ("rest", "walk", "groom")
BLUE = np.array([31, 119, 180])  # tab:blue, the first individual
ORANGE = np.array([255, 127, 14])  # tab:orange, the second


def walking_pose(
    frames: int, heading: float = 0.0, speed: float = 2.0, origin=(100.0, 100.0), spacing=10.0
) -> np.ndarray:
    """``(frames, 6, 2)``: a straight mouse, nose first, walking along its body axis."""
    d = np.array([np.cos(heading), np.sin(heading)])
    along = speed * np.arange(frames)[:, None] - spacing * np.arange(len(PARTS))[None, :]
    return np.asarray(origin) + along[..., None] * d


def session(pose: np.ndarray, name: str = "m01", individuals: tuple[str, ...] = ()) -> Session:
    parts = tuple(f"{i}/{p}" for i in individuals for p in PARTS) if individuals else PARTS
    return Session(
        pose=pose,
        likelihood=np.ones(pose.shape[:2]),
        bodyparts=parts,
        name=name,
        fps=30.0,
        individuals=individuals,
    )


def runs(*pieces: tuple[int, int]) -> np.ndarray:
    """Labels from ``(code, length)`` runs."""
    return np.concatenate([np.full(n, c, dtype=np.int64) for c, n in pieces])


def gif_frames(path) -> tuple[int, tuple[int, int], Image.Image]:
    with Image.open(path) as im:
        n, size = im.n_frames, im.size
        im.seek(0)
        first = im.convert("RGB")
    return n, size, first


def has_colour(image: Image.Image, rgb: np.ndarray, tol: float = 30.0) -> bool:
    px = np.asarray(image, dtype=np.float64).reshape(-1, 3)
    return bool((np.abs(px - rgb).max(axis=1) < tol).sum() >= 3)


# --------------------------------------------------------------------------- skeleton_edges


def test_skeleton_edges_recovers_a_shuffled_chain() -> None:
    rng = np.random.default_rng(0)
    pose = walking_pose(40, heading=0.7) + rng.normal(0, 0.5, (40, 6, 2))
    perm = np.array([3, 0, 5, 1, 4, 2])  # column k holds chain part perm[k]
    where = np.argsort(perm)  # chain part j sits in column where[j]
    pose = pose[:, perm]
    pose[rng.random(pose.shape[:2]) < 0.1] = np.nan  # some missing points
    expected = sorted(tuple(sorted((int(where[j]), int(where[j + 1])))) for j in range(5))
    assert skeleton_edges(pose) == expected


def test_skeleton_edges_leave_an_always_missing_part_unconnected() -> None:
    pose = walking_pose(20)
    pose[:, 2] = np.nan  # the neck is never tracked
    edges = skeleton_edges(pose)
    assert len(edges) == 4
    assert all(2 not in e for e in edges)
    assert edges == [(0, 1), (1, 3), (3, 4), (4, 5)]  # head joins body across the gap


def test_skeleton_edges_connect_parts_tracked_at_one_point() -> None:
    pose = walking_pose(10)[:, :3]
    pose[:, 1] = pose[:, 0]  # zero distance: still an edge (csgraph reads 0 as none)
    edges = skeleton_edges(pose)
    assert len(edges) == 2 and (0, 1) in edges  # (0, 2) or (1, 2): the same length
    assert skeleton_edges(np.full((5, 3, 2), np.nan)) == []
    with pytest.raises(ValueError, match="frames, parts, 2"):
        skeleton_edges(np.zeros((5, 3)))


# --------------------------------------------------------------------------- choose_bouts


def test_choose_bouts_finds_the_bouts() -> None:
    labels = [np.array([0, 0, 1, 1, 1, -1, 1, 0, 1, 1]), np.array([1, 1, 1, 1, 0])]
    table = choose_bouts(labels, 1, 10)
    assert list(table.columns) == ["session", "start", "end", "duration_frames"]
    rows = [tuple(int(v) for v in r) for r in table.itertuples(index=False)]
    assert rows == [(0, 2, 4, 3), (0, 6, 6, 1), (0, 8, 9, 2), (1, 0, 3, 4)]
    long = choose_bouts(labels, 1, 10, min_frames=2)
    assert long[["session", "start"]].values.tolist() == [[0, 2], [0, 8], [1, 0]]
    assert choose_bouts(labels, 2, 5).empty
    assert choose_bouts(labels, 1, 0).empty


def test_choose_bouts_respects_n_and_seed() -> None:
    labels = [np.tile([0, 0, 1, 1], 300), np.tile([1, 0, 0], 100)]  # 300 + 100 bouts of 1
    all_bouts = choose_bouts(labels, 1, 10_000)
    assert len(all_bouts) == 400
    every = set(map(tuple, all_bouts[["session", "start"]].values.tolist()))
    a = choose_bouts(labels, 1, 7, seed=3)
    assert len(a) == 7
    assert set(map(tuple, a[["session", "start"]].values.tolist())) <= every
    assert not a.duplicated().any()  # without replacement
    assert a.equals(choose_bouts(labels, 1, 7, seed=3))
    assert not a.equals(choose_bouts(labels, 1, 7, seed=4))


# --------------------------------------------------------------------------- write_snippets


def test_write_snippets_gif_frames_and_size(tmp_path) -> None:
    lab = runs((0, 5), (1, 8), (0, 4), (1, 20), (2, 3), (1, 5), (0, 10))
    s = session(walking_pose(lab.size))
    s.pose[10:12, 3] = np.nan  # missing points are skipped
    out = tmp_path / "walk.gif"
    table = write_snippets([s], [lab], NAMES, "walk", out, max_seconds=0.5, fps=30.0, dpi=40)
    assert sorted(table["duration_frames"].tolist()) == [5, 8, 20]
    assert table["session_name"].tolist() == ["m01"] * 3
    n, size, first = gif_frames(out)
    assert n == 15  # min(longest bout 20, 0.5 s x 30 fps)
    assert size == (200, 200)  # 3 bouts: 2 x 2 panels of 2.5 in x 40 dpi
    assert has_colour(first, BLUE) and not has_colour(first, ORANGE)
    # all bouts shorter than max_seconds: as long as the longest; 1 bout: one panel
    short = write_snippets([s], [lab], NAMES, "groom", tmp_path / "g.gif", dpi=40)
    assert short["frames_shown"].tolist() == [3]
    assert gif_frames(tmp_path / "g.gif")[:2] == (3, (100, 100))


def test_write_snippets_default_grid_and_fps(tmp_path) -> None:
    lab = np.tile(runs((1, 4), (0, 3)), 12)  # 12 bouts of 4 frames
    s = session(walking_pose(lab.size))
    table = write_snippets([s], [lab], NAMES, "walk", tmp_path / "w.gif", seed=1)
    assert len(table) == 9
    n, size, _ = gif_frames(tmp_path / "w.gif")
    assert (n, size) == (4, (600, 600))  # 3 x 3 panels of 200 px


def test_write_snippets_draws_every_individual(tmp_path) -> None:
    a = walking_pose(30, heading=0.0, origin=(100.0, 100.0))
    b = walking_pose(30, heading=2.0, origin=(160.0, 140.0))
    pair = session(np.concatenate([a, b], axis=1), name="pair", individuals=("a", "b"))
    lab = runs((0, 4), (1, 12), (0, 14))
    out = tmp_path / "pair.gif"
    table = write_snippets([pair], [lab], NAMES, "walk", out, max_seconds=1.0, dpi=40)
    assert table[["session_name", "start", "end"]].values.tolist() == [["pair", 4, 15]]
    n, size, first = gif_frames(out)
    assert (n, size) == (12, (100, 100))
    assert has_colour(first, BLUE) and has_colour(first, ORANGE)
    # a multi-animal and a single-animal session in one grid
    single = session(walking_pose(30), name="solo")
    table = write_snippets([pair, single], [lab, lab], NAMES, "walk", out, dpi=40)
    assert sorted(table["session_name"]) == ["pair", "solo"]
    assert gif_frames(out)[:2] == (12, (200, 100))


@pytest.mark.skipif(ffmpeg_path() is None, reason="no ffmpeg (PATH or imageio-ffmpeg)")
def test_write_snippets_mp4(tmp_path) -> None:
    lab = runs((0, 3), (1, 6), (0, 3))
    out = tmp_path / "walk.mp4"
    write_snippets([session(walking_pose(12))], [lab], NAMES, "walk", out, dpi=40)
    assert out.read_bytes()[4:8] == b"ftyp"


def test_write_snippets_mp4_without_ffmpeg_says_so(tmp_path, monkeypatch) -> None:
    # no ffmpeg anywhere: an empty PATH, no rcParams path, no imageio-ffmpeg
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    lab = runs((0, 3), (1, 6), (0, 3))
    with pytest.raises(RuntimeError, match=r"ffmpeg.*\.gif"):
        write_snippets([session(walking_pose(12))], [lab], NAMES, "walk", tmp_path / "w.mp4")
    assert not list(tmp_path.iterdir())


def test_write_snippets_errors(tmp_path) -> None:
    lab = runs((0, 3), (1, 6), (0, 3))
    s = session(walking_pose(12))
    with pytest.raises(ValueError, match=r"'\.avi'"):
        write_snippets([s], [lab], NAMES, "walk", tmp_path / "w.avi")
    with pytest.raises(KeyError, match=r"unknown behaviour 'run'.*'rest', 'walk', 'groom'"):
        write_snippets([s], [lab], NAMES, "run", tmp_path / "w.gif")
    with pytest.raises(ValueError, match="no bout of 'groom'"):
        write_snippets([s], [lab], NAMES, "groom", tmp_path / "w.gif")
    with pytest.raises(ValueError, match="labels of shape"):
        write_snippets([s], [lab[:5]], NAMES, "walk", tmp_path / "w.gif")
    with pytest.raises(ValueError, match="unknown body part 'paw'"):
        write_snippets([s], [lab], NAMES, "walk", tmp_path / "w.gif", ego_front="paw")
    assert not list(tmp_path.iterdir())  # nothing half written


# --------------------------------------------------------------------------- alignment


def rotate(w: np.ndarray, angle: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Every bout of ``(B, F, A, P, 2)`` rotated by its angle and shifted."""
    c, s = np.cos(angle)[:, None, None, None], np.sin(angle)[:, None, None, None]
    x, y = w[..., 0], w[..., 1]
    return np.stack([c * x - s * y, s * x + c * y], axis=-1) + shift[:, None, None, None]


@pytest.mark.parametrize("centre", [None, 3])
def test_alignment_ignores_rotation_and_translation(centre) -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(0, 20, (4, 5, 2, 6, 2)) + 200.0
    w[0, 2, 1, 4] = np.nan  # a missing point stays missing
    moved = rotate(w, rng.uniform(-np.pi, np.pi, 4), rng.normal(0, 300, (4, 2)))
    aligned = align_first_frame(w, centre, 0)
    np.testing.assert_allclose(align_first_frame(moved, centre, 0), aligned, atol=1e-9)
    assert np.isnan(aligned[0, 2, 1, 4]).all()
    first = aligned[:, 0, 0]  # first frame, first animal: centre at 0, front on +x
    c = first.mean(axis=1) if centre is None else first[:, centre]
    np.testing.assert_allclose(c, 0.0, atol=1e-9)
    np.testing.assert_allclose(first[:, 0, 1], 0.0, atol=1e-9)
    assert (first[:, 0, 0] > 0).all()


def test_alignment_keeps_handedness() -> None:
    w = np.full((3, 1, 1, 3, 2), np.nan)
    # image coordinates: centre (5, 5), nose above it (y down), a part on the screen's right
    w[0, 0, 0] = [(5, -5), (5, 5), (15, 5)]
    w[1, 0, 0] = [(5, 5), (5, 5), (15, 5)]  # zero-length axis: translated only
    w[2, 0, 0] = [(np.nan, np.nan), (5, 5), (15, 5)]  # no front: the bout is dropped
    out = align_first_frame(w, 1, 0)[:, 0, 0]
    np.testing.assert_allclose(out[0], [(10, 0), (0, 0), (0, 10)], atol=1e-9)
    np.testing.assert_allclose(out[1], [(0, 0), (0, 0), (10, 0)], atol=1e-9)
    assert np.isnan(out[2]).all()


def test_ego_indices() -> None:
    assert ego_indices(PARTS) == (None, 0)
    assert ego_indices(PARTS, "body", "a/head") == (3, 1)
    with pytest.raises(ValueError, match=r"unknown body part 'paw'.*'nose'"):
        ego_indices(PARTS, "paw")


# --------------------------------------------------------------------------- trajectories


def test_mean_trajectory_of_walking_mice() -> None:
    # two sessions walking in different directions at different speeds: once aligned, the
    # nose of a bout at speed v is at x = v * t + 25 (centroid at 0, nose 25 px in front)
    slow = session(walking_pose(30, heading=2.5, speed=1.0, origin=(300, 50)), "slow")
    fast = session(walking_pose(30, heading=-0.4, speed=3.0, origin=(40, 400)), "fast")
    lab_slow = runs((0, 5), (1, 10), (0, 15))
    lab_fast = runs((0, 20), (1, 3), (0, 7))  # shorter than frames: counts for 3 offsets
    mean, n = mean_trajectory([slow, fast], [lab_slow, lab_fast], 1, frames=6)
    assert n == 2 and mean.shape == (6, 1, 6, 2)
    t = np.arange(6)
    expected = np.where(t < 3, (1.0 + 3.0) / 2 * t, 1.0 * t) + 25.0
    np.testing.assert_allclose(mean[:, 0, 0, 0], expected, atol=1e-4)
    np.testing.assert_allclose(mean[:, 0, :, 1], 0.0, atol=1e-4)
    assert mean_trajectory([slow], [lab_slow], 2) == (None, 0)


def test_trajectory_figure_panels(tmp_path) -> None:
    a = session(walking_pose(40, heading=1.0), "a1")
    b = session(walking_pose(40, heading=-2.0, origin=(300, 300)), "b1")
    lab_a = runs((0, 10), (1, 10), (0, 10), (1, 10))
    lab_b = runs((1, 25), (0, 15))
    fig = trajectory_figure([a, b], [lab_a, lab_b], NAMES, frames=8)
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(fig.axes) == 4 and len(panels) == 3  # 2 x 2 grid, one cell left empty
    titles = [ax.get_title() for ax in panels]
    assert titles == ["rest (3 bouts)", "walk (3 bouts)", "groom (0 bouts)"]
    assert [t.get_text() for t in panels[2].texts] == ["no bout"]
    assert panels[1].yaxis_inverted()  # image y down
    one = trajectory_figure([a], [lab_a], NAMES, states=["walk"], max_bouts=1)
    assert [ax.get_title() for ax in one.axes] == ["walk (1 bout)"]
    with pytest.raises(KeyError, match="unknown state 'run'"):
        trajectory_figure([a], [lab_a], NAMES, states=["run"])
    path = trajectory_plot([a, b], [lab_a, lab_b], NAMES, tmp_path / "traj.png", frames=8)
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 100


def test_trajectory_plot_of_a_pair(tmp_path) -> None:
    a = walking_pose(30, heading=0.0)
    b = walking_pose(30, heading=np.pi, origin=(150.0, 100.0))
    b[:, 4] = np.nan
    pair = session(np.concatenate([a, b], axis=1), "pair", ("a", "b"))
    lab = runs((1, 12), (0, 18))
    fig = trajectory_figure([pair], [lab], NAMES, frames=5, ego_centre="body")
    legend = fig.axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]
    mean, n = mean_trajectory([pair], [lab], 1, frames=5, ego_centre="body")
    assert n == 1
    np.testing.assert_allclose(mean[0, 0, 3], 0.0, atol=1e-6)  # body at the origin
    assert np.isnan(mean[:, 1, 4]).all()  # b's hip is never tracked
    assert trajectory_plot([pair], [lab], NAMES, tmp_path / "pair.png").exists()


# --------------------------------------------------------------------------- labelled video


def _write_video(path, frames: int, size=(64, 48), fps: float = 30.0) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    writer = imageio_ffmpeg.write_frames(  # yuv444p: odd sizes too (a camera's may be odd)
        str(path), size, fps=fps, macro_block_size=1, ffmpeg_log_level="error",
        pix_fmt_out="yuv444p",
    )  # fmt: skip
    writer.send(None)
    for _ in range(frames):
        writer.send(np.zeros((size[1], size[0], 3), np.uint8).tobytes())
    writer.close()


def test_labelled_video_draws_the_pose_on_the_frames(tmp_path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from dbm_lightning.summarise.overlay import labelled_video

    video = tmp_path / "rec.mp4"
    _write_video(video, 40)
    pose = np.full((40, 3, 2), np.nan, np.float32)
    pose[:, 0] = (40.0, 30.0)  # three parts in a row, bright lines on black frames
    pose[:, 1] = (50.0, 30.0)
    pose[:, 2] = (58.0, 30.0)
    s = Session(pose=pose, likelihood=np.ones((40, 3)), bodyparts=("a", "b", "c"), name="rec")
    labels = np.where(np.arange(40) < 20, 0, 1)
    out = tmp_path / "rec.labelled.mp4"
    info = labelled_video(video, s, labels, ["walk", "groom"], out, start=10, frames=20)
    assert (info["frames"], info["video_ended"], info["size"]) == (20, False, [64, 48])
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    frames = [np.frombuffer(f, np.uint8).reshape(48, 64, 3) for f in reader]
    assert len(frames) == 20 and tuple(meta["size"]) == (64, 48)
    assert frames[0][30, 45].max() > 100  # on the skeleton's line
    assert frames[0][44, 10].max() < 40  # away from pose and caption: still black
    assert frames[0][6:12, 4:40].max() > 100  # the caption
    with pytest.raises(DataFormatError, match="outside the 40 frames"):
        labelled_video(video, s, labels, ["walk", "groom"], tmp_path / "x.mp4", start=40)
    # a pose longer than its video: the frames the video has, and it says so
    long = Session(pose=np.concatenate([pose, pose]), likelihood=np.ones((80, 3)),
                   bodyparts=("a", "b", "c"), name="rec")  # fmt: skip
    info = labelled_video(video, long, np.zeros(80, int), ["walk"], tmp_path / "l.mp4", start=30)
    assert (info["frames"], info["video_ended"]) == (10, True)
    with pytest.raises(DataFormatError, match="has 40 frames: none from frame 50"):
        labelled_video(video, long, np.zeros(80, int), ["walk"], tmp_path / "x.mp4", start=50)
    # odd frame sizes are padded for H.264
    odd = tmp_path / "odd.mp4"
    _write_video(odd, 5, size=(65, 49))
    info = labelled_video(odd, s, labels, ["walk", "groom"], tmp_path / "o.mp4", frames=5)
    assert info["frames"] == 5 and (tmp_path / "o.mp4").stat().st_size > 0
    with pytest.raises(DataFormatError, match="not found"):
        labelled_video(tmp_path / "none.mp4", s, labels, ["walk", "groom"], tmp_path / "y.mp4")
    (tmp_path / "bad.mp4").write_text("not a video")
    with pytest.raises(DataFormatError, match="cannot read"):
        labelled_video(tmp_path / "bad.mp4", s, labels, ["walk", "groom"], tmp_path / "z.mp4")
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "z.mp4").exists()
