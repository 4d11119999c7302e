"""Tests of zones, rule-based pseudo-labels, label files and embedded labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dbm_lightning.errors import DataFormatError
from dbm_lightning.labeling import (
    CircleZone,
    EmbeddedLabeler,
    FileLabeler,
    PolygonZone,
    RectZone,
    RuleLabeler,
    build_labeler,
    moving_speed,
    zone_from_config,
)
from dbm_lightning.session import Session

CONF = Path(__file__).resolve().parents[1] / "conf" / "labels"
PARTS = ("head", "nose", "left_ear", "right_ear", "body_centre", "tail_base")
PORTS = [CircleZone(n, x, 30, 55) for n, x in (("left_port", 160), ("centre_port", 320))]


def _session(head: np.ndarray, body: np.ndarray, **kw) -> Session:
    t = len(head)
    pose = np.full((t, len(PARTS), 2), 300.0, dtype=np.float32)
    pose[:, 0] = head
    pose[:, 4] = body
    return Session(pose, np.ones((t, len(PARTS))), PARTS, name=kw.pop("name", "m01_day1"), **kw)


def _scenario() -> Session:
    """50 frames: port, locomotion, rest, other, then missing body parts."""
    t = 50
    head = np.tile([320.0, 300.0], (t, 1))
    head[0:10] = [160, 30]  # in the left port
    steps = np.zeros(t)
    steps[10:20] = 10.0  # 300 px/s
    steps[30:40] = 2.0  # 60 px/s: neither locomotion nor rest
    steps[43:] = 2.0
    body = np.stack([100 + np.cumsum(steps), np.full(t, 240.0)], axis=1)
    head[40] = np.nan
    head[41] = [320, 40]  # centre port while the body is missing
    body[41:43] = np.nan
    return _session(head, body)


def test_zones_contains_vectorised_and_nan_false() -> None:
    xy = np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 10.0], [11.0, 5.0], [np.nan, 5.0]])
    assert RectZone("r", 0, 10, 0, 10).contains(xy).tolist() == [True, True, True, False, False]
    assert CircleZone("c", 5, 5, 5).contains(xy).tolist() == [False, True, False, False, False]
    tri = PolygonZone("t", [(0, 0), (10, 0), (0, 10)])
    assert tri.contains(np.array([[1.0, 1.0], [9.0, 9.0], [np.nan, np.nan]])).tolist() == [
        True,
        False,
        False,
    ]


def test_polygon_square_matches_rect_on_random_points() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(-5, 15, size=(500, 2))
    sq = PolygonZone("p", [(0, 0), (10, 0), (10, 10), (0, 10)])
    inside = RectZone("r", 0, 10, 0, 10).contains(xy)
    away = (np.abs(xy) > 1e-6).all(1) & (np.abs(xy - 10) > 1e-6).all(1)
    np.testing.assert_array_equal(sq.contains(xy)[away], inside[away])


def test_zone_from_config_shapes_and_errors() -> None:
    assert zone_from_config({"name": "a", "shape": "circle", "cx": 1, "cy": 2, "r": 3}) == (
        CircleZone("a", 1, 2, 3)
    )
    z = zone_from_config({"name": "p", "shape": "polygon", "vertices": [[0, 0], [1, 0], [0, 1]]})
    assert isinstance(z, PolygonZone)
    with pytest.raises(ValueError, match="shape"):
        zone_from_config({"name": "a", "shape": "hexagon"})
    with pytest.raises(ValueError, match="missing"):
        zone_from_config({"name": "a", "shape": "rect", "x_min": 0})


def test_rule_labels_priority_and_missing() -> None:
    lab = RuleLabeler(PORTS, speed_smoothing=1)
    assert lab.label_names == ("left_port", "centre_port", "locomotion", "rest", "other")
    out = _scenario()
    labelled = lab.label(out)
    y = labelled.labels
    names = np.array(lab.label_names + ("-",))[y]
    assert (names[0:10] == "left_port").all()
    assert (names[11:20] == "locomotion").all()  # frame 10 is the step 9 -> 10 (zero)
    assert (names[21:30] == "rest").all()
    assert (names[31:40] == "other").all()
    assert y[40] == -1  # head missing: zone undecidable
    assert names[41] == "centre_port"  # zone decides before the missing speed is needed
    assert y[42] == -1  # head outside zones, body missing
    assert (names[44:] == "other").all()
    assert labelled.label_names == lab.label_names and out.labels is None


def test_custom_priority_changes_winner_but_not_names() -> None:
    t = 10
    head = np.tile([160.0, 30.0], (t, 1))
    body = np.stack([np.arange(t) * 10.0, np.full(t, 200.0)], 1)  # 300 px/s
    s = _session(head, body)
    default = RuleLabeler(PORTS, speed_smoothing=1).label(s).labels
    lab = RuleLabeler(
        PORTS, speed_smoothing=1, priority=["locomotion", "left_port", "centre_port", "rest"]
    )
    assert lab.label_names == ("left_port", "centre_port", "locomotion", "rest", "other")
    assert (default == 0).all() and (lab.label(s).labels == 2).all()
    with pytest.raises(ValueError, match="missing"):
        RuleLabeler(PORTS, priority=["locomotion"])


def test_speed_px_per_s_and_centred_smoothing() -> None:
    t = 21
    xy = np.stack([np.arange(t) * 3.0, np.zeros(t)], 1)
    np.testing.assert_allclose(moving_speed(xy, fps=30, smoothing=5), 90.0)
    # one jump of 50 px between frame 9 and 10: raw speed spike at frame 10 only
    xy = np.zeros((t, 2))
    xy[10:, 0] = 50.0
    raw = moving_speed(xy, fps=10, smoothing=1)
    assert raw[10] == pytest.approx(500.0) and raw[[9, 11]].tolist() == [0, 0]
    sm = moving_speed(xy, fps=10, smoothing=5)
    np.testing.assert_allclose(sm[8:13], 100.0)  # centred: frames 8..12 see it
    assert sm[7] == 0 and sm[13] == 0
    xy[5] = np.nan
    assert np.isnan(moving_speed(xy, 10, 5)[5]) and np.isfinite(moving_speed(xy, 10, 5)[6])


def test_session_fps_used_when_known() -> None:
    t = 10
    head = np.tile([600.0, 400.0], (t, 1))
    body = np.stack([np.arange(t) * 2.0, np.zeros(t)], 1)  # 2 px/frame
    lab = RuleLabeler(PORTS, speed_smoothing=1, fps=30)
    assert (lab.label(_session(head, body)).labels == 4).all()  # 60 px/s -> other
    assert (lab.label(_session(head, body, fps=100.0)).labels == 2).all()  # 200 px/s


def test_unknown_bodypart_names_session_and_parts() -> None:
    s = _scenario()
    with pytest.raises(DataFormatError) as e:
        RuleLabeler(PORTS, zone_bodypart="snout").label(s)
    msg = str(e.value)
    assert "m01_day1" in msg and "snout" in msg and "body_centre" in msg


def _labels_group(option: str) -> dict:
    """The ``labels`` group of ``labels=option`` as Hydra composes it (the YAML over its
    schema's defaults)."""
    from omegaconf import OmegaConf

    from dbm_lightning.cli.config import compose_config

    return OmegaConf.to_container(compose_config([f"labels={option}"])["labels"])


def test_operant_box_yaml() -> None:
    cfg = _labels_group("operant_box")
    lab = build_labeler(cfg)
    assert isinstance(lab, RuleLabeler)
    assert lab.label_names == (
        "left_port",
        "centre_port",
        "right_port",
        "locomotion",
        "rest",
        "other",
    )
    assert lab.zones[2] == CircleZone("right_port", 480, 30, 55)
    assert (lab.zone_bodypart, lab.speed_bodypart, lab.fps) == ("head", "body_centre", 30.0)
    assert (lab.locomotion_speed, lab.rest_speed) == (150.0, 20.0)
    assert RuleLabeler.from_config(cfg).label_names == lab.label_names
    y = lab.label(_scenario()).labels
    assert y.shape == (50,) and y[0] == 0


def test_build_labeler_kinds() -> None:
    assert isinstance(build_labeler(_labels_group("embedded")), EmbeddedLabeler)
    fl = build_labeler(_labels_group("from_files"))
    assert isinstance(fl, FileLabeler) and fl.pattern == "{stem}.labels.*"
    with pytest.raises(ValueError, match="kind"):
        build_labeler({"kind": "magic"})


def test_file_labeler_paths_and_missing_file(tmp_path: Path) -> None:
    src = tmp_path / "m01_day1DLC_resnet50_boxJan1shuffle1_1000.csv"
    s = _session(np.zeros((5, 2)), np.zeros((5, 2)), source=src, name="m01_day1")
    assert FileLabeler().path_for(s) == tmp_path / f"{src.stem}.labels.*"  # none found yet
    (tmp_path / f"{src.stem}.labels.txt").write_text("x")
    assert FileLabeler().path_for(s) == tmp_path / f"{src.stem}.labels.txt"
    (tmp_path / f"{src.stem}.labels.csv").write_text("x")
    with pytest.raises(DataFormatError, match="matches 2 files"):
        FileLabeler().path_for(s)
    packed = s.with_pose(s.pose)
    packed.source = tmp_path / "m01_day1DLC_resnet50_boxJan1shuffle1_1000.csv.xz"
    assert FileLabeler("{stem}.labels.csv").path_for(packed) == tmp_path / f"{src.stem}.labels.csv"
    assert FileLabeler("../ann/{base}_annot.txt").path_for(packed) == (
        tmp_path / ".." / "ann" / "m01_day1_annot.txt"
    )
    assert FileLabeler("{name}.csv").path_for(s) == tmp_path / "m01_day1.csv"
    assert FileLabeler("lab/{base}.txt").path_for(s) == tmp_path / "lab" / "m01_day1.txt"
    with pytest.raises(DataFormatError) as e:
        FileLabeler("{name}.labels.csv").label(s)
    assert str(tmp_path / "m01_day1.labels.csv") in str(e.value)
    with pytest.raises(DataFormatError, match="no source"):
        FileLabeler().label(_session(np.zeros((5, 2)), np.zeros((5, 2))))
    with pytest.raises(ValueError, match="placeholder"):
        FileLabeler("{nope}.csv").path_for(s)


def test_file_labeler_reads_a_caltech_file_by_wildcard(tmp_path: Path) -> None:
    src = tmp_path / "x.csv.xz"
    (tmp_path / "x.labels.txt").write_text(
        "Caltech Behavior Annotator - Annotation File\n\nConfiguration file:\nbase\tz\n"
        "Social\ts\n\nS1:\tstart\tend\ttype\n-----\n\t1\t2\tbase\n\t3\t5\tSocial\n"
    )
    s = _session(np.zeros((5, 2)), np.zeros((5, 2)), source=src)
    out = FileLabeler(ignore=("base",)).label(s)
    assert out.labels.tolist() == [-1, -1, 0, 0, 0] and out.label_names == ("social",)
    with pytest.raises(ValueError, match="labels.format must be auto or one of"):
        FileLabeler(format="excel")


def test_file_labeler_with_real_io(tmp_path: Path) -> None:
    io = pytest.importorskip("dbm_lightning.io")
    if not hasattr(io, "load_labels"):
        pytest.skip("dbm_lightning.io.load_labels not available yet")
    (tmp_path / "m.labels.csv").write_text("frame,label\n0,rest\n1,rest\n2,locomotion\n")
    s = _session(np.zeros((3, 2)), np.zeros((3, 2)), source=tmp_path / "m.csv")
    out = FileLabeler(label_names=("locomotion", "rest")).label(s)
    assert out.labels.tolist() == [1, 1, 0]
    assert out.label_names == ("locomotion", "rest")


def test_embedded_labeler() -> None:
    s = _session(np.zeros((3, 2)), np.zeros((3, 2)), name="trial_01")
    with pytest.raises(DataFormatError, match="trial_01"):
        EmbeddedLabeler().label(s)
    s2 = s.with_labels(np.array([0, 1, 0]), ("a", "b"))
    assert EmbeddedLabeler().label(s2) is s2
