"""Multi-animal sessions, the social block and the features meant to survive a new camera:
checked against hand computations and the invariances they promise."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from dbm_lightning.data.pipeline import match_individuals, raw_features, reorder_bodyparts
from dbm_lightning.features import FeatureConfig, compute_features, feature_names
from dbm_lightning.preprocess import ArenaBounds
from dbm_lightning.session import Session, animal_parts
from dbm_lightning.skeleton import BodypartMap

PARTS = ("nose", "body", "tail")
ARENA = ArenaBounds(0.0, 400.0, 0.0, 400.0)


def pair_session(t: int = 40, seed: int = 0) -> Session:
    """Two animals: ``a`` walks along +x at 3 px per frame facing +x; ``b`` is still, facing a."""
    rng = np.random.default_rng(seed)
    pose = np.zeros((t, 2, 3, 2), dtype=np.float64)
    x = 50.0 + 3.0 * np.arange(t)
    pose[:, 0, :, 0] = x[:, None] + np.array([20.0, 0.0, -20.0])  # nose ahead of the body
    pose[:, 0, :, 1] = 200.0
    pose[:, 1, :, 0] = 350.0 + np.array([-20.0, 0.0, 20.0])  # b faces -x, towards a
    pose[:, 1, :, 1] = 200.0
    pose += rng.normal(0, 1e-5, pose.shape)
    return Session(
        pose=pose.reshape(t, 6, 2),
        likelihood=np.ones((t, 6)),
        bodyparts=tuple(f"{i}/{p}" for i in ("a", "b") for p in PARTS),
        name="pair",
        individuals=("a", "b"),
        fps=10.0,
    )


def features(session: Session, **config) -> tuple[np.ndarray, list[str]]:
    cfg = FeatureConfig(**{"distances": False, "ego_centre": "body", **config})
    x = compute_features(
        session.pose, session.pose, cfg, session.fps, session.bodyparts, ARENA, session.n_animals
    )
    return x, feature_names(session.bodyparts, cfg, session.individuals)


def test_session_layout_of_several_animals() -> None:
    s = pair_session()
    assert s.parts == PARTS and s.n_animals == 2
    np.testing.assert_array_equal(s.animal_pose()[:, 1].reshape(len(s.pose), -1, 2), s.pose[:, 3:])
    with pytest.raises(ValueError, match="individual-major"):
        animal_parts(("a/nose", "b/nose", "a/tail", "b/tail"), ("a", "b"))
    with pytest.raises(ValueError, match="individual-major"):
        replace(s, individuals=("a", "c"))


def test_social_block_by_hand() -> None:
    s = pair_session()
    x, names = features(s, social=True, units="body_length")
    assert x.shape == (40, len(names)) == (40, 9 + 3 + 6)
    col = {n: x[:, i] for i, n in enumerate(names)}
    # body length: body -> nose = 20 px; centres 300 - 3 t px apart
    t = np.arange(40)
    np.testing.assert_allclose(col["a~b/centre_dist"], (300 - 3 * t) / 20, atol=1e-3)
    np.testing.assert_allclose(col["a~b/dist_a.nose~b.nose"], (260 - 3 * t) / 20, atol=1e-3)
    # a closes the gap at 3 px/frame = 30 px/s = 1.5 body lengths/s; b does not move
    np.testing.assert_allclose(col["a~b/approach_rate"], 1.5, atol=1e-3)
    np.testing.assert_allclose(col["a->b/speed_towards"], 1.5, atol=1e-3)
    np.testing.assert_allclose(col["b->a/speed_towards"], 0.0, atol=1e-3)
    np.testing.assert_allclose(col["a~b/relative_speed"], 1.5, atol=1e-3)
    # both face each other
    np.testing.assert_allclose(col["a->b/facing_cos"], 1.0, atol=1e-6)
    np.testing.assert_allclose(col["b->a/facing_cos"], 1.0, atol=1e-6)


def test_symmetric_features_do_not_change_when_identities_swap() -> None:
    s = pair_session(seed=3)
    swapped = replace(s, pose=s.animal_pose()[:, ::-1].reshape(40, 6, 2).copy())
    cfg = {"social": True, "symmetric": True, "egocentric": True, "heading": True, "speed": True}
    a, names = features(s, **cfg)
    b, _ = features(swapped, **cfg)
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert "rank1/speed" in names and "pair1/min_dist_nose~nose" in names
    plain, _ = features(s, social=True)
    plain_swapped, _ = features(swapped, social=True)
    assert not np.allclose(plain, plain_swapped, atol=1e-3)  # without the option they differ


def test_body_length_units_survive_camera_scale_rotation_and_animal_size() -> None:
    s = pair_session(seed=5)
    cfg = {"egocentric": True, "speed": True, "social": True, "angles": True}
    ref, _ = features(s, units="body_length", **cfg)
    angle = 0.7
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = replace(s, pose=(s.pose @ rot.T) * 1.7 + np.array([11.0, -4.0]))
    out, _ = features(moved, units="body_length", **cfg)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    arena_units, _ = features(moved, units="arena", **cfg)
    assert not np.allclose(arena_units, ref, atol=1e-2)


def test_segment_angles_by_hand() -> None:
    pose = np.array([[[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]])  # a right angle, turning left
    s = Session(pose=pose, likelihood=np.ones((1, 3)), bodyparts=PARTS, name="bent", fps=30.0)
    x, names = features(s, angles=True)
    assert names == ["angle_nose_body_tail_sin", "angle_nose_body_tail_cos"]
    np.testing.assert_allclose(x[0], [1.0, 0.0], atol=1e-6)


def test_session_zscore_standardises_each_session_alone() -> None:
    s = pair_session(seed=2)
    cfg = FeatureConfig(distances=False, speed=True, egocentric=True, session_zscore=True)
    x = raw_features(s, cfg, ARENA, 10.0)
    moving = x.std(axis=0) > 1e-6
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(x.std(axis=0)[moving], 1.0, atol=1e-3)


def test_social_needs_two_animals() -> None:
    single = Session(np.zeros((5, 3, 2)), np.ones((5, 3)), PARTS, "one", fps=30.0)
    with pytest.raises(ValueError, match="two or more animals"):
        features(single, social=True)


def test_bodypart_map_renames_drops_and_keeps_every_animal() -> None:
    s = pair_session()
    renamed = BodypartMap(rename={" NOSE ": "snout"}, drop=("tail",)).apply(s)
    assert renamed.bodyparts == ("a/snout", "a/body", "b/snout", "b/body")
    np.testing.assert_array_equal(renamed.pose[:, 2], s.pose[:, 3])
    kept = BodypartMap(keep=("tail", "nose")).apply(s)
    assert kept.parts == ("tail", "nose")
    np.testing.assert_array_equal(kept.pose[:, 1], s.pose[:, 0])


def test_new_recording_animals_are_matched_by_order() -> None:
    s = pair_session()
    other = replace(
        s, bodyparts=tuple(f"{i}/{p}" for i in ("rat1", "rat2") for p in PARTS),
        individuals=("rat1", "rat2"),
    )  # fmt: skip
    matched = reorder_bodyparts(match_individuals(other, ("a", "b")), s.bodyparts, ("a", "b"))
    np.testing.assert_array_equal(matched.pose, s.pose)
    assert matched.individuals == ("a", "b")


def test_pair_behaviours_train_end_to_end_without_real_data(tiny_data, tmp_path) -> None:
    """dbm-synth's two-animal data through the whole runner with the social block."""
    from dbm_lightning.cli.config import compose_config
    from dbm_lightning.training import run_training

    cfg = compose_config(
        [
            *tiny_data,
            "data.animals=2",
            "labels=from_files",
            "features=egocentric",
            "features.social=true",
            "features.symmetric=true",
            "features.ego_front=head",
            "features.ego_centre=body_centre",
            "split=heldout",
            "data.mice=3",
            "split.n_folds=3",
            "split.strategy=kfold_mouse",
            "model=bilstm",
            "trainer.max_epochs=1",
            "logger=none",
            "microstates.enabled=false",
        ]
    )
    metrics = run_training(cfg, tmp_path / "run")
    assert set(metrics["class_names"]) == {"apart", "approach", "follow", "contact"}
    # DBM distances over the 12 parts of both, ego per mouse, the social block
    assert metrics["n_features"] == 66 + 144 + 2 * (12 + 3 + 1) + 36 + 3 + 6
    assert 0.0 <= metrics["heldout"]["heldout/macro_f1"] <= 1.0
