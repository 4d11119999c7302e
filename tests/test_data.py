"""Windowing, the DataModule pipeline, prepare_session and the data sources."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from io_helpers import dlc_frame, write_dlc_csv

from dbm_lightning.data import (
    DBMDataModule,
    DBMMatSource,
    DLCFolderSource,
    SplitConfig,
    SyntheticSource,
    make_windows,
    prepare_session,
    window_starts,
)
from dbm_lightning.errors import DataFormatError
from dbm_lightning.features import FeatureConfig
from dbm_lightning.io import LoadResult
from dbm_lightning.labeling import EmbeddedLabeler
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig
from dbm_lightning.session import Session

PARTS = ("head", "nose", "left_ear", "right_ear", "body_centre", "tail_base")

# ----------------------------------------------------------------------------- windows


def test_window_starts_and_exact_contents() -> None:
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]
    assert window_starts(11, 4, 3).tolist() == [0, 3, 6, 7]  # last aligned to the end
    assert window_starts(4, 4, 2).tolist() == [0]
    assert window_starts(3, 4, 2).tolist() == [0]
    assert window_starts(0, 4, 2).tolist() == []
    feats = np.arange(11 * 2, dtype=np.float32).reshape(11, 2)
    labels = np.arange(11, dtype=np.int64)
    X, Y = make_windows(feats, labels, 4, 3)
    assert X.shape == (4, 4, 2) and Y.shape == (4, 4)
    assert X.dtype == np.float32 and Y.dtype == np.int64
    assert X.flags.c_contiguous and Y.flags.c_contiguous
    for i, s in enumerate([0, 3, 6, 7]):
        np.testing.assert_array_equal(X[i], feats[s : s + 4])
        np.testing.assert_array_equal(Y[i], labels[s : s + 4])


def test_short_session_is_padded() -> None:
    feats = np.ones((3, 5), np.float32)
    X, Y = make_windows(feats, np.array([0, 1, 2]), 6, 2)
    assert X.shape == (1, 6, 5)
    np.testing.assert_array_equal(X[0, :3], 1.0)
    np.testing.assert_array_equal(X[0, 3:], 0.0)
    assert Y[0].tolist() == [0, 1, 2, -1, -1, -1]


def test_empty_session_gives_no_window() -> None:
    X, Y = make_windows(np.zeros((0, 3)), np.zeros(0, np.int64), 4, 2)
    assert X.shape == (0, 4, 3) and Y.shape == (0, 4)


@pytest.mark.parametrize(("window", "stride"), [(0, 1), (4, 0), (4, 5)])
def test_bad_window_or_stride(window: int, stride: int) -> None:
    with pytest.raises(ValueError):
        make_windows(np.zeros((10, 2)), np.zeros(10, np.int64), window, stride)


def test_mismatched_labels_rejected() -> None:
    with pytest.raises(ValueError, match="labels shape"):
        make_windows(np.zeros((10, 2)), np.zeros(9, np.int64), 4, 2)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=64),
    st.data(),
)
def test_every_frame_covered_with_its_own_values(t: int, window: int, data) -> None:
    stride = data.draw(st.integers(min_value=1, max_value=window))
    feats = np.arange(t, dtype=np.float32)[:, None] * np.array([[1.0, -1.0]], np.float32)
    labels = np.arange(t, dtype=np.int64)
    X, Y = make_windows(feats, labels, window, stride)
    starts = window_starts(t, window, stride)
    assert X.shape == (len(starts), window, 2)
    covered = np.zeros(t, dtype=bool)
    real = Y >= 0
    covered[Y[real]] = True
    assert covered.all()
    # each window holds consecutive frames of the session; padding only when t < window
    np.testing.assert_array_equal(X[..., 0][real], Y[real].astype(np.float32))
    if t >= window:
        assert real.all() and starts[-1] == t - window
        np.testing.assert_array_equal(np.diff(Y, axis=1), 1)
    else:
        assert real.sum() == t and (X[~real] == 0).all()


@settings(max_examples=80, deadline=None)
@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=1, max_value=64),
    st.data(),
)
def test_count_once_labels_every_frame_exactly_once(t: int, window: int, data) -> None:
    """Evaluation windows: each frame's label is in exactly one window, features untouched."""
    stride = data.draw(st.integers(min_value=1, max_value=window))
    feats = np.arange(t, dtype=np.float32)[:, None]
    labels = np.arange(t, dtype=np.int64)
    X, Y = make_windows(feats, labels, window, stride, count_once=True)
    X_all, _ = make_windows(feats, labels, window, stride)
    np.testing.assert_array_equal(X, X_all)
    np.testing.assert_array_equal(np.sort(Y[Y >= 0]), labels)


