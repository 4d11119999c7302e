"""Egocentric, heading and speed features (`dbm_lightning.features`), their names, their
defaults (old configs unchanged) and their round trip through the data module's pipeline state."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from helpers import ListSource, StepLabeler, walk_session

from dbm_lightning.data import DBMDataModule, SplitConfig, prepare_session
from dbm_lightning.features import (
    FeatureConfig,
    compute_features,
    dbm_distance_features,
    ego_scale,
    feature_names,
    positional_encoding,
)
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig, scale_pose

ARENA = ArenaBounds(0.0, 200.0, 0.0, 100.0)  # isotropic scale 2 / 200 = 0.01 per pixel
EGO_ALL = FeatureConfig(egocentric=True, heading=True, speed=True)


def features(pose, config, fps=30.0, parts=None, arena=ARENA):
    return compute_features(pose, scale_pose(pose, arena), config, fps, parts, arena)


def rotate(pose: np.ndarray, angle: float, shift=(0.0, 0.0)) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return pose @ rot.T + np.asarray(shift)


def test_ego_scale_is_isotropic_from_the_longer_side() -> None:
    assert ego_scale(ARENA) == pytest.approx(0.01)
    assert ego_scale(ArenaBounds(0, 50, -100, 300)) == pytest.approx(2 / 400)


def test_egocentric_of_a_hand_made_pose() -> None:
    """Body axis at angle phi: centre -> (0, 0), front part on +x, perpendicular part on +y."""
    parts = ("nose", "centre", "tail", "ear")
    t = 5
    phi = np.linspace(0.3, 2.9, t)  # a different heading per frame
    u = np.stack([np.cos(phi), np.sin(phi)], axis=1)  # body axis (T, 2)
    n = np.stack([-np.sin(phi), np.cos(phi)], axis=1)  # +90 degrees from the axis
    c = np.array([100.0, 50.0]) + np.arange(t)[:, None] * [3.0, -1.0]
    pose = np.stack([c + 10 * u, c, c - 20 * u, c + 5 * n], axis=1)
    cfg = FeatureConfig(distances=False, egocentric=True, ego_centre="centre", ego_front="nose")
    X = features(pose, cfg, parts=parts)
    assert X.shape == (t, 8)
    ego = X.reshape(t, 4, 2)
    np.testing.assert_allclose(ego[:, 0], np.tile([0.10, 0.0], (t, 1)), atol=1e-6)  # nose
    np.testing.assert_allclose(ego[:, 1], 0.0, atol=1e-7)  # the centre part sits at 0
    np.testing.assert_allclose(ego[:, 2], np.tile([-0.20, 0.0], (t, 1)), atol=1e-6)  # tail
    np.testing.assert_allclose(ego[:, 3], np.tile([0.0, 0.05], (t, 1)), atol=1e-6)  # ear
    # default centre = centroid: the parts' egocentric coordinates average to 0, and the
    # default front part (the first: nose) lies on the +x axis
    X = features(pose, FeatureConfig(distances=False, egocentric=True), parts=parts)
    ego = X.reshape(t, 4, 2)
    np.testing.assert_allclose(ego.mean(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(ego[:, 0, 1], 0.0, atol=1e-6)
    assert (ego[:, 0, 0] > 0).all()


def test_egocentric_distances_turn_and_speed_invariant_to_rotation_and_translation() -> None:
    rng = np.random.default_rng(0)
    pose = 100 + rng.normal(0, 20, (30, 5, 2)).cumsum(axis=0) * 0.2
    cfg = FeatureConfig(distances=True, coordinates=True, egocentric=True, heading=True, speed=True)
    names = feature_names([f"p{i}" for i in range(5)], cfg)
    invariant = [i for i, n in enumerate(names) if not n.startswith(("heading_", "p"))]
    assert len(invariant) == 10 + 25 + 10 + 1 + 1  # distances, ego, turn rate, speed
    X = features(pose, cfg)
    for angle, shift in [(0.7, (5.0, -3.0)), (-2.5, (40.0, 12.0)), (np.pi, (0.0, 0.0))]:
        Y = features(rotate(pose, angle, shift), cfg)
        np.testing.assert_allclose(Y[:, invariant], X[:, invariant], rtol=1e-4, atol=1e-4)
        # the heading turns with the pose
        ang = np.arctan2(X[:, names.index("heading_sin")], X[:, names.index("heading_cos")])
        ang2 = np.arctan2(Y[:, names.index("heading_sin")], Y[:, names.index("heading_cos")])
        np.testing.assert_allclose(np.angle(np.exp(1j * (ang2 - ang - angle))), 0, atol=1e-5)


def test_heading_and_speed_of_a_known_trajectory() -> None:
    """Centre moving at (3, 4) px/frame, body axis turning by 0.1 rad per frame."""
    t, fps = 12, 25.0
    theta = 3.0 + 0.1 * np.arange(t)  # crosses +-pi: the turning rate stays 0.1 rad/frame
    c = np.array([50.0, 50.0]) + np.arange(t)[:, None] * [3.0, 4.0]
    front = c + 8 * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    pose = np.stack([front, c], axis=1)
    cfg = FeatureConfig(distances=False, heading=True, speed=True, ego_centre="c")
    X = features(pose, cfg, fps=fps, parts=("f", "c"))
    assert feature_names(("f", "c"), cfg) == ["heading_sin", "heading_cos", "turn_rate", "speed"]
    np.testing.assert_allclose(X[:, 0], np.sin(theta), atol=1e-6)
    np.testing.assert_allclose(X[:, 1], np.cos(theta), atol=1e-6)
    np.testing.assert_allclose(X[:, 2], 0.1 * fps, rtol=1e-5)  # last frame repeats
    np.testing.assert_allclose(X[:, 3], 5.0 * 0.01 * fps, rtol=1e-5)
    # one frame: no motion
    one = features(pose[:1], cfg, fps=fps, parts=("f", "c"))
    assert one[0, 2] == 0.0 and one[0, 3] == 0.0


@pytest.mark.parametrize(
    "cfg",
    [
        FeatureConfig(),
        EGO_ALL,
        FeatureConfig(distances=False, egocentric=True),
        FeatureConfig(distances=False, heading=True),
        FeatureConfig(distances=False, speed=True, ego_centre="c"),
        FeatureConfig(coordinates=True, velocity=True, pe_L=2, egocentric=True, heading=True),
        FeatureConfig(True, True, True, 3, True, True, True, "b", "c"),
    ],
)
def test_feature_names_match_columns_in_block_order(cfg: FeatureConfig) -> None:
    parts = ("a", "b", "c")
    pose = np.random.default_rng(1).normal(100, 10, (7, 3, 2))
    names = feature_names(parts, cfg)
    X = features(pose, cfg, parts=parts)
    assert X.shape == (7, len(names)) and len(set(names)) == len(names)
    # new blocks come after the old ones, in the documented order
    order = [
        next((i for i, n in enumerate(names) if n.startswith(prefix)), None)
        for prefix in ("dist_", "a_x", "a_vx", "pe_", "ego_", "heading_", "speed")
    ]
    present = [i for i in order if i is not None]
    assert present == sorted(present)


def test_unknown_part_names_are_named_with_the_available_ones() -> None:
    parts = ("nose", "body", "tail")
    pose = np.zeros((3, 3, 2))
    for cfg, bad in [
        (replace(EGO_ALL, ego_front="snout"), "snout"),
        (replace(EGO_ALL, ego_centre="centre"), "centre"),
    ]:
        for call in (
            lambda cfg=cfg: feature_names(parts, cfg),
            lambda cfg=cfg: features(pose, cfg, parts=parts),
        ):
            with pytest.raises(ValueError, match=rf"unknown body part '{bad}'.*nose.*body.*tail"):
                call()
    with pytest.raises(ValueError, match="body part names"):
        features(pose, replace(EGO_ALL, ego_front="tail"))  # names given, but no bodyparts
    with pytest.raises(ValueError, match="two different points"):
        FeatureConfig(egocentric=True, ego_centre="nose", ego_front="nose")
    with pytest.raises(ValueError, match="arena"):
        compute_features(pose, pose, EGO_ALL, 30.0, parts)


def test_defaults_unchanged_bit_for_bit() -> None:
    """An old config (no new key) gives exactly the old blocks, with or without the new
    arguments; an old pipeline state's features dict still loads."""
    rng = np.random.default_rng(2)
    pose = rng.normal(300, 40, (50, 6, 2))
    pose[7, 2] = np.nan
    scaled = scale_pose(pose, ARENA)
    old = {"distances": True, "coordinates": True, "velocity": True, "pe_L": 2}
    cfg = FeatureConfig(**old)
    assert not cfg.uses_body_axis
    expected = np.concatenate(
        [
            dbm_distance_features(pose),
            scaled.reshape(50, 12),
            np.concatenate([np.diff(scaled, axis=0), np.diff(scaled, axis=0)[-1:]]).reshape(50, 12)
            * np.float32(30.0),
            positional_encoding(scaled, 2).reshape(50, -1),
        ],
        axis=1,
    ).astype(np.float32)
    a = compute_features(pose, scaled, cfg, 30.0)
    b = compute_features(pose, scaled, cfg, 30.0, tuple("abcdef"), ARENA)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, expected, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert feature_names(tuple("abcdef"), cfg) == feature_names(
        tuple("abcdef"), FeatureConfig(**old)
    )
    assert FeatureConfig(**old).to_dict() == {
        **old,
        "egocentric": False,
        "heading": False,
        "speed": False,
        "ego_centre": None,
        "ego_front": None,
        "social": False,
        "symmetric": False,
        "units": "arena",
        "angles": False,
        "session_zscore": False,
    }


