"""Tests of likelihood masking, gap interpolation and arena scaling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dbm_lightning.preprocess import (
    ArenaBounds,
    GapReport,
    PreprocessConfig,
    clean_session,
    interpolate_gaps,
    scale_pose,
)
from dbm_lightning.session import Session


def _session(pose: np.ndarray, lik: np.ndarray | None = None) -> Session:
    if lik is None:
        lik = np.ones(pose.shape[:2], dtype=np.float32)
    parts = tuple(f"p{i}" for i in range(pose.shape[1]))
    return Session(pose=pose, likelihood=lik, bodyparts=parts, name="s1")


def test_interpolates_short_interior_gap_linearly() -> None:
    x = np.array([0.0, np.nan, np.nan, 3.0, 4.0])
    out, mask = interpolate_gaps(x, max_gap=2)
    np.testing.assert_allclose(out, [0, 1, 2, 3, 4])
    assert mask.tolist() == [False, True, True, False, False]


def test_long_leading_and_trailing_gaps_stay_nan() -> None:
    x = np.array([np.nan, 1.0, np.nan, np.nan, np.nan, 5.0, np.nan, 7.0, np.nan])
    out, mask = interpolate_gaps(x, max_gap=2)
    assert np.isnan(out[0]) and np.isnan(out[-1])  # leading / trailing
    assert np.isnan(out[2:5]).all()  # run of 3 > max_gap
    assert out[6] == pytest.approx(6.0)
    assert mask.sum() == 1


def test_gap_exactly_max_gap_filled_and_one_longer_not() -> None:
    x = np.r_[0.0, [np.nan] * 3, 4.0, [np.nan] * 4, 9.0]
    out, _ = interpolate_gaps(x, max_gap=3)
    np.testing.assert_allclose(out[:5], [0, 1, 2, 3, 4])
    assert np.isnan(out[5:9]).all()


def test_max_gap_zero_fills_nothing() -> None:
    x = np.array([0.0, np.nan, 2.0])
    out, mask = interpolate_gaps(x, 0)
    assert np.isnan(out[1]) and not mask.any()


def test_columns_independent_multi_dim() -> None:
    pose = np.zeros((6, 2, 2))
    pose[:, 0, 0] = np.arange(6)
    pose[2, 0, 0] = np.nan
    pose[3:5, 1, 1] = np.nan
    pose[5, 1, 1] = 10.0
    out, mask = interpolate_gaps(pose, 2)
    assert out[2, 0, 0] == pytest.approx(2.0)
    np.testing.assert_allclose(out[3:5, 1, 1], [10 / 3, 20 / 3])
    assert mask.sum() == 3 and out.shape == pose.shape


@settings(max_examples=60, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(1, 40), st.integers(1, 3)),
        elements=st.one_of(st.just(np.nan), st.floats(-1e3, 1e3)),
    ),
    st.integers(0, 6),
)
def test_interpolation_never_changes_observed_values(x: np.ndarray, max_gap: int) -> None:
    out, mask = interpolate_gaps(x, max_gap)
    obs = np.isfinite(x)
    np.testing.assert_array_equal(out[obs], x[obs])
    assert not (mask & obs).any()
    assert np.isfinite(out[mask]).all()
    # filled values lie between the neighbours: within the column's observed range
    for c in range(x.shape[1]):
        if mask[:, c].any():
            col = x[obs[:, c], c]
            assert col.min() - 1e-9 <= out[mask[:, c], c].min()
            assert out[mask[:, c], c].max() <= col.max() + 1e-9


def test_clean_session_masks_low_likelihood_and_reports() -> None:
    t = 20
    pose = np.stack([np.arange(t), np.arange(t)], axis=-1)[:, None, :].repeat(2, axis=1)
    pose = pose.astype(np.float32)
    lik = np.ones((t, 2), dtype=np.float32)
    lik[3:5, 0] = 0.1  # short gap -> interpolated
    lik[8:15, 1] = 0.2  # long gap -> stays missing
    lik[19, 0] = 0.5  # trailing -> stays missing
    cleaned, rep = clean_session(_session(pose, lik), PreprocessConfig(0.6, max_gap=3))
    assert isinstance(rep, GapReport) and rep.session == "s1"
    np.testing.assert_allclose(cleaned.pose[3:5, 0], pose[3:5, 0])
    assert np.isnan(cleaned.pose[8:15, 1]).all() and np.isnan(cleaned.pose[19, 0]).all()
    assert rep.frac_low_likelihood == pytest.approx(10 / t)
    assert rep.frac_interpolated == pytest.approx(2 / t)
    assert rep.frac_missing == pytest.approx(8 / t)
    # original untouched, metadata kept
    assert np.isfinite(_session(pose, lik).pose).all() and cleaned.name == "s1"


def test_arena_bounds_from_data_nan_aware_and_scaling() -> None:
    pose = np.array([[[10.0, 20.0], [np.nan, np.nan]], [[110.0, 220.0], [60.0, 120.0]]])
    b = ArenaBounds.from_data([_session(pose)])
    assert (b.x_min, b.x_max, b.y_min, b.y_max) == (10, 110, 20, 220)
    s = scale_pose(pose, b)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s[0, 0], [-1, -1])
    np.testing.assert_allclose(s[1, 0], [1, 1])
    np.testing.assert_allclose(s[1, 1], [0, 0])
    assert np.isnan(s[0, 1]).all()
    assert ArenaBounds.from_dict(b.to_dict()) == b


def test_arena_bounds_config_and_degenerate_errors() -> None:
    b = ArenaBounds(0, 640, 0, 480)
    np.testing.assert_allclose(scale_pose(np.array([[320.0, 240.0]]), b), [[0, 0]])
    with pytest.raises(ValueError, match="degenerate"):
        ArenaBounds(5, 5, 0, 1)
    flat = np.zeros((4, 1, 2))
    flat[:, 0, 0] = np.arange(4)
    with pytest.raises(ValueError, match="degenerate"):
        ArenaBounds.from_data([flat])
    with pytest.raises(ValueError, match="no finite"):
        ArenaBounds.from_data([np.full((3, 1, 2), np.nan)])