# ------------------------------------------------------------------ in-memory pipeline


def walk_session(name: str, t: int, seed: int, mouse: str | None = None, day: int | None = None):
    """A random walk of 6 parts around a centre, likelihoods mostly high."""
    rng = np.random.default_rng(seed)
    centre = np.cumsum(rng.normal(0, 3, (t, 2)), axis=0) + [320, 240]
    offsets = rng.normal(0, 15, (1, len(PARTS), 2))
    pose = centre[:, None, :] + offsets + rng.normal(0, 1, (t, len(PARTS), 2))
    lik = rng.uniform(0.7, 1.0, (t, len(PARTS)))
    lik[rng.random((t, len(PARTS))) < 0.02] = 0.1  # short dropouts (interpolated)
    return Session(
        pose=pose,
        likelihood=lik,
        bodyparts=PARTS,
        name=name,
        mouse=mouse,
        day=day,
        fps=30.0,
        source=Path(f"/nowhere/{name}.csv"),
    )


@dataclass
class ListSource:
    """A source of in-memory sessions that counts its loads."""

    sessions: list
    skipped: list | None = None
    calls: int = 0

    def load(self, cache_dir=None) -> LoadResult:
        self.calls += 1
        return LoadResult(sessions=list(self.sessions), skipped=list(self.skipped or []))


@dataclass
class BlockLabeler:
    """Labels in blocks of 25 frames cycling through 3 classes."""

    label_names: tuple = ("a", "b", "c")

    def label(self, session: Session) -> Session:
        lab = (np.arange(session.n_frames) // 25) % 3
        return session.with_labels(lab, self.label_names)


def grid_sessions(mice: int = 4, days: int = 2, t: int = 230) -> list[Session]:
    out = []
    for m in range(mice):
        for d in range(days):
            out.append(walk_session(f"m{m}_day{d + 1}", t + 17 * m, 10 * m + d, f"m{m}", d + 1))
    return out


@pytest.fixture
def sessions() -> list[Session]:
    s = grid_sessions()
    # one long gap (stays missing -> invalid frames) in a session of mouse m0
    lik = s[0].likelihood.copy()
    lik[40:80, 2] = 0.0
    s[0] = replace(s[0], likelihood=lik)
    return s


def build(sessions, **kwargs) -> DBMDataModule:
    args = dict(
        source=ListSource(sessions),
        labeler=BlockLabeler(),
        preprocess=PreprocessConfig(likelihood_threshold=0.6, max_gap=5),
        features=FeatureConfig(distances=True, coordinates=True, pe_L=2),
        split=SplitConfig(strategy="leave_mouse_out", val_mice=["m1"], test_mice=["m2"]),
        arena=None,
        window=50,
        stride=30,
        batch_size=4,
    )
    args.update(kwargs)
    return DBMDataModule(**args)


def test_setup_shapes_invalid_frames_and_counts(sessions) -> None:
    dm = build(sessions)
    dm.setup("fit")
    n_feat = 51 + 12 + 6 * 2 * 2 * 2
    assert dm.n_features == n_feat == len(dm.feature_names)
    assert dm.n_classes == 3 and dm.class_names == ("a", "b", "c")
    assert dm.bodyparts == PARTS
    assert {dm.assignment[s.name] for s in sessions if s.mouse == "m1"} == {"val"}
    assert {dm.assignment[s.name] for s in sessions if s.mouse == "m2"} == {"test"}
    assert dm.has_val and dm.has_test

    for split in ("train", "val", "test"):
        X, Y = dm.datasets[split].tensors
        assert X.dtype == torch.float32 and Y.dtype == torch.int64
        assert X.is_contiguous() and Y.is_contiguous()
        assert X.shape[1:] == (50, n_feat) and Y.shape[1:] == (50,)
        stride = 30 if split == "train" else 50  # evaluation windows tile the sessions
        expected = sum(
            len(window_starts(s.n_frames, 50, stride))
            for s in sessions
            if dm.assignment[s.name] == split
        )
        assert X.shape[0] == expected
        if split != "train":  # ... and count every valid frame exactly once
            n_valid = sum(int((p.labels >= 0).sum()) for p in dm.session_features(split))
            assert int((Y >= 0).sum()) == n_valid

    first = dm.predict_sessions([sessions[0].name])[0]
    assert first.split == "train"
    assert not first.valid[45:75].any()  # the long gap is still missing
    assert (first.features[~first.valid] == 0).all() and (first.labels[~first.valid] == -1).all()
    assert first.valid.sum() > 0.7 * len(first.valid)
    assert first.features.shape == (sessions[0].n_frames, n_feat)

    train = dm.session_features("train")
    all_lab = np.concatenate([p.labels for p in train])
    np.testing.assert_array_equal(
        dm.train_class_counts, np.bincount(all_lab[all_lab >= 0], minlength=3)
    )
    assert dm.train_class_counts.dtype == np.int64

    # the standardiser is fitted on training frames only
    feats = np.concatenate([p.features[p.valid] for p in train])
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-3)
    val = np.concatenate([p.features[p.valid] for p in dm.session_features("val")])
    assert np.abs(val.mean(axis=0)).max() > 0.05