def test_nan_pose_gives_nan_egocentric_features() -> None:
    pose = np.random.default_rng(3).normal(100, 10, (6, 3, 2))
    pose[2, 1, 0] = np.nan
    X = features(pose, EGO_ALL)
    assert np.isnan(X[2, :3]).any()  # distances with the missing part
    assert np.isnan(X[2, -10:]).all()  # every egocentric/heading/speed column of that frame
    assert np.isnan(X[1, -2:]).all()  # turning rate and speed of the frame before use frame 2
    assert np.isfinite(X[[0, 3, 4, 5]]).all()


def test_pipeline_state_reproduces_egocentric_features_for_new_sessions() -> None:
    sessions = [
        walk_session(f"m{i}_day1", 160 + 10 * i, i, f"m{i}", long_gap=True) for i in range(3)
    ]
    cfg = FeatureConfig(
        distances=True, pe_L=2, egocentric=True, heading=True, speed=True, ego_centre="body_centre"
    )
    dm = DBMDataModule(
        source=ListSource(sessions),
        labeler=StepLabeler(),
        preprocess=PreprocessConfig(likelihood_threshold=0.6, max_gap=5),
        features=cfg,
        split=SplitConfig(strategy="leave_mouse_out", val_mice=["m1"]),
        window=40,
        stride=20,
        batch_size=4,
    )
    dm.setup()
    assert dm.n_features == 51 + 6 * 2 * 2 * 2 + 12 + 3 + 1
    assert dm.feature_names[-4:] == ["heading_sin", "heading_cos", "turn_rate", "speed"]
    state = dm.pipeline_state()
    assert state["features"]["ego_centre"] == "body_centre"
    for p in dm.predict_sessions():
        raw = next(s for s in sessions if s.name == p.name)
        X, valid = prepare_session(raw, state)
        np.testing.assert_array_equal(valid, p.valid)
        np.testing.assert_allclose(X, p.features, rtol=1e-6, atol=1e-6)
    # a wrong part name stops the setup with the available names
    bad = DBMDataModule(
        source=ListSource(sessions), labeler=StepLabeler(), features=replace(cfg, ego_front="snout")
    )
    with pytest.raises(ValueError, match="unknown body part 'snout'.*body_centre"):
        bad.setup()
