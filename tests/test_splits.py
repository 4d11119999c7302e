"""Split strategies: disjoint, complete, deterministic, group-respecting (incl. property tests)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbm_lightning.data import SplitConfig, kfold_mouse_groups, split_sessions
from dbm_lightning.session import Session


def make_session(name: str, mouse: str | None = None, day: int | None = None) -> Session:
    return Session(
        pose=np.zeros((3, 2, 2), np.float32),
        likelihood=np.ones((3, 2), np.float32),
        bodyparts=("a", "b"),
        name=name,
        mouse=mouse,
        day=day,
    )


def grid(mice: int = 8, days: int = 7) -> list[Session]:
    return [
        make_session(f"m{m:02d}_day{d}", f"m{m:02d}", d)
        for m in range(1, mice + 1)
        for d in range(1, days + 1)
    ]


def trials(n: int) -> list[Session]:
    return [make_session(f"trial_{i:02d}") for i in range(1, n + 1)]


def by_split(assignment: dict[str, str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"train": set(), "val": set(), "test": set()}
    for name, split in assignment.items():
        out[split].add(name)
    return out


def groups_of(sessions, assignment, attr):
    out: dict[str, set] = {"train": set(), "val": set(), "test": set()}
    for s in sessions:
        out[assignment[s.name]].add(getattr(s, attr))
    return out


def test_trials_default_is_ten_percent_val_like_the_demo() -> None:
    sessions = trials(57)
    a = split_sessions(sessions, SplitConfig())
    parts = by_split(a)
    assert len(parts["val"]) == 6 and len(parts["test"]) == 0 and len(parts["train"]) == 51
    assert list(a) == [s.name for s in sessions]  # input order kept


def test_trials_at_least_one_val_even_for_few_sessions() -> None:
    parts = by_split(split_sessions(trials(3), SplitConfig(val_fraction=0.1)))
    assert len(parts["val"]) == 1 and len(parts["train"]) == 2


def test_too_few_sessions_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one must remain"):
        split_sessions(trials(2), SplitConfig(val_fraction=0.1, test_fraction=0.1))


def test_trials_deterministic_and_order_independent() -> None:
    sessions = trials(40)
    cfg = SplitConfig(strategy="sessions", val_fraction=0.2, test_fraction=0.1, seed=3)
    a = split_sessions(sessions, cfg)
    b = split_sessions(list(reversed(sessions)), cfg)
    assert a == b
    c = split_sessions(sessions, SplitConfig(strategy="sessions", val_fraction=0.2, seed=4))
    assert by_split(c)["val"] != by_split(a)["val"]


def test_leave_mouse_out_explicit_mice() -> None:
    sessions = grid()
    a = split_sessions(
        sessions, SplitConfig(strategy="leave_mouse_out", val_mice=["m02"], test_mice=["m05"])
    )
    g = groups_of(sessions, a, "mouse")
    assert g == {
        "val": {"m02"},
        "test": {"m05"},
        "train": {f"m{i:02d}" for i in (1, 3, 4, 6, 7, 8)},
    }


def test_leave_mouse_out_random_by_fraction() -> None:
    sessions = grid()
    cfg = SplitConfig(strategy="leave_mouse_out", val_fraction=0.25, test_fraction=0.125, seed=1)
    a = split_sessions(sessions, cfg)
    g = groups_of(sessions, a, "mouse")
    assert len(g["val"]) == 2 and len(g["test"]) == 1 and len(g["train"]) == 5
    assert not (g["val"] & g["test"]) and not (g["train"] & (g["val"] | g["test"]))
    assert a == split_sessions(sessions, cfg)


def test_leave_mouse_out_explicit_val_random_test() -> None:
    sessions = grid(4, 2)
    cfg = SplitConfig(strategy="leave_mouse_out", val_mice=["m01"], test_fraction=0.25)
    g = groups_of(sessions, split_sessions(sessions, cfg), "mouse")
    assert g["val"] == {"m01"} and len(g["test"]) == 1 and "m01" not in g["test"]


def test_leave_mouse_out_unknown_or_overlapping_mice() -> None:
    sessions = grid(3, 2)
    with pytest.raises(ValueError, match="m09"):
        split_sessions(sessions, SplitConfig(strategy="leave_mouse_out", val_mice=["m09"]))
    with pytest.raises(ValueError, match="both val and test"):
        split_sessions(
            sessions,
            SplitConfig(strategy="leave_mouse_out", val_mice=["m01"], test_mice=["m01"]),
        )
    with pytest.raises(ValueError, match="at least one must remain"):
        split_sessions(
            sessions,
            SplitConfig(strategy="leave_mouse_out", val_mice=["m01", "m02"], test_mice=["m03"]),
        )


def test_leave_day_out() -> None:
    sessions = grid(3, 7)
    a = split_sessions(sessions, SplitConfig(strategy="leave_day_out", val_days=[6], test_days=[7]))
    g = groups_of(sessions, a, "day")
    assert g == {"train": {1, 2, 3, 4, 5}, "val": {6}, "test": {7}}
    cfg = SplitConfig(strategy="leave_day_out", val_fraction=0.15, test_fraction=0.15, seed=2)
    g = groups_of(sessions, split_sessions(sessions, cfg), "day")
    assert len(g["val"]) == 1 and len(g["test"]) == 1 and len(g["train"]) == 5


@pytest.mark.parametrize("strategy", ["leave_mouse_out", "leave_day_out", "kfold_mouse"])
def test_group_strategy_on_trials_without_metadata_is_a_clear_error(strategy: str) -> None:
    with pytest.raises(ValueError, match=r"trial_01.*use strategy 'trials'"):
        split_sessions(trials(10), SplitConfig(strategy=strategy))


def test_kfold_covers_every_mouse_once() -> None:
    sessions = grid(8, 2)
    seen: list[str] = []
    for fold in range(4):
        a = split_sessions(sessions, SplitConfig(strategy="kfold_mouse", fold=fold, n_folds=4))
        g = groups_of(sessions, a, "mouse")
        assert len(g["val"]) == 2 and not g["test"] and not (g["val"] & g["train"])
        seen += sorted(g["val"])
    assert sorted(seen) == sorted({s.mouse for s in sessions})
    assert len(seen) == len(set(seen))


def test_kfold_with_test_fold_and_groups_helper() -> None:
    sessions = grid(6, 1)
    folds = kfold_mouse_groups([s.mouse for s in sessions], n_folds=3, seed=5)
    for f in range(3):
        cfg = SplitConfig(strategy="kfold_mouse", n_folds=3, fold=f, kfold_test=True, seed=5)
        g = groups_of(sessions, split_sessions(sessions, cfg), "mouse")
        assert g["val"] == set(folds[f]) and g["test"] == set(folds[(f + 1) % 3])
        assert g["train"] == set(folds[(f + 2) % 3])


def test_kfold_needs_enough_mice() -> None:
    with pytest.raises(ValueError, match="at least that many mice"):
        split_sessions(grid(3, 1), SplitConfig(strategy="kfold_mouse", n_folds=4))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"strategy": "random"},
        {"val_fraction": 1.0},
        {"val_fraction": 0.6, "test_fraction": 0.5},
        {"n_folds": 1},
        {"fold": 4, "n_folds": 4},
        {"kfold_test": True, "n_folds": 2, "fold": 0},
    ],
)
def test_bad_configs(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SplitConfig(**kwargs)


def test_duplicate_names_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        split_sessions([make_session("x"), make_session("x")], SplitConfig())


def test_config_scalar_mice_and_to_dict() -> None:
    cfg = SplitConfig(strategy="leave_mouse_out", val_mice="m01")
    assert cfg.val_mice == ("m01",)
    assert cfg.to_dict()["val_mice"] == ["m01"]


# ------------------------------------------------------------------ property tests

session_sets = st.tuples(
    st.integers(min_value=1, max_value=7),  # mice
    st.integers(min_value=1, max_value=5),  # days
    st.floats(min_value=0.0, max_value=0.45),
    st.floats(min_value=0.0, max_value=0.45),
    st.integers(min_value=0, max_value=10_000),
    st.randoms(use_true_random=False),
)


def _random_grid(n_mice, n_days, rnd) -> list[Session]:
    sessions = [
        make_session(f"m{m}_d{d}", f"m{m}", d)
        for m in range(n_mice)
        for d in range(n_days)
        if rnd.random() < 0.8 or (d == 0)
    ]
    rnd.shuffle(sessions)
    return sessions


@settings(max_examples=60, deadline=None)
@given(session_sets, st.sampled_from(["trials", "sessions", "leave_mouse_out", "leave_day_out"]))
def test_property_disjoint_complete_deterministic(params, strategy) -> None:
    n_mice, n_days, vf, tf, seed, rnd = params
    sessions = _random_grid(n_mice, n_days, rnd)
    cfg = SplitConfig(strategy=strategy, val_fraction=vf, test_fraction=tf, seed=seed)
    try:
        a = split_sessions(sessions, cfg)
    except ValueError as exc:  # only allowed when the data is too small to keep a train set
        assert "at least one must remain" in str(exc)
        return
    assert set(a) == {s.name for s in sessions}  # all assigned, each exactly once (dict)
    assert set(a.values()) <= {"train", "val", "test"}
    assert "train" in a.values()
    assert a == split_sessions(list(reversed(sessions)), cfg)
    if strategy in ("leave_mouse_out", "leave_day_out"):
        attr = "mouse" if strategy == "leave_mouse_out" else "day"
        where: dict = {}
        for s in sessions:
            assert where.setdefault(getattr(s, attr), a[s.name]) == a[s.name]
    if vf > 0:
        assert "val" in a.values()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=2, max_value=12),
    st.integers(min_value=2, max_value=6),
    st.integers(min_value=0, max_value=1000),
    st.randoms(use_true_random=False),
)
def test_property_kfold_partition(n_mice, n_folds, seed, rnd) -> None:
    if n_mice < n_folds:
        n_mice = n_folds
    sessions = _random_grid(n_mice, 3, rnd)
    val_count: dict[str, int] = {}
    for fold in range(n_folds):
        a = split_sessions(
            sessions, SplitConfig(strategy="kfold_mouse", n_folds=n_folds, fold=fold, seed=seed)
        )
        where: dict = {}
        for s in sessions:
            assert where.setdefault(s.mouse, a[s.name]) == a[s.name]
        for m, split in where.items():
            val_count[m] = val_count.get(m, 0) + (split == "val")
    assert val_count == {f"m{m}": 1 for m in range(n_mice)}


def test_kfold_over_sessions_covers_every_session_once() -> None:
    sessions = grid(4, 3)  # 12 sessions
    seen: list[str] = []
    for fold in range(5):
        a = split_sessions(sessions, SplitConfig(strategy="kfold", fold=fold, n_folds=5, seed=3))
        val = [n for n, side in a.items() if side == "val"]
        assert len(val) in (2, 3) and "test" not in a.values()
        seen += val
    assert sorted(seen) == sorted(s.name for s in sessions)
    # the folds depend on the seed, not on the order the sessions come in
    shuffled = list(reversed(sessions))
    cfg = SplitConfig(strategy="kfold", fold=1, n_folds=5, seed=3)
    assert split_sessions(shuffled, cfg) == split_sessions(sessions, cfg)
    with pytest.raises(ValueError, match="at least that many sessions"):
        split_sessions(grid(2, 1), SplitConfig(strategy="kfold", n_folds=3))
