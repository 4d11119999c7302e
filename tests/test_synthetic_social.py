"""The synthetic box's per-mouse domain shift and its two-animal (pair) sessions: default output
unchanged, shift as configured and deterministic, the multi-animal DeepLabCut layout, the
kinematics of each pair behaviour, and that one animal's own speed cannot tell them apart."""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dbm_lightning.cli.synth import main as synth_main
from dbm_lightning.data import SyntheticSource
from dbm_lightning.session import Session
from dbm_lightning.synthetic import (
    ARENA,
    BODYPARTS,
    INDIVIDUALS,
    LANDMARKS,
    PAIR_BEHAVIOURS,
    PORTS,
    SCORER,
    SHIFT_FPS,
    TRUE_BEHAVIOURS,
    SyntheticConfig,
    config_dict,
    config_key,
    generate_sessions,
    mouse_shift,
    mouse_traits,
    pair_bodyparts,
    session_data,
    write_dataset,
)

B = {name: i for i, name in enumerate(TRUE_BEHAVIOURS)}
PB = {name: i for i, name in enumerate(PAIR_BEHAVIOURS)}
P = {name: i for i, name in enumerate(BODYPARTS)}
N = len(BODYPARTS)
SHIFTED = SyntheticConfig(mice=6, days=2, frames=3000, seed=3, domain_shift=1.0)
PAIRS = SyntheticConfig(mice=3, days=2, frames=3000, seed=1, animals=2)


@pytest.fixture(scope="module")
def shifted() -> list[Session]:
    return generate_sessions(SHIFTED)


@pytest.fixture(scope="module")
def pairs() -> list[Session]:
    return generate_sessions(PAIRS)


def _speed(xy: np.ndarray, fps: float) -> np.ndarray:
    """Per-frame speed (px/s), centred 5-frame mean."""
    step = np.r_[0.0, np.hypot(*np.diff(xy, axis=0).T)] * fps
    return np.convolve(step, np.ones(5) / 5, mode="same")


