"""Tests of the DBM distance features, positional encoding, feature blocks and z-scoring."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dbm_lightning.features import (
    FeatureConfig,
    Standardizer,
    compute_features,
    dbm_distance_features,
    feature_names,
    positional_encoding,
)

PARTS = ("head", "nose", "left_ear", "right_ear", "body_centre", "tail_base")


def _reference_dbm(pose: np.ndarray) -> np.ndarray:
    """A direct, slow transcription of dbmFormatInputs.m (X, Y as parts x frames)."""
    X, Y = pose[:, :, 0].T, pose[:, :, 1].T  # (P, T)
    p, t = X.shape
    rows = []
    for n in range(p - 1):  # within frame: X(n,:) - X(n+1:end,:)
        for m in range(n + 1, p):
            rows.append([math.hypot(X[n, k] - X[m, k], Y[n, k] - Y[m, k]) for k in range(t)])
    for n in range(p):  # X(n,2:end) - X(:,1:end-1), padded with the last column
        for m in range(p):
            r = [math.hypot(X[n, k + 1] - X[m, k], Y[n, k + 1] - Y[m, k]) for k in range(t - 1)]
            rows.append(r + [r[-1]])
    return np.array(rows).T


@pytest.mark.parametrize("p", [2, 3, 6])
def test_dbm_distances_match_reference(p: int) -> None:
    rng = np.random.default_rng(p)
    pose = rng.uniform(0, 640, size=(12, p, 2))
    out = dbm_distance_features(pose)
    assert out.shape == (12, p * (p - 1) // 2 + p * p) and out.dtype == np.float32
    np.testing.assert_allclose(out, _reference_dbm(pose), rtol=1e-5, atol=1e-3)


def test_dbm_51_columns_for_six_parts_and_names() -> None:
    cfg = FeatureConfig()
    pose = np.random.default_rng(0).normal(size=(5, 6, 2))
    assert dbm_distance_features(pose).shape == (5, 51)
    names = feature_names(PARTS, cfg)
    assert (
        len(names) == 51
        and names[0] == "dist_head_nose"
        and names[14] == ("dist_body_centre_tail_base")
    )
    assert names[15] == "step_head(t+1)_head(t)" and names[16] == "step_head(t+1)_nose(t)"


def test_dbm_distance_single_frame_and_nan_propagates() -> None:
    pose = np.array([[[0.0, 0.0], [3.0, 4.0]]])
    np.testing.assert_allclose(dbm_distance_features(pose), [[5, 0, 5, 5, 0]])
    pose = np.random.default_rng(1).normal(size=(4, 3, 2))
    pose[2, 1] = np.nan
    f = dbm_distance_features(pose)
    assert np.isnan(f[2, [0, 2]]).all() and np.isfinite(f[2, 1])  # pairs with part 1
    assert np.isnan(f[1, 3:]).any() and np.isfinite(f[0]).all()  # steps from frame 1 to 2


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 8), st.integers(2, 5), st.just(2)),
        elements=st.floats(-500, 500),
    ),
    st.floats(-1000, 1000),
    st.floats(-1000, 1000),
)
def test_distances_translation_invariant(pose: np.ndarray, dx: float, dy: float) -> None:
    a = dbm_distance_features(pose)
    b = dbm_distance_features(pose + np.array([dx, dy]))
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-2)


def test_positional_encoding_values_and_order() -> None:
    p = np.array([0.25, -0.5])
    out = positional_encoding(p, 3)
    assert out.shape == (2, 6) and out.dtype == np.float32
    for i, v in enumerate(p):
        expected = []
        for k in range(3):
            expected += [math.sin(2**k * math.pi * v), math.cos(2**k * math.pi * v)]
        np.testing.assert_allclose(out[i], expected, atol=1e-6)
    assert positional_encoding(np.zeros((4, 6, 2)), 0).shape == (4, 6, 2, 0)
    assert positional_encoding(np.zeros((4, 6, 2)), 2).shape == (4, 6, 2, 4)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, st.integers(1, 20), elements=st.floats(-50, 50)), st.integers(0, 8))
def test_positional_encoding_bounded(p: np.ndarray, L: int) -> None:
    out = positional_encoding(p, L)
    assert out.shape == (*p.shape, 2 * L)
    assert (np.abs(out) <= 1.0).all()


def test_compute_features_blocks_and_names() -> None:
    rng = np.random.default_rng(3)
    px = rng.uniform(0, 640, size=(10, 6, 2))
    sc = px / 320.0 - 1.0
    cfg = FeatureConfig(distances=True, coordinates=True, velocity=True, pe_L=2)
    f = compute_features(px, sc, cfg, fps=30.0)
    names = feature_names(PARTS, cfg)
    assert f.shape == (10, 51 + 12 + 12 + 6 * 2 * 4) == (10, len(names)) and f.dtype == np.float32
    np.testing.assert_allclose(f[:, :51], dbm_distance_features(px), rtol=1e-6)
    col = names.index("body_centre_y")
    np.testing.assert_allclose(f[:, col], sc[:, 4, 1], rtol=1e-6)
    vx = names.index("nose_vx")
    np.testing.assert_allclose(f[:9, vx], np.diff(sc[:, 1, 0]) * 30.0, rtol=1e-5, atol=1e-5)
    assert f[9, vx] == pytest.approx(f[8, vx])
    pe = names.index("pe_left_ear_y_cos1")
    np.testing.assert_allclose(f[:, pe], np.cos(2 * np.pi * sc[:, 2, 1]), atol=1e-5)
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("cfg", "width"),
    [
        (FeatureConfig(), 51),
        (FeatureConfig(distances=False, coordinates=True), 12),
        (FeatureConfig(distances=False, velocity=True), 12),
        (FeatureConfig(distances=False, pe_L=1), 24),
        (FeatureConfig(pe_L=6), 51 + 144),
    ],
)
def test_feature_widths(cfg: FeatureConfig, width: int) -> None:
    pose = np.random.default_rng(0).uniform(-1, 1, size=(4, 6, 2))
    assert compute_features(pose, pose, cfg, 30.0).shape == (4, width)
    assert len(feature_names(PARTS, cfg)) == width


def test_feature_config_validation_and_nan() -> None:
    with pytest.raises(ValueError, match="no features"):
        FeatureConfig(distances=False)
    pose = np.zeros((5, 2, 2))
    pose[3, 0, 0] = np.nan
    f = compute_features(pose, pose, FeatureConfig(coordinates=True, velocity=True, pe_L=1), 30.0)
    assert np.isnan(f[3]).any() and np.isnan(f[2]).any()  # frame 2's step/velocity uses frame 3
    assert np.isfinite(f[:2]).all()


def test_standardizer_nan_aware_zero_std_and_roundtrip() -> None:
    a = np.array([[1.0, 5.0, np.nan], [3.0, 5.0, np.nan]])
    b = np.array([[np.nan, 5.0, np.nan], [5.0, 5.0, np.nan]])
    st_ = Standardizer.fit([a, b])
    np.testing.assert_allclose(st_.mean, [3.0, 5.0, 0.0])
    np.testing.assert_allclose(st_.std, [np.sqrt(8 / 3), 1.0, 1.0])
    z = st_.transform(np.vstack([a, b]))
    assert z.dtype == np.float32 and np.isnan(z[2, 0]) and np.isnan(z[:, 2]).all()
    np.testing.assert_allclose(z[:, 1], 0.0)
    back = Standardizer.from_dict(json.loads(json.dumps(st_.to_dict())))
    np.testing.assert_array_equal(back.mean, st_.mean)
    np.testing.assert_array_equal(back.std, st_.std)
    with pytest.raises(ValueError):
        st_.transform(np.zeros((2, 4)))


def test_standardizer_matches_numpy_on_train_only() -> None:
    rng = np.random.default_rng(0)
    train = [rng.normal(2, 3, size=(100, 4)), rng.normal(2, 3, size=(50, 4))]
    test = rng.normal(100, 1, size=(30, 4))
    s = Standardizer.fit(train)
    allx = np.vstack(train)
    np.testing.assert_allclose(s.mean, allx.mean(0))
    np.testing.assert_allclose(s.std, allx.std(0))
    z = s.transform(np.vstack(train))
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    assert s.transform(test).mean() > 10  # test data not used in fitting