def test_setup_is_idempotent_and_loads_once(sessions) -> None:
    dm = build(sessions)
    dm.setup("fit")
    X = dm.datasets["train"].tensors[0]
    dm.setup("test")
    dm.setup("validate")
    assert dm.source.calls == 1
    assert dm.datasets["train"].tensors[0] is X


def test_loaders_seeded_shuffle_and_order(sessions) -> None:
    dm = build(sessions, seed=7)
    dm.setup()
    a = [y for _, y in dm.train_dataloader()]
    b = [y for _, y in dm.train_dataloader()]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    Y = dm.datasets["train"].tensors[1]
    assert not torch.equal(torch.cat(a), Y)  # shuffled
    assert torch.equal(
        torch.cat([y for _, y in dm.val_dataloader()]), dm.datasets["val"].tensors[1]
    )
    x, y = next(iter(dm.test_dataloader()))
    assert x.shape == (4, 50, dm.n_features) and y.shape == (4, 50)
    assert dm.train_dataloader().persistent_workers is False
    dm2 = build(sessions, num_workers=1)
    dm2.setup()
    assert dm2.val_dataloader().persistent_workers is True


def test_no_test_split(sessions) -> None:
    dm = build(sessions, split=SplitConfig(strategy="sessions", val_fraction=0.25))
    dm.setup()
    assert not dm.has_test and dm.test_dataloader() == []
    assert dm.summary()["sessions"] == {"train": 6, "val": 2, "test": 0}


def test_prepare_session_reproduces_training_features(sessions) -> None:
    dm = build(sessions)
    dm.setup()
    state = json.loads(json.dumps(dm.pipeline_state()))  # as stored in a checkpoint
    for raw in (sessions[0], sessions[3]):
        prepared = dm.predict_sessions([raw.name])[0]
        feats, valid = prepare_session(raw, state)
        assert feats.dtype == np.float32
        np.testing.assert_array_equal(valid, prepared.valid)
        np.testing.assert_allclose(feats, prepared.features, rtol=0, atol=1e-6)

    # body parts are matched by name: a reordered session gives the same features
    s = sessions[3]
    order = [5, 0, 4, 1, 3, 2]
    shuffled = replace(
        s,
        pose=s.pose[:, order],
        likelihood=s.likelihood[:, order],
        bodyparts=tuple(PARTS[i] for i in order),
    )
    np.testing.assert_allclose(prepare_session(shuffled, state)[0], prepare_session(s, state)[0])