def _runs(labels: np.ndarray, value: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of every run of ``value`` that neither starts nor ends the session."""
    m = np.r_[False, labels == value, False].astype(int)
    d = np.diff(m)
    runs = zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)
    return [(int(a), int(b)) for a, b in runs if a > 0 and b < len(labels)]


def _to_arena(xy: np.ndarray, shift) -> np.ndarray:
    """Image pixels -> arena pixels (the inverse camera, written out here)."""
    c, s = np.cos(shift.rotation), np.sin(shift.rotation)
    matrix = shift.camera_scale * np.array([[c, -s], [s, c]])
    centre = np.array([(ARENA[0] + ARENA[1]) / 2, (ARENA[2] + ARENA[3]) / 2])
    return (xy - centre - np.array(shift.offset)) @ np.linalg.inv(matrix).T + centre


def _best_threshold_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """Balanced accuracy of the best single threshold separating samples ``x`` from ``y``."""
    best = 0.5
    for t in np.unique(np.percentile(np.r_[x, y], np.linspace(0, 100, 201))):
        acc = (np.mean(x > t) + np.mean(y <= t)) / 2
        best = max(best, acc, 1 - acc)
    return best


# --- domain shift -------------------------------------------------------------------------------


def test_no_shift_is_the_version_1_data(tmp_path: Path) -> None:
    """domain_shift=0 (the default) writes the files of generator version 1 byte for byte
    (digest recorded before the shift and pairs existed), with the same config file and key."""
    config = SyntheticConfig(mice=2, days=1, frames=600, seed=5, domain_shift=0.0)
    assert config == SyntheticConfig(mice=2, days=1, frames=600, seed=5)
    out = write_dataset(tmp_path / "v1", config)
    digest = hashlib.sha256()
    for name in ("m01_day1.csv", "m01_day1.labels.csv", "m02_day1.csv"):
        digest.update((out / name).read_bytes())
    digest.update((out / "m02_day1.labels.csv").read_bytes())
    digest.update((out / "manifest.csv").read_bytes())
    assert digest.hexdigest() == (
        "48acb6aa57f594d48326fbce66348be4e583eae593b554506a465f8fca75d6dd"
    )
    saved = json.loads((out / "synthetic_config.json").read_text())
    assert set(saved) == {
        "generator_version",
        "mice",
        "days",
        "frames",
        "seed",
        "fps",
        "centre_start",
        "centre_end",
        "dropout_rate",
        "outlier_rate",
        "jitter_px",
    }
    assert not (out / "domain_shift.json").exists()
    assert config_key(SyntheticConfig()) == "74bfe1c863fa"
    assert config_key(SyntheticConfig(domain_shift=0.5)) != config_key(SyntheticConfig())
    assert mouse_shift(0, 3, 0.0).is_identity


def test_shift_scales_body_length_in_pixels(shifted: list[Session]) -> None:
    """Head-to-tail length at rest = 0.85 body lengths x body scale x camera scale."""
    lengths = []
    for s in shifted:
        mi = int(s.mouse[1:]) - 1
        shift = mouse_shift(SHIFTED.seed, mi, 1.0)
        at_rest = (s.labels == B["rest"]) & (s.likelihood > 0.9).all(axis=1)
        measured = np.median(np.hypot(*(s.pose[at_rest, P["head"]] - s.pose[at_rest, 5]).T))
        body = mouse_traits(SHIFTED.seed, mi).body_length
        expected = 0.85 * body * shift.body_scale * shift.camera_scale
        assert measured == pytest.approx(expected, rel=0.05), s.name
        lengths.append(measured)
    assert max(lengths) > 1.5 * min(lengths)  # the mice really differ


def test_shift_moves_the_whole_arena(shifted: list[Session]) -> None:
    """Every point lies in the mouse's own (scaled, rotated, offset) arena, the ports move with
    it, and the arena's extent in pixels differs between mice."""
    extents = set()
    for s in shifted:
        shift = mouse_shift(SHIFTED.seed, int(s.mouse[1:]) - 1, 1.0)
        corners = shift.arena_corners()
        assert corners.min() >= 0.0
        recorded = s.extra["domain_shift"]
        np.testing.assert_allclose(recorded["arena_corners_px"], corners, atol=1e-3)
        back = _to_arena(s.pose.reshape(-1, 2).astype(np.float64), shift)
        assert back[:, 0].min() > ARENA[0] - 0.01 and back[:, 0].max() < ARENA[1] + 0.01
        assert back[:, 1].min() > ARENA[2] - 0.01 and back[:, 1].max() < ARENA[3] + 0.01
        good = (s.likelihood > 0.9).all(axis=1)
        for port, (px, py) in shift.ports().items():
            at = good & (s.labels == B[port])
            if at.sum() > 10:
                head = s.pose[at, P["head"]]
                near = np.percentile(np.hypot(head[:, 0] - px, head[:, 1] - py), 95)
                assert near < 40 * shift.camera_scale, (s.name, port)
                assert np.hypot(*(shift.ports()[port] - np.array(PORTS[port]))) > 40
        extents.add(tuple(np.ptp(corners, axis=0).round()))
    assert len(extents) == SHIFTED.mice


def test_shift_frame_rate_keeps_seconds(shifted: list[Session], tmp_path: Path) -> None:
    """Each mouse has one of the frame rates; bouts last as long and walks are as fast in
    seconds (arena px), so frames per bout scale with the rate; the manifest records it."""
    rates = {s.mouse: s.fps for s in shifted}
    assert set(rates.values()) <= set(SHIFT_FPS) and len(set(rates.values())) >= 3
    bout_frames = {}
    for mouse in rates:
        mine = [s for s in shifted if s.mouse == mouse]
        shift = mouse_shift(SHIFTED.seed, int(mouse[1:]) - 1, 1.0)
        seconds = [
            (b - a) / s.fps
            for s in mine
            for name in ("rest", "grooming", "rearing")
            for a, b in _runs(s.labels, B[name])
        ]
        assert 1.2 < np.median(seconds) < 2.8, (mouse, np.median(seconds))
        bout_frames[rates[mouse]] = np.median(seconds) * rates[mouse]
        speed = np.concatenate(
            [
                _speed(s.pose[:, P["body_centre"]], s.fps)[
                    (s.labels == B["locomotion"]) & (s.likelihood > 0.9).all(axis=1)
                ]
                for s in mine
            ]
        )
        assert 150 < np.median(speed) / shift.camera_scale < 350, (mouse, np.median(speed))
    slow, fast = min(bout_frames), max(bout_frames)
    assert bout_frames[fast] > 0.6 * (fast / slow) * bout_frames[slow]  # frames per bout
    out = write_dataset(tmp_path / "shift", replace(SHIFTED, days=1, frames=200))
    manifest = pd.read_csv(out / "manifest.csv")
    assert list(manifest.columns) == ["path", "mouse", "day", "condition", "fps"]
    assert manifest["fps"].dtype == np.float64
    assert dict(zip(manifest["mouse"], manifest["fps"], strict=True)) == rates
    recorded = json.loads((out / "domain_shift.json").read_text())
    assert {m: r["fps"] for m, r in recorded.items()} == rates


def test_shift_is_deterministic_and_scales_with_strength(tmp_path: Path) -> None:
    config = SyntheticConfig(mice=2, days=1, frames=400, seed=9, domain_shift=0.7)
    one, two = write_dataset(tmp_path / "1", config), write_dataset(tmp_path / "2", config)
    for name in sorted(p.name for p in one.iterdir()):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    assert mouse_shift(9, 0, 1.0) != mouse_shift(10, 0, 1.0) != mouse_shift(9, 1, 1.0)
    full, half = mouse_shift(4, 2, 1.0), mouse_shift(4, 2, 0.5)
    assert np.log(half.camera_scale) == pytest.approx(0.5 * np.log(full.camera_scale))
    assert np.log(half.body_scale) == pytest.approx(0.5 * np.log(full.body_scale))
    assert half.rotation == pytest.approx(0.5 * full.rotation)
    # a shifted session is not the unshifted one
    plain = session_data(SyntheticConfig(mice=2, days=1, frames=400, seed=9), 0, 1)
    assert not np.array_equal(session_data(config, 0, 1).pose, plain.pose)


def test_config_and_source_validation() -> None:
    for bad in ({"domain_shift": 1.5}, {"domain_shift": -0.1}, {"animals": 3}, {"swap_rate": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SyntheticConfig(**bad)
    with pytest.raises(ValueError, match="swap_rate"):
        SyntheticConfig(animals=2, swap_rate=-1.0)
    with pytest.raises(ValueError, match="domain_shift"):
        SyntheticSource(domain_shift=2.0)
    with pytest.raises(ValueError, match="animals"):
        SyntheticSource(animals=3)
    config = SyntheticSource(animals=2, domain_shift=0.5).config()
    assert (config.animals, config.domain_shift) == (2, 0.5)


def test_landmarks_are_the_ports_where_each_camera_puts_them(tmp_path: Path) -> None:
    """landmarks=True: the three ports tracked after the body parts, at each camera's port
    positions with a little jitter; the animal's own points are the session without them."""
    config = replace(SHIFTED, mice=2, days=1, frames=600, landmarks=True)
    data = session_data(config, 1, 1)
    assert data.bodyparts == BODYPARTS + LANDMARKS
    assert data.pose.shape == (600, N + 3, 2) and data.likelihood.shape == (600, N + 3)
    plain = session_data(replace(config, landmarks=False), 1, 1)
    assert np.array_equal(data.pose[:, :N], plain.pose)
    ports = data.shift.ports()
    for i, name in enumerate(LANDMARKS):
        track = data.pose[:, N + i]
        assert np.allclose(np.median(track, axis=0), ports[name], atol=1.0), name
        assert 0 < track.std(axis=0).max() < 3.0 * data.shift.noise_scale
    assert config_key(replace(config, landmarks=False)) != config_key(config)
    assert "landmarks" not in config_dict(SyntheticConfig())  # the default files are unchanged
    with pytest.raises(ValueError, match="landmarks"):
        SyntheticConfig(animals=2, landmarks=True)
    assert (
        synth_main(
            [
                "--out",
                str(tmp_path / "lm"),
                "--mice",
                "1",
                "--days",
                "1",
                "--frames",
                "50",
                "--landmarks",
            ]
        )
        == 0
    )
    header = (tmp_path / "lm" / "m01_day1.csv").read_text().splitlines()[1].split(",")
    assert header[-3:] == ["right_port"] * 3 and "left_port" in header
    source = SyntheticSource(mice=1, days=1, frames=50, landmarks=True)
    assert source.config().landmarks


# --- pairs: layout and files ----------------------------------------------------------------------


def test_pair_sessions_follow_the_multi_animal_convention(pairs: list[Session]) -> None:
    assert [s.name for s in pairs[:2]] == ["p01_day1", "p01_day2"]
    for s in pairs:
        assert s.pose.shape == (PAIRS.frames, 2 * N, 2) and s.likelihood.shape == (PAIRS.frames, 12)
        assert s.bodyparts == tuple(f"{i}/{p}" for i in INDIVIDUALS for p in BODYPARTS)
        assert s.bodyparts == pair_bodyparts()
        assert s.label_names == PAIR_BEHAVIOURS and s.mouse == s.name[:3]
        assert s.extra["individuals"] == ["a", "b"] and s.fps == 30.0
        assert np.isfinite(s.pose).all()
    counts = np.bincount(np.concatenate([s.labels for s in pairs]), minlength=4)
    assert (counts / counts.sum() > 0.08).all(), counts
    again = generate_sessions(SyntheticConfig(mice=1, days=1, frames=3000, seed=1, animals=2))
    np.testing.assert_array_equal(again[0].pose, pairs[0].pose)  # independent of the size


def test_pair_csv_is_multi_animal_deeplabcut(tmp_path: Path) -> None:
    config = SyntheticConfig(mice=2, days=1, frames=300, seed=0, animals=2)
    out = write_dataset(tmp_path / "pairs", config)
    with open(out / "p02_day1.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert [r[0] for r in rows[:4]] == ["scorer", "individuals", "bodyparts", "coords"]
    assert all(len(r) == 1 + 2 * N * 3 for r in rows)
    assert rows[0][1:] == [SCORER] * (2 * N * 3)
    assert rows[1][1:] == ["a"] * (3 * N) + ["b"] * (3 * N)
    assert rows[2][1:] == [p for _ in INDIVIDUALS for p in BODYPARTS for _ in range(3)]
    assert rows[3][1:] == ["x", "y", "likelihood"] * (2 * N)
    values = np.array(rows[4:], dtype=float)
    assert values.shape == (300, 37)
    np.testing.assert_array_equal(values[:, 0], np.arange(300))
    data = session_data(config, 1, 1)
    np.testing.assert_allclose(values[:, 1::3], data.pose[..., 0], atol=6e-4)
    np.testing.assert_allclose(values[:, 2::3], data.pose[..., 1], atol=6e-4)
    np.testing.assert_allclose(values[:, 3::3], data.likelihood, atol=6e-5)
    labels = pd.read_csv(out / "p02_day1.labels.csv")
    assert list(labels.columns) == ["frame", "label"]
    assert labels["label"].tolist() == [PAIR_BEHAVIOURS[i] for i in data.labels]
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["path"].tolist() == ["p01_day1.csv", "p02_day1.csv"]
    assert manifest["fps"].tolist() == [30.0, 30.0]
    assert json.loads((out / "synthetic_config.json").read_text())["animals"] == 2


# --- pairs: kinematics --------------------------------------------------------------------------


class _Pairwise:
    """Per-frame pair measures of the sessions, concatenated, on well-tracked frames."""

    def __init__(self, sessions: list[Session]):
        cols: dict[str, list[np.ndarray]] = {}

        def add(name: str, v: np.ndarray) -> None:
            cols.setdefault(name, []).append(v)

        for s in sessions:
            pose = s.pose.reshape(s.n_frames, 2, N, 2).astype(np.float64)
            ca, cb = pose[:, 0, P["body_centre"]], pose[:, 1, P["body_centre"]]
            dist = np.hypot(*(ca - cb).T)
            add("label", s.labels)
            add("good", (s.likelihood > 0.9).all(axis=1))
            add("dist", dist)
            add("ddist", np.convolve(np.gradient(dist), np.ones(5) / 5, mode="same") * s.fps)
            add("speed_a", _speed(ca, s.fps))
            add("speed_b", _speed(cb, s.fps))
            nose = [
                np.hypot(*(pose[:, i, P["nose"]][:, None] - pose[:, 1 - i]).transpose(2, 0, 1))
                for i in (0, 1)
            ]
            add("nose", np.minimum(nose[0].min(axis=1), nose[1].min(axis=1)))
            heads = []
            for i in (0, 1):  # cosine between an animal's body axis and the way to the other
                axis = pose[:, i, P["head"]] - pose[:, i, P["tail_base"]]
                to = pose[:, 1 - i, P["body_centre"]] - pose[:, i, P["body_centre"]]
                n = np.linalg.norm(axis, axis=1) * np.linalg.norm(to, axis=1)
                heads.append((axis * to).sum(axis=1) / np.maximum(n, 1e-9))
            add("follower_cos", np.maximum(*heads))
            add("leader_cos", np.minimum(*heads))
        self.cols = {k: np.concatenate(v) for k, v in cols.items()}

    def of(self, name: str, behaviour: str) -> np.ndarray:
        c = self.cols
        return c[name][c["good"] & (c["label"] == PB[behaviour])]


@pytest.fixture(scope="module")
def pairwise(pairs: list[Session]) -> _Pairwise:
    return _Pairwise(pairs)


def test_approach_closes_the_distance(pairs: list[Session], pairwise: _Pairwise) -> None:
    assert np.median(pairwise.of("ddist", "approach")) < -120  # px/s
    n = 0
    for s in pairs:
        centres = [P["body_centre"], N + P["body_centre"]]
        c = s.pose[:, centres].astype(np.float64)
        dist = np.hypot(*(c[:, 0] - c[:, 1]).T)
        good = (s.likelihood[:, centres] > 0.9).all(axis=1)
        for a, b in _runs(s.labels, PB["approach"]):
            if good[a : a + 3].all() and good[b - 3 : b].all():  # not dropouts' garbage
                start, end = np.median(dist[a : a + 3]), np.median(dist[b - 3 : b])
                assert end < 0.75 * start, (s.name, a, start, end)
                n += 1
    assert n > 20


def test_contact_is_still_and_nose_close(pairwise: _Pairwise) -> None:
    assert np.percentile(pairwise.of("nose", "contact"), 90) < 30  # px, body length ~ 90
    assert np.median(pairwise.of("speed_a", "contact")) < 20
    assert np.median(pairwise.of("speed_b", "contact")) < 20
    assert np.median(pairwise.of("nose", "apart")) > 8 * np.median(pairwise.of("nose", "contact"))


def test_follow_walks_behind_heading_at_the_leader(pairwise: _Pairwise) -> None:
    dist = pairwise.of("dist", "follow")
    assert np.percentile(dist, 90) < 1.5 * 90 and np.median(dist) > 60
    assert np.median(pairwise.of("speed_a", "follow")) > 120
    assert np.median(pairwise.of("speed_b", "follow")) > 120
    assert np.median(pairwise.of("follower_cos", "follow")) > 0.9  # looks at the leader
    assert np.median(pairwise.of("leader_cos", "follow")) < -0.7  # the leader faces away
    assert abs(np.median(pairwise.of("ddist", "follow"))) < 20  # the distance holds


def test_apart_keeps_the_distance(pairwise: _Pairwise) -> None:
    apart = pairwise.of("dist", "apart")
    assert np.median(apart) > 2.5 * 90
    assert np.median(apart) > 2.5 * np.percentile(pairwise.of("dist", "contact"), 95)


def test_one_animals_speed_cannot_separate_the_pair_behaviours(pairwise: _Pairwise) -> None:
    """Approach vs apart, contact vs apart: either animal's own speed distributions overlap
    (no threshold separates them well; walks are as fast in each), while the pair's distance
    (or its rate of change) does."""
    for one, other, pair_measure in (("approach", "apart", "ddist"), ("contact", "apart", "dist")):
        for animal in ("speed_a", "speed_b"):
            own = _best_threshold_accuracy(pairwise.of(animal, one), pairwise.of(animal, other))
            assert own < (0.7 if one == "approach" else 0.72), (one, other, animal, own)
        social = _best_threshold_accuracy(
            pairwise.of(pair_measure, one), pairwise.of(pair_measure, other)
        )
        assert social > 0.85, (one, other, pair_measure, social)
    for animal in ("speed_a", "speed_b"):
        walks = [pairwise.of(animal, name) for name in ("approach", "apart", "follow")]
        medians = [np.median(w[w > 60]) for w in walks]
        assert max(medians) < 1.2 * min(medians), (animal, medians)


def test_identity_swaps_exchange_the_animals() -> None:
    plain = generate_sessions(SyntheticConfig(mice=1, days=1, frames=3000, seed=4, animals=2))[0]
    swapped = generate_sessions(
        SyntheticConfig(mice=1, days=1, frames=3000, seed=4, animals=2, swap_rate=5.0)
    )[0]
    np.testing.assert_array_equal(plain.labels, swapped.labels)
    differ = (plain.pose != swapped.pose).any(axis=(1, 2))
    assert 0 < differ.mean() < 0.2
    np.testing.assert_array_equal(swapped.pose[differ, :N], plain.pose[differ, N:])
    np.testing.assert_array_equal(swapped.pose[differ, N:], plain.pose[differ, :N])
    np.testing.assert_array_equal(swapped.likelihood[differ, :N], plain.likelihood[differ, N:])


def test_pair_domain_shift(tmp_path: Path) -> None:
    config = SyntheticConfig(mice=3, days=1, frames=1500, seed=3, animals=2, domain_shift=1.0)
    for s in generate_sessions(config):
        shift = mouse_shift(config.seed, int(s.mouse[1:]) - 1, 1.0)
        assert s.fps == (shift.fps or 30.0)
        pose = s.pose.reshape(s.n_frames, 2, N, 2)
        good = (s.likelihood > 0.9).all(axis=1) & (s.labels == PB["contact"])
        for i in (0, 1):
            body = mouse_traits(config.seed, int(s.mouse[1:]) - 1, individual=i).body_length
            length = np.median(np.hypot(*(pose[good, i, 0] - pose[good, i, 5]).T))
            expected = 0.85 * body * shift.body_scale * shift.camera_scale
            assert length == pytest.approx(expected, rel=0.08), (s.name, i)
        back = _to_arena(s.pose.reshape(-1, 2).astype(np.float64), shift)
        assert back.min() > -0.01 and back[:, 0].max() < ARENA[1] + 0.01


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_writes_pairs_and_shift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pairs"
    rc = synth_main(
        [
            "--out",
            str(out),
            "--animals",
            "2",
            "--mice",
            "2",
            "--days",
            "1",
            "--frames",
            "300",
            "--domain-shift",
            "1",
            "--swap-rate",
            "2",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "wrote 2 sessions (2 pairs" in printed and "multi-animal" in printed
    assert "domain_shift.json" in printed and "fps" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "domain_shift.json",
        "manifest.csv",
        "p01_day1.csv",
        "p01_day1.labels.csv",
        "p02_day1.csv",
        "p02_day1.labels.csv",
        "synthetic_config.json",
    ]
    with open(out / "p01_day1.csv") as fh:
        assert [next(fh).split(",")[0] for _ in range(5)] == [
            "scorer",
            "individuals",
            "bodyparts",
            "coords",
            "0",
        ]
    saved = json.loads((out / "synthetic_config.json").read_text())
    assert (saved["animals"], saved["domain_shift"], saved["swap_rate"]) == (2, 1.0, 2.0)
    for bad in (["--animals", "3"], ["--domain-shift", "2"], ["--swap-rate", "1"]):
        with pytest.raises(SystemExit):
            synth_main(["--out", str(tmp_path / "bad"), *bad])
