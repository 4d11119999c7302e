"""SLEAP (.slp, analysis .h5) and NWB (ndx-pose) readers: files written by sleap-io and
pynwb/ndx-pose from real DLC pose, read back exactly; every malformed-file error."""

from __future__ import annotations

import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.dlc import load_dlc
from dbm_lightning.io.nwb import NWB_EXTRA_HINT, load_nwb
from dbm_lightning.io.sleap import SLEAP_EXTRA_HINT, is_sleap_analysis_h5, load_sleap, sleap_stem

sio = pytest.importorskip("sleap_io")
pynwb = pytest.importorskip("pynwb")
ndx_pose = pytest.importorskip("ndx_pose")

N = 600  # frames of the source used
VIDEO_LEN = 620  # the video is longer than the labelled frames: a NaN tail
FPS = 25.0
PAIR = ("adult", "juvenile")
PARTS = ("nose", "leftear", "rightear", "neck", "lefthip", "righthip", "tail")
NO_INSTANCE = range(200, 205)  # frames without any instance
NO_JUVENILE = range(300, 310)  # frames without the juvenile
USER = range(50, 53)  # frames where the adult has a user-labelled instance (+1.5 px)
OVER_ONE = range(400, 404)  # frames whose nose score is 1.25 (clipped to 1)
BSOID = "raw_clip1DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000.csv"


def _raises(fn, path: Path, *fragments: str, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        fn(path, **kwargs)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert "\n" not in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    return info.value


# ------------------------------------------------------------------- real pose, as truth


@pytest.fixture(scope="module")
def pair(shared_data: Path) -> dict:
    """The two-mouse ethome file's first N frames, with missing points, absent animals,
    user-labelled frames and scores above 1 added; ``pose``/``lik`` are what a reader of the
    SLEAP files must give (VIDEO_LEN frames), ``score`` the raw point scores written."""
    (csv,) = sorted((shared_data / "ethome_boris" / "dlc").glob("*.csv.xz"))
    src = load_dlc(csv)
    assert src.individuals == PAIR and src.parts == PARTS and src.n_frames == 5700
    pose = src.animal_pose()[:N].astype(np.float64)
    score = src.likelihood.reshape(src.n_frames, 2, -1)[:N].astype(np.float64)
    visible = score >= 0.3  # the real low-likelihood points become missing
    assert 0 < (~visible).sum() < 50
    score[OVER_ONE.start : OVER_ONE.stop, :, 0] = 1.25
    conf = score.copy()  # the confidence a reader reports: 1 for user-labelled points
    conf[USER.start : USER.stop, 0] = 1.0
    score[USER.start : USER.stop, 0] = 0.4  # the predictions the user-labelled ones replace
    present = np.ones((N, 2), dtype=bool)
    present[NO_INSTANCE.start : NO_INSTANCE.stop] = False
    present[NO_JUVENILE.start : NO_JUVENILE.stop, 1] = False
    want_pose = np.full((VIDEO_LEN, 2, len(PARTS), 2), np.nan)
    want_pose[:N] = np.where(visible[..., None], pose, np.nan)
    want_pose[USER.start : USER.stop, 0] += 1.5
    want_pose[:N][~present] = np.nan
    want_lik = np.zeros((VIDEO_LEN, 2, len(PARTS)))
    want_lik[:N] = np.where(visible & present[..., None], np.clip(conf, 0, 1), 0.0)
    return {
        "pose": pose,
        "score": score,
        "conf": conf,
        "visible": visible,
        "present": present,
        "want_pose": want_pose.astype(np.float32),
        "want_lik": want_lik.astype(np.float32),
    }


def _pair_labels(pair: dict, video) -> sio.Labels:
    skeleton = sio.Skeleton(list(PARTS), name="mouse")
    tracks = [sio.Track(name) for name in PAIR]
    frames = []
    for t in range(N):
        instances = []
        for a in range(2):
            if not pair["present"][t, a]:
                continue
            xy = np.where(pair["visible"][t, a, :, None], pair["pose"][t, a], np.nan)
            if a == 0 and t in USER:  # before the prediction it replaces, in the file too
                instances.append(sio.Instance.from_numpy(xy + 1.5, skeleton, track=tracks[0]))
            instances.append(
                sio.PredictedInstance.from_numpy(
                    points_data=xy,
                    skeleton=skeleton,
                    point_scores=pair["score"][t, a],
                    score=0.9,
                    track=tracks[a],
                )
            )
        if instances:
            frames.append(sio.LabeledFrame(video=video, frame_idx=t, instances=instances))
    return sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=tracks)