def test_prepare_session_names_missing_bodyparts(sessions) -> None:
    dm = build(sessions)
    dm.setup()
    s = sessions[0]
    other = Session(
        pose=s.pose[:, :4], likelihood=s.likelihood[:, :4], bodyparts=PARTS[:4], name="new"
    )
    with pytest.raises(DataFormatError, match=r"new.*\['body_centre', 'tail_base'\]"):
        prepare_session(other, dm.pipeline_state())


def test_sessions_with_different_bodyparts_rejected(sessions) -> None:
    s = sessions[1]
    sessions[1] = replace(
        s,
        pose=s.pose[:, :5],
        likelihood=s.likelihood[:, :5],
        bodyparts=PARTS[:5],
    )
    with pytest.raises(DataFormatError, match="tail_base"):
        build(sessions).setup()


def test_given_arena_is_used_and_summary_is_json(sessions) -> None:
    arena = ArenaBounds(0.0, 640.0, 0.0, 480.0)
    dm = build(sessions, arena=arena, source=ListSource(sessions, skipped=[]))
    dm.setup()
    assert dm.pipeline_state()["arena"] == arena.to_dict()
    summary = json.loads(json.dumps(dm.summary()))
    assert summary["arena_from_data"] is False
    assert summary["frames"]["train"] == sum(
        s.n_frames for s in sessions if dm.assignment[s.name] == "train"
    )
    gaps = {g["session"]: g for g in summary["gaps"]}
    assert set(gaps) == {s.name for s in sessions}
    assert gaps[sessions[0].name]["frac_missing"] > 0.1
    assert summary["train_class_counts"] == dm.train_class_counts.tolist()


def test_embedded_labels_with_different_orders_are_merged() -> None:
    a = walk_session("t1", 120, 1).with_labels(np.repeat([0, 1, -1], 40), ("x", "y"))
    b = walk_session("t2", 120, 2).with_labels(np.repeat([0, 1, 2], 40), ("y", "z", "x"))
    c = walk_session("t3", 120, 3).with_labels(np.repeat([0, 1, 0], 40), ("x", "y"))
    dm = DBMDataModule(
        ListSource([a, b, c]),
        EmbeddedLabeler(),
        split=SplitConfig(val_fraction=0.3),
        window=40,
        stride=40,
        preprocess=PreprocessConfig(likelihood_threshold=0.0),
    )
    dm.setup()
    assert dm.class_names == ("x", "y", "z")
    lab_b = dm.predict_sessions(["t2"])[0].labels
    np.testing.assert_array_equal(lab_b, np.repeat([1, 2, 0], 40))


def test_dlc_folder_source_skips_corrupted(tmp_path: Path) -> None:
    for m in range(3):
        for d in (1, 2):
            s = walk_session(f"m{m}_day{d}", 150, m * 3 + d)
            df = dlc_frame(s.pose, s.likelihood, list(PARTS))
            write_dlc_csv(tmp_path / f"m{m}_day{d}DLC_resnet50_boxJan1shuffle1_1000.csv", df)
    (tmp_path / "m3_day1.csv").write_text("this is not a DeepLabCut file\n1,2\n")
    source = DLCFolderSource(tmp_path, skip_corrupted=True, fps=30.0)
    dm = DBMDataModule(
        source,
        BlockLabeler(),
        split=SplitConfig(strategy="leave_day_out", val_days=[2]),
        window=60,
        stride=30,
        cache_dir=False,
    )
    with pytest.warns(UserWarning, match="m3_day1"):
        dm.setup()
    summary = dm.summary()
    assert [Path(s["path"]).name for s in summary["skipped"]] == ["m3_day1.csv"]
    assert summary["skipped"][0]["reason"]
    assert summary["sessions"] == {"train": 3, "val": 3, "test": 0}
    assert sorted(dm.assignment) == [f"m{m}_day{d}" for m in range(3) for d in (1, 2)]

    strict = DLCFolderSource(tmp_path, skip_corrupted=False)
    with pytest.raises(DataFormatError, match="m3_day1"):
        strict.load(cache_dir=False)


# ---------------------------------------------------------------------- real DBM sample


@pytest.mark.real_data
def test_dbm_sample_whole_trials(shared_data: Path) -> None:
    path = shared_data / "dbm_sample" / "DBM_sample_data.mat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    dm = DBMDataModule(DBMMatSource(path), EmbeddedLabeler(), window=800, stride=800, batch_size=2)
    dm.setup()
    summary = dm.summary()
    assert summary["sessions"] == {"train": 51, "val": 6, "test": 0}  # 10 % of 57 trials
    assert summary["skipped"] == []
    assert dm.n_features == 51 and dm.n_classes == len(dm.class_names) >= 2
    X, Y = dm.datasets["train"].tensors
    assert X.shape == (51, 800, 51) and Y.shape == (51, 800)  # one window per trial
    assert dm.train_class_counts.sum() == (Y >= 0).sum().item()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 800, 51) and y.dtype == torch.int64

    raw = {s.name: s for s in DBMMatSource(path).load().sessions}
    name = next(n for n, sp in dm.assignment.items() if sp == "train")
    feats, valid = prepare_session(raw[name], dm.pipeline_state())
    np.testing.assert_allclose(feats, dm.predict_sessions([name])[0].features, atol=1e-6)
    assert valid.all()

    with pytest.raises(ValueError, match="trial_01"):
        DBMDataModule(
            DBMMatSource(path),
            EmbeddedLabeler(),
            split=SplitConfig(strategy="leave_mouse_out"),
        ).setup()


# ------------------------------------------------------------------ synthetic end to end


def test_synthetic_end_to_end_rules_and_truth() -> None:
    pytest.importorskip("yaml")
    import yaml

    from dbm_lightning.labeling import FileLabeler, RuleLabeler
    from dbm_lightning.synthetic import TRUE_BEHAVIOURS

    conf = Path(__file__).resolve().parents[1] / "conf" / "labels" / "operant_box.yaml"
    source = SyntheticSource(mice=2, days=2, frames=400, seed=0)
    dm = DBMDataModule(
        source,
        RuleLabeler.from_config(yaml.safe_load(conf.read_text())),
        features=FeatureConfig(distances=True, pe_L=3),
        split=SplitConfig(strategy="leave_mouse_out", val_mice=["m02"]),
        arena=ArenaBounds(0.0, 640.0, 0.0, 480.0),
        window=100,
        stride=50,
        batch_size=3,
    )
    dm.setup()
    assert dm.class_names[:3] == ("left_port", "centre_port", "right_port")
    assert dm.summary()["sessions"] == {"train": 2, "val": 2, "test": 0}
    assert {n for n, sp in dm.assignment.items() if sp == "val"} == {"m02_day1", "m02_day2"}
    X, Y = dm.datasets["train"].tensors
    assert X.shape == (2 * 7, 100, 51 + 6 * 2 * 2 * 3)  # 400 frames -> starts 0,50,...,300
    assert dm.train_class_counts.sum() > 0.5 * 800
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (3, 100, dm.n_features)

    raw = {s.name: s for s in source.load().sessions}
    for p in dm.session_features("train"):
        feats, valid = prepare_session(raw[p.name], dm.pipeline_state())
        np.testing.assert_array_equal(valid, p.valid)
        np.testing.assert_allclose(feats, p.features, atol=1e-6)

    # the simulator's true behaviour, beside each pose file
    truth = DBMDataModule(
        source,
        FileLabeler(SyntheticSource.true_labels_pattern, label_names=TRUE_BEHAVIOURS),
        split=SplitConfig(strategy="kfold_mouse", n_folds=2, fold=1),
        window=100,
        stride=50,
    )
    truth.setup()
    assert truth.class_names == tuple(TRUE_BEHAVIOURS)
    assert truth.train_class_counts.sum() > 0
    assert source.folder is not None and (source.folder / "manifest.csv").is_file()