def _video(name: str = "pair.mp4", length: int | None = VIDEO_LEN, fps: float | None = FPS):
    meta = {}
    if length is not None:
        meta["shape"] = (length, 480, 640, 1)
    if fps is not None:
        meta["fps"] = fps
    return sio.Video(filename=name, backend_metadata=meta)


@pytest.fixture(scope="module")
def pair_files(pair: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sleap_pair")
    labels = _pair_labels(pair, _video())
    files = {
        "slp": folder / "pair.mp4.predictions.slp",
        "h5": folder / "pair.mp4.predictions.analysis.h5",
        "h5_standard": folder / "pair_standard.analysis.h5",
    }
    sio.save_slp(labels, str(files["slp"]))
    sio.save_analysis_h5(labels, str(files["h5"]))
    sio.save_analysis_h5(labels, str(files["h5_standard"]), preset="standard")
    return files


def _check_pair(s, pair: dict) -> None:
    assert s.individuals == PAIR
    assert s.parts == PARTS
    assert s.bodyparts[:2] == ("adult/nose", "adult/leftear")
    assert s.bodyparts[7] == "juvenile/nose" and len(s.bodyparts) == 14
    assert s.n_frames == VIDEO_LEN and s.fps == FPS
    assert s.pose.dtype == np.float32 and s.likelihood.dtype == np.float32
    np.testing.assert_array_equal(s.animal_pose(), pair["want_pose"])
    np.testing.assert_array_equal(s.likelihood.reshape(VIDEO_LEN, 2, -1), pair["want_lik"])
    assert s.extra == {"individuals": list(PAIR), "file_individuals": list(PAIR), "format": "sleap"}


# -------------------------------------------------------------------------------- SLEAP


@pytest.mark.real_data
@pytest.mark.parametrize("kind", ["slp", "h5", "h5_standard"])
def test_sleap_pair_reads_back_exactly(pair: dict, pair_files: dict, kind: str) -> None:
    s = load_sleap(pair_files[kind])
    _check_pair(s, pair)
    assert s.source == pair_files[kind]
    assert s.name == ("pair_standard" if kind == "h5_standard" else "pair")
    # the spots the source was changed at
    assert np.isnan(s.pose[NO_INSTANCE.start]).all() and np.isnan(s.pose[N:]).all()
    assert np.isnan(s.animal_pose()[NO_JUVENILE.start, 1]).all()
    assert not np.isnan(s.animal_pose()[NO_JUVENILE.start, 0]).any()
    assert s.likelihood[OVER_ONE.start, 0] == 1.0 and s.likelihood[OVER_ONE.start, 7] == 1.0
    np.testing.assert_array_equal(
        s.animal_pose()[USER.start, 0], pair["pose"][USER.start, 0].astype(np.float32) + 1.5
    )


@pytest.mark.real_data
def test_slp_and_analysis_h5_agree_with_sleap_io(pair_files: dict) -> None:
    slp, h5 = load_sleap(pair_files["slp"]), load_sleap(pair_files["h5"])
    np.testing.assert_array_equal(slp.pose, h5.pose)
    np.testing.assert_array_equal(slp.likelihood, h5.likelihood)
    # sleap-io's own reader of the .slp (user instances over predictions, NaN where missing)
    ref = sio.load_slp(str(pair_files["slp"])).numpy()
    np.testing.assert_array_equal(slp.animal_pose(), ref.astype(np.float32))
    assert is_sleap_analysis_h5(pair_files["h5"]) and is_sleap_analysis_h5(
        pair_files["h5_standard"]
    )
    assert not is_sleap_analysis_h5(pair_files["slp"])


@pytest.mark.real_data
def test_analysis_h5_without_dims(pair: dict, pair_files: dict, tmp_path: Path) -> None:
    """Files of SLEAP itself name no axes: its transposed (tracks, 2, nodes, frames) layout, and
    the untransposed (frames, nodes, 2, tracks) one."""
    for layout in ("transposed", "untransposed"):
        path = tmp_path / f"{layout}.h5"
        path.write_bytes(pair_files["h5"].read_bytes())
        with h5py.File(path, "r+") as f:
            tracks, scores = f["tracks"][()], f["point_scores"][()]
            for key in ("tracks", "point_scores"):
                del f[key]
            if layout == "untransposed":
                tracks, scores = tracks.transpose(3, 2, 1, 0), scores.transpose(2, 1, 0)
            f["tracks"], f["point_scores"] = tracks, scores
        _check_pair(load_sleap(path), pair)


@pytest.mark.real_data
@pytest.mark.parametrize("kind", ["slp", "h5"])
def test_sleap_individuals_select_and_order(pair: dict, pair_files: dict, kind: str) -> None:
    one = load_sleap(pair_files[kind], individuals=["juvenile"])
    assert one.individuals == () and one.bodyparts == PARTS
    np.testing.assert_array_equal(one.pose, pair["want_pose"][:, 1])
    np.testing.assert_array_equal(one.likelihood, pair["want_lik"][:, 1])
    assert one.extra["individuals"] == ["juvenile"] and one.extra["file_individuals"] == list(PAIR)
    both = load_sleap(pair_files[kind], individuals=["juvenile", "adult"])
    assert both.individuals == ("juvenile", "adult")
    np.testing.assert_array_equal(both.animal_pose(), pair["want_pose"][:, ::-1])
    _raises(load_sleap, pair_files[kind], "unknown individual(s) ['pup']", individuals=["pup"])
    _raises(load_sleap, pair_files[kind], "twice", individuals=["adult", "adult"])


@pytest.mark.real_data
def test_sleap_fps_from_file_wins_over_argument(pair_files: dict) -> None:
    with pytest.warns(UserWarning, match="frame rate 25 fps is used, not the 30 fps"):
        s = load_sleap(pair_files["h5"], fps=30)
    assert s.fps == FPS


@pytest.fixture(scope="module")
def bsoid(shared_data: Path) -> tuple:
    src = load_dlc(shared_data / "bsoid_dlc_clips" / BSOID)
    assert src.n_frames == 7200 and src.individuals == ()
    return src.pose[:N].astype(np.float64), src.likelihood[:N].astype(np.float64), src.bodyparts


@pytest.mark.real_data
def test_sleap_single_animal_untracked(bsoid: tuple, tmp_path: Path) -> None:
    pose, lik, parts = bsoid
    skeleton = sio.Skeleton(list(parts))
    video = _video("clip1.avi", length=None, fps=None)  # no length, no fps stored
    last = N - 5  # the last labelled frame + 1 is the frame count
    frames = [
        sio.LabeledFrame(
            video=video,
            frame_idx=t,
            instances=[
                sio.PredictedInstance.from_numpy(
                    points_data=pose[t], skeleton=skeleton, point_scores=lik[t], score=1.0
                )
            ],
        )
        for t in range(last)
    ]
    labels = sio.Labels(labeled_frames=frames, videos=[video], skeletons=[skeleton])
    sio.save_slp(labels, str(tmp_path / "clip1.slp"))
    sio.save_analysis_h5(labels, str(tmp_path / "clip1.analysis.h5"))
    for path in (tmp_path / "clip1.slp", tmp_path / "clip1.analysis.h5"):
        s = load_sleap(path, fps=60)
        assert s.name == "clip1" and s.individuals == () and s.bodyparts == parts
        assert s.n_frames == last and s.fps == 60.0
        np.testing.assert_array_equal(s.pose, pose[:last].astype(np.float32))
        np.testing.assert_array_equal(s.likelihood, lik[:last].astype(np.float32))
        assert s.extra["individuals"] == ["track_0"]
        assert load_sleap(path).fps is None


def _untracked(tmp_path: Path, per_frame: int, tracks: bool = False) -> Path:
    skeleton = sio.Skeleton(["a", "b"])
    video = _video("v.mp4", length=4)
    track = sio.Track("t0")
    frames = []
    for t in range(3):
        insts = [
            sio.PredictedInstance.from_numpy(
                np.full((2, 2), float(t + 10 * i)), skeleton, point_scores=np.ones(2), score=1.0
            )
            for i in range(per_frame)
        ]
        if tracks:
            insts.append(
                sio.PredictedInstance.from_numpy(
                    np.full((2, 2), 5.0),
                    skeleton,
                    point_scores=np.full(2, 0.5),
                    score=1.0,
                    track=track,
                )
            )
        if tracks and t == 1:  # not visible, though its coordinates are stored
            insts[-1].points["visible"][1] = False
        frames.append(sio.LabeledFrame(video=video, frame_idx=t, instances=insts))
    labels = sio.Labels(
        labeled_frames=frames,
        videos=[video],
        skeletons=[skeleton],
        tracks=[track] if tracks else [],
    )
    path = tmp_path / f"untracked{per_frame}{int(tracks)}.slp"
    sio.save_slp(labels, str(path))
    return path


def test_sleap_untracked_animals(tmp_path: Path) -> None:
    _raises(load_sleap, _untracked(tmp_path, 2), "frame 0 has 2 instances without a track")
    with pytest.warns(UserWarning, match="3 instance\\(s\\) without a track left out"):
        s = load_sleap(_untracked(tmp_path, 1, tracks=True))
    assert s.extra["individuals"] == ["t0"] and s.n_frames == 4
    want = np.full((4, 2, 2), 5.0, dtype=np.float32)
    want[1, 1] = want[3] = np.nan
    np.testing.assert_array_equal(s.pose, want)
    np.testing.assert_array_equal(s.likelihood, [[0.5, 0.5], [0.5, 0], [0.5, 0.5], [0, 0]])


def test_sleap_several_videos(tmp_path: Path) -> None:
    skeleton = sio.Skeleton(["a", "b"])
    videos = [_video("one.mp4", length=2), _video("two.mp4", length=3, fps=50.0)]
    frames = [
        sio.LabeledFrame(
            video=v,
            frame_idx=0,
            instances=[sio.Instance.from_numpy(np.full((2, 2), float(i + 1)), skeleton)],
        )
        for i, v in enumerate(videos)
    ]
    path = tmp_path / "two_videos.slp"
    sio.save_slp(sio.Labels(labeled_frames=frames, videos=videos, skeletons=[skeleton]), str(path))
    _raises(load_sleap, path, "labelled frames in 2 videos", "video=")
    s = load_sleap(path, video="two.mp4")
    assert s.n_frames == 3 and s.fps == 50.0 and s.pose[0, 0, 0] == 2.0
    assert (s.likelihood[0] == 1).all() and (s.likelihood[1:] == 0).all()  # user-labelled
    assert load_sleap(path, video=0).pose[0, 0, 0] == 1.0
    _raises(load_sleap, path, "video=5 but the file has 2", video=5)


def test_sleap_bad_files(tmp_path: Path, shared_data_path: Path) -> None:
    _raises(load_sleap, tmp_path / "absent.slp", "file not found")
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not hdf5 at all" * 10)
    _raises(load_sleap, garbage, "not an HDF5 file")
    assert not is_sleap_analysis_h5(garbage) and not is_sleap_analysis_h5(tmp_path)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["node_names"] = np.array([b"a"])
        f["points"] = np.zeros((3, 2))
    _raises(load_sleap, other, "no 'tracks' dataset", "not a SLEAP analysis HDF5 file")
    assert not is_sleap_analysis_h5(other)
    bad_shape = tmp_path / "bad_shape.h5"
    with h5py.File(bad_shape, "w") as f:
        f["tracks"] = np.zeros((1, 3, 4, 5))
        f["node_names"] = np.array([b"a", b"b"])
    _raises(load_sleap, bad_shape, "'tracks' has shape (1, 3, 4, 5)", "2 node names")
    dlc_h5 = shared_data_path / "bsoid_dlc_clips" / BSOID.replace(".csv", ".h5")
    if dlc_h5.is_file():  # a DeepLabCut .h5 is not a SLEAP file
        assert not is_sleap_analysis_h5(dlc_h5)
        _raises(load_sleap, dlc_h5, "no 'tracks' dataset", "load_dlc")
    slp = _untracked(tmp_path, 1)
    truncated = tmp_path / "truncated.slp"
    truncated.write_bytes(slp.read_bytes()[: slp.stat().st_size // 2])
    _raises(load_sleap, truncated, "cannot read as a SLEAP .slp file")
    h5 = tmp_path / "good.analysis.h5"
    sio.save_analysis_h5(sio.load_slp(str(slp)), str(h5))
    cut = tmp_path / "cut.analysis.h5"
    cut.write_bytes(h5.read_bytes()[: h5.stat().st_size // 2])
    _raises(load_sleap, cut, "cannot read as a SLEAP analysis HDF5 file")


def test_missing_extras(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slp = _untracked(tmp_path, 1)
    h5 = tmp_path / "x.analysis.h5"
    sio.save_analysis_h5(sio.load_slp(str(slp)), str(h5))
    nwb = _write_nwb(tmp_path / "x.nwb", {"m": {"a": np.zeros((3, 2))}})
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "sleap_io", None)  # `import sleap_io` raises ImportError
        _raises(load_sleap, slp, SLEAP_EXTRA_HINT)
        assert load_sleap(h5).n_frames == 4  # the analysis .h5 needs h5py only
    for module in ("pynwb", "ndx_pose"):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, module, None)
            _raises(load_nwb, nwb, NWB_EXTRA_HINT)
    assert load_sleap(slp).n_frames == 4 and load_nwb(nwb).n_frames == 3


def test_sleap_stem() -> None:
    assert sleap_stem("m01.mp4.predictions.analysis.h5") == "m01"
    assert sleap_stem("labels.v001.000_m01.analysis.h5") == "labels.v001.000_m01"
    assert sleap_stem("a/b/m02.predictions.slp") == "m02"
    assert sleap_stem(".analysis.h5") == ".analysis"


# ---------------------------------------------------------------------------------- NWB


def _nwbfile(subject_id: str | None = None):
    from pynwb.file import Subject

    subject = Subject(subject_id=subject_id, species="Mus musculus") if subject_id else None
    return pynwb.NWBFile(
        session_description="pose",
        identifier="test",
        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
        subject=subject,
    )


def _write_nwb(path: Path, animals: dict, timing: dict | None = None, **kw) -> Path:
    """``animals``: name -> {part: data or (data, confidence)}; the parts' order is the
    skeleton's; ``timing``: name -> {part: kwargs} (default rate FPS)."""
    nwb = _nwbfile(kw.pop("subject_id", None))
    behavior = nwb.create_processing_module(kw.pop("module", "behavior"), "pose")
    skeletons = {
        a: ndx_pose.Skeleton(name=f"{a}_skeleton", nodes=list(parts))
        for a, parts in animals.items()
    }
    behavior.add(ndx_pose.Skeletons(skeletons=list(skeletons.values())))
    for a, parts in animals.items():
        series = []
        for p, values in parts.items():
            data, conf = values if isinstance(values, tuple) else (values, None)
            extra = (timing or {}).get(a, {}).get(p, {"rate": FPS, "starting_time": 0.0})
            series.append(
                ndx_pose.PoseEstimationSeries(
                    name=p, data=data, confidence=conf, reference_frame="top left", **extra
                )
            )
        behavior.add(
            ndx_pose.PoseEstimation(
                name=a, pose_estimation_series=series, skeleton=skeletons[a], source_software="DLC"
            )
        )
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def _pair_animals(pair: dict) -> dict:
    pose = pair["want_pose"][:N]
    conf = np.where(np.isnan(pose[..., 0]), 0.3, pair["conf"])  # any confidence where missing
    return {
        a: {p: (pose[:, i, j], conf[:, i, j]) for j, p in enumerate(PARTS)}
        for i, a in enumerate(PAIR)
    }


@pytest.mark.real_data
def test_nwb_pair_reads_back_exactly(pair: dict, tmp_path: Path) -> None:
    path = _write_nwb(tmp_path / "pair.nwb", _pair_animals(pair), subject_id="pair7")
    s = load_nwb(path)
    assert s.individuals == PAIR and s.parts == PARTS  # skeleton order, not alphabetical
    assert s.n_frames == N and s.fps == FPS and s.name == "pair" and s.source == path
    np.testing.assert_array_equal(s.animal_pose(), pair["want_pose"][:N])
    np.testing.assert_array_equal(s.likelihood.reshape(N, 2, -1), pair["want_lik"][:N])
    assert s.extra == {
        "individuals": list(PAIR),
        "file_individuals": list(PAIR),
        "format": "nwb",
        "start_time": 0.0,
        "subject_id": "pair7",
    }
    one = load_nwb(path, individuals=["juvenile"])
    assert one.individuals == () and one.bodyparts == PARTS
    np.testing.assert_array_equal(one.pose, pair["want_pose"][:N, 1])
    assert load_nwb(path, individuals=["juvenile", "adult"]).individuals == ("juvenile", "adult")
    _raises(load_nwb, path, "unknown individual(s) ['pup']", individuals=["pup"])
    with pytest.warns(UserWarning, match="frame rate 25 fps is used"):
        assert load_nwb(path, fps=30).fps == FPS


@pytest.mark.real_data
def test_nwb_single_animal_timestamps(bsoid: tuple, tmp_path: Path) -> None:
    pose, lik, parts = bsoid
    parts = [p.replace("/", "_") for p in parts]  # an HDF5 name holds no '/'
    times = 10.0 + np.arange(N) / 30.0 + np.random.default_rng(0).uniform(-1e-4, 1e-4, N)
    animals = {"mouse": {p: (pose[:, j], lik[:, j]) for j, p in enumerate(parts)}}
    timing = {"mouse": {p: {"timestamps": times} for p in parts}}
    with pytest.warns(UserWarning, match="fps is used, not the 60 fps given"):
        s = load_nwb(_write_nwb(tmp_path / "clip1.nwb", animals, timing), fps=60)
    assert s.individuals == () and s.bodyparts == tuple(parts) and s.n_frames == N
    assert s.fps == pytest.approx(30.0, rel=1e-3) and s.extra["start_time"] == times[0]
    assert s.extra["individuals"] == ["mouse"]
    np.testing.assert_array_equal(s.pose, pose.astype(np.float32))
    np.testing.assert_array_equal(s.likelihood, lik.astype(np.float32))


def test_nwb_series_aligned_on_their_times(tmp_path: Path) -> None:
    xy = np.arange(20, dtype=np.float64).reshape(10, 2)
    # 'b' misses frames 2 and 5 (timestamps), 'c' starts at frame 3 (rate), 'a' is complete
    keep = np.array([0, 1, 3, 4, 6, 7, 8, 9])
    animals = {"m": {"a": xy, "b": (xy[keep], np.full(8, 0.5)), "c": xy[3:8]}}
    timing = {
        "m": {
            "a": {"rate": 10.0, "starting_time": 1.0},
            "b": {"timestamps": 1.0 + keep / 10.0},
            "c": {"rate": 10.0, "starting_time": 1.3},
        }
    }
    s = load_nwb(_write_nwb(tmp_path / "sparse.nwb", animals, timing))
    assert s.n_frames == 10 and s.fps == 10.0 and s.extra["start_time"] == 1.0
    np.testing.assert_array_equal(s.pose[:, 0], xy)
    want_b = np.full((10, 2), np.nan)
    want_b[keep] = xy[keep]
    np.testing.assert_array_equal(s.pose[:, 1], want_b)
    np.testing.assert_array_equal(s.likelihood[:, 1], np.where(np.isnan(want_b[:, 0]), 0, 0.5))
    assert np.isnan(s.pose[[0, 1, 2, 8, 9], 2]).all()
    np.testing.assert_array_equal(s.pose[3:8, 2], xy[3:8])


@pytest.mark.real_data
def test_nwb_of_sleap_io_equals_slp(pair: dict, tmp_path: Path) -> None:
    """sleap-io's own NWB export (one PoseEstimation per track, missing points dropped from
    each series) reads as the .slp of the same labels."""
    visible = pair["visible"].copy()
    visible[10, 0, 2] = visible[20:25, 1, 4] = False  # gaps in two series
    labels = _pair_labels({**pair, "visible": visible}, _video(length=None))
    # sleap-io's NWB export writes predictions only (and fails on frames without instances)
    labels.labeled_frames = [lf for lf in labels.labeled_frames if lf.frame_idx < 45]
    labels.skeletons[0].name = "mouse"
    sio.save_slp(labels, str(tmp_path / "p.slp"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sleap-io/pynwb deprecations
        sio.save_nwb(labels, str(tmp_path / "p.nwb"))
        s = load_nwb(tmp_path / "p.nwb")
    slp = load_sleap(tmp_path / "p.slp")
    assert s.individuals == PAIR and s.n_frames == slp.n_frames == 45
    assert np.isnan(s.animal_pose()[20:25, 1, 4]).all() and s.likelihood[10, 2] == 0
    np.testing.assert_array_equal(s.pose, slp.pose)
    np.testing.assert_array_equal(s.likelihood, slp.likelihood)


def test_nwb_3d_and_parts(tmp_path: Path) -> None:
    xyz = np.arange(12, dtype=np.float64).reshape(4, 3)
    path = _write_nwb(tmp_path / "3d.nwb", {"m": {"a": xyz, "b": xyz[:, :2]}})
    with pytest.warns(UserWarning, match="z is dropped"):
        s = load_nwb(path)
    np.testing.assert_array_equal(s.pose[:, 0], xyz[:, :2])
    assert (s.likelihood == 1).all()  # no confidence stored
    odd = {"m1": {"a": xyz[:, :2]}, "m2": {"a": xyz[:, :2]}, "m3": {"z": xyz[:, :2]}}
    path = _write_nwb(tmp_path / "odd.nwb", odd)
    with pytest.warns(UserWarning, match=r"individual\(s\) \['m3'\] left out"):
        assert load_nwb(path).individuals == ("m1", "m2")
    _raises(load_nwb, path, "different body parts", individuals=["m1", "m3"])


def test_nwb_bad_files(tmp_path: Path) -> None:
    xy = np.zeros((5, 2))
    _raises(load_nwb, tmp_path / "absent.nwb", "file not found")
    garbage = tmp_path / "garbage.nwb"
    garbage.write_bytes(b"\x00" * 100)
    _raises(load_nwb, garbage, "not an NWB file")
    empty = tmp_path / "empty.nwb"
    nwb = _nwbfile()
    nwb.create_processing_module("behavior", "nothing here")
    with pynwb.NWBHDF5IO(str(empty), "w") as io:
        io.write(nwb)
    _raises(load_nwb, empty, "no ndx-pose PoseEstimation", "['behavior']")
    good = _write_nwb(tmp_path / "good.nwb", {"m": {"a": xy}})
    cut = tmp_path / "cut.nwb"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _raises(load_nwb, cut, "cannot read as an NWB pose file")
    rates = {"m": {"a": {"rate": 25.0}, "b": {"rate": 30.0}}}
    path = _write_nwb(tmp_path / "rates.nwb", {"m": {"a": xy, "b": xy}}, rates)
    _raises(load_nwb, path, "different rates (25 and 30 Hz)")
    off = {"m": {"a": {"rate": 10.0}, "b": {"timestamps": np.arange(5) / 10.0 + 0.05}}}
    path = _write_nwb(tmp_path / "off.nwb", {"m": {"a": xy, "b": xy}}, off)
    _raises(load_nwb, path, "series 'b' (length 5) does not fit", "0.50 frame off")
    # one series' timestamps shorter than its data (pynwb refuses to write it: edit the file)
    stamped = {"m": {"a": {"timestamps": np.arange(5) / 10.0}}}
    path = _write_nwb(tmp_path / "lengths.nwb", {"m": {"a": xy}}, stamped)
    with h5py.File(path, "r+") as f:
        group = f["processing/behavior/m/a"]
        del group["timestamps"]
        group["timestamps"] = np.arange(4) / 10.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb warns about the same mismatch
        _raises(load_nwb, path, "series m/a has 4 timestamps for 5 samples")
