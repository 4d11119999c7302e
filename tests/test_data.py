"""Windowing, the DataModule pipeline, prepare_session and the data sources."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PARTS, BlockLabeler, ListSource, dlc_frame, walk_session, write_dlc_csv
from hypothesis import given, settings
from hypothesis import strategies as st

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
from dbm_lightning.labeling import EmbeddedLabeler
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig
from dbm_lightning.session import Session

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


@pytest.fixture
def sessions(make_sessions) -> list[Session]:
    s = make_sessions()
    # one long gap (stays missing -> invalid frames) in a session of mouse m0
    lik = s[0].likelihood.copy()
    lik[40:80, 2] = 0.0
    s[0] = replace(s[0], likelihood=lik)
    return s


def all_windows(dm: DBMDataModule, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of a split, in order (a copy: for tests on small data)."""
    ds = dm.datasets[split]
    return ds.gather(range(len(ds)))


def test_setup_shapes_invalid_frames_and_counts(sessions, make_datamodule) -> None:
    dm = make_datamodule(sessions)
    dm.setup("fit")
    n_feat = 51 + 12 + 6 * 2 * 2 * 2
    assert dm.n_features == n_feat == len(dm.feature_names)
    assert dm.n_classes == 3 and dm.class_names == ("a", "b", "c")
    assert dm.bodyparts == PARTS
    assert {dm.assignment[s.name] for s in sessions if s.mouse == "m1"} == {"val"}
    assert {dm.assignment[s.name] for s in sessions if s.mouse == "m2"} == {"test"}
    assert dm.has_val and dm.has_test

    for split in ("train", "val", "test"):
        X, Y = all_windows(dm, split)
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


def test_setup_is_idempotent_and_loads_once(sessions, make_datamodule) -> None:
    dm = make_datamodule(sessions)
    dm.setup("fit")
    X = dm.datasets["train"].features
    dm.setup("test")
    dm.setup("validate")
    assert dm.source.calls == 1
    assert dm.datasets["train"].features is X


def test_loaders_seeded_shuffle_and_order(sessions, make_datamodule) -> None:
    dm = make_datamodule(sessions, seed=7)
    dm.setup()
    a = [y for _, y in dm.train_dataloader()]
    b = [y for _, y in dm.train_dataloader()]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    Y = all_windows(dm, "train")[1]
    assert not torch.equal(torch.cat(a), Y)  # shuffled
    assert torch.equal(torch.cat([y for _, y in dm.val_dataloader()]), all_windows(dm, "val")[1])
    x, y = next(iter(dm.test_dataloader()))[:2]
    assert x.shape == (4, 50, dm.n_features) and y.shape == (4, 50)
    assert dm.train_dataloader().persistent_workers is False
    dm2 = make_datamodule(sessions, num_workers=1)
    dm2.setup()
    assert dm2.val_dataloader().persistent_workers is True


def test_no_test_split(sessions, make_datamodule) -> None:
    dm = make_datamodule(sessions, split=SplitConfig(strategy="sessions", val_fraction=0.25))
    dm.setup()
    assert not dm.has_test and dm.test_dataloader() == []
    assert dm.summary()["sessions"] == {"train": 6, "val": 2, "test": 0}


def test_prepare_session_reproduces_training_features(sessions, make_datamodule) -> None:
    dm = make_datamodule(sessions)
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


def test_prepare_session_names_missing_bodyparts(sessions, make_datamodule) -> None:
    dm = make_datamodule(sessions)
    dm.setup()
    s = sessions[0]
    other = Session(
        pose=s.pose[:, :4], likelihood=s.likelihood[:, :4], bodyparts=PARTS[:4], name="new"
    )
    with pytest.raises(DataFormatError, match=r"new.*\['body_centre', 'tail_base'\]"):
        prepare_session(other, dm.pipeline_state())


def test_sessions_with_different_bodyparts_rejected(sessions, make_datamodule) -> None:
    s = sessions[1]
    sessions[1] = replace(
        s,
        pose=s.pose[:, :5],
        likelihood=s.likelihood[:, :5],
        bodyparts=PARTS[:5],
    )
    with pytest.raises(DataFormatError, match="tail_base"):
        make_datamodule(sessions).setup()


def test_given_arena_is_used_and_summary_is_json(sessions, make_datamodule) -> None:
    arena = ArenaBounds(0.0, 640.0, 0.0, 480.0)
    dm = make_datamodule(sessions, arena=arena, source=ListSource(sessions, skipped=[]))
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


# ------------------------------------------------- window dataset: each split's frames once


def with_short_sessions(sessions: list[Session], t: int = 30) -> list[Session]:
    """The sessions plus one ``t``-frame session of mice m0 (train), m1 (val), m2 (test)."""
    short = [walk_session(f"m{m}_day9", t, 99 + m, f"m{m}", 9) for m in (0, 1, 2)]
    return sessions[:3] + short[:1] + sessions[3:] + short[1:]


@pytest.mark.parametrize(("window", "stride"), [(50, 30), (50, 50), (40, 7)])
def test_gathered_windows_equal_make_windows(
    sessions, window: int, stride: int, make_datamodule
) -> None:
    dm = make_datamodule(with_short_sessions(sessions), window=window, stride=stride)
    dm.setup()
    rng = np.random.default_rng(0)
    for split in ("train", "val", "test"):
        evaluation = split != "train"
        expected = [
            make_windows(p.features, p.labels, window, window if evaluation else stride, evaluation)
            for p in dm.session_features(split)
        ]
        X, Y = all_windows(dm, split)
        assert X.dtype == torch.float32 and Y.dtype == torch.int64
        assert X.is_contiguous() and Y.is_contiguous()
        np.testing.assert_array_equal(X.numpy(), np.concatenate([e[0] for e in expected]))
        np.testing.assert_array_equal(Y.numpy(), np.concatenate([e[1] for e in expected]))
        # any batch, in any order (DataLoader's batched fetch), and single windows
        ds = dm.datasets[split]
        idx = rng.permutation(len(ds))[:6]
        x, y = ds.__getitems__(idx.tolist())[:2]
        assert torch.equal(x, X[idx]) and torch.equal(y, Y[idx])
        x0, y0 = ds[int(idx[0])][:2]
        assert torch.equal(x0, X[idx[0]]) and torch.equal(y0, Y[idx[0]])


def test_eval_windows_count_every_valid_frame_exactly_once(sessions, make_datamodule) -> None:
    dm = make_datamodule(with_short_sessions(sessions), window=40, stride=13)
    dm.setup()
    for split in ("val", "test"):
        ds = dm.datasets[split]
        _, Y = all_windows(dm, split)
        stored_frame = ds.starts[:, None] + torch.arange(40)  # of every frame of every window
        counted = stored_frame[Y >= 0]
        assert len(torch.unique(counted)) == len(counted)  # no frame counted twice
        labelled = torch.nonzero(ds.labels >= 0).reshape(-1)
        assert torch.equal(torch.sort(counted).values, labelled)  # every labelled frame once
        assert torch.equal(ds.labels[counted], Y[Y >= 0])
        n_valid = sum(int((p.labels >= 0).sum()) for p in dm.session_features(split))
        assert len(counted) == n_valid


def test_each_split_stores_its_frames_once_padding_only_short_sessions(
    sessions, make_datamodule
) -> None:
    window = 50
    dm = make_datamodule(with_short_sessions(sessions), window=window, stride=30)
    dm.setup()
    n_feat = dm.n_features
    for split in ("train", "val", "test"):
        ds = dm.datasets[split]
        members = dm.session_features(split)
        frames = sum(len(p.labels) for p in members)
        padding = sum(window - len(p.labels) for p in members if len(p.labels) < window)
        assert padding == window - 30  # the one short session of the split
        # features: every session once, in order, the short one followed by zeros
        assert ds.features.dtype == torch.float32 and ds.features.is_contiguous()
        assert ds.features.nbytes == (frames + padding) * n_feat * 4
        pad = [max(window - len(p.labels), 0) for p in members]
        np.testing.assert_array_equal(
            ds.features.numpy(),
            np.concatenate(
                [
                    np.concatenate([p.features, np.zeros((k, n_feat))])
                    for p, k in zip(members, pad, strict=True)
                ]
            ),
        )
        np.testing.assert_array_equal(
            ds.labels.numpy(),
            np.concatenate(
                [
                    np.concatenate([p.labels, np.full(k, -1)])
                    for p, k in zip(members, pad, strict=True)
                ]
            ),
        )
        # no windows copy: labels and the window index are all the dataset holds besides
        assert ds.nbytes <= ds.features.nbytes + (frames + padding) * 8 + len(ds) * 16
        if split == "train":  # the overlapping windows would take far more
            assert ds.nbytes < 0.75 * len(ds) * window * n_feat * 4
        # the prepared (full-length) sessions are read-only views of the same array
        store = ds.features.numpy()
        for p in members:
            assert np.shares_memory(p.features, store) and not p.features.flags.writeable
            assert np.shares_memory(p.labels, ds.labels.numpy())


def test_standardizer_fit_equals_fit_on_valid_training_frames(sessions, make_datamodule) -> None:
    """Invalid frames are NaN rows in the split's array when the standardiser is fitted, which
    gives exactly the fit on copies of the valid frames (the former way)."""
    from dbm_lightning.features import Standardizer, compute_features
    from dbm_lightning.preprocess import scale_pose

    dm = make_datamodule(sessions)
    dm.setup()
    valid_rows = []
    for p in dm.session_features("train"):
        pose = p.session.pose  # the cleaned pose
        raw = compute_features(pose, scale_pose(pose, dm.arena_bounds), dm.features, 30.0)
        valid_rows.append(raw[np.isfinite(raw).all(axis=1)])
    assert sum(len(r) for r in valid_rows) < sum(
        len(p.labels) for p in dm.session_features("train")
    )
    ref = Standardizer.fit(valid_rows)
    np.testing.assert_array_equal(dm.standardizer.mean, ref.mean)
    np.testing.assert_array_equal(dm.standardizer.std, ref.std)


def test_train_loader_batches_follow_the_epoch_sampler(sessions, make_datamodule) -> None:
    import pickle

    from dbm_lightning.data import EpochShuffleSampler

    dm = make_datamodule(sessions, seed=5, batch_size=4)
    dm.setup()
    X, Y = all_windows(dm, "train")
    loader = dm.train_dataloader()
    for epoch in (0, 3):
        loader.sampler.set_epoch(epoch)
        order = list(EpochShuffleSampler(len(X), seed=5, epoch=epoch))
        batches = list(loader)
        assert all(len(x) == 4 for x, _ in batches[:-1])
        assert torch.equal(torch.cat([x for x, _ in batches]), X[order])
        assert torch.equal(torch.cat([y for _, y in batches]), Y[order])
    # a dataset sent to a worker process rebuilds its window views
    ds = pickle.loads(pickle.dumps(dm.datasets["val"]))
    assert torch.equal(ds.gather(range(len(ds)))[1], all_windows(dm, "val")[1])


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
    X, Y = all_windows(dm, "train")
    assert X.shape == (51, 800, 51) and Y.shape == (51, 800)  # one window per trial
    assert dm.train_class_counts.sum() == (Y >= 0).sum().item()
    x, y = next(iter(dm.train_dataloader()))[:2]
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
    from dbm_lightning.cli.config import compose_config
    from dbm_lightning.labeling import FileLabeler, RuleLabeler
    from dbm_lightning.synthetic import TRUE_BEHAVIOURS

    source = SyntheticSource(mice=2, days=2, frames=400, seed=0)
    dm = DBMDataModule(
        source,
        RuleLabeler.from_config(compose_config(["labels=operant_box"])["labels"]),
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
    X, Y = all_windows(dm, "train")
    assert X.shape == (2 * 7, 100, 51 + 6 * 2 * 2 * 3)  # 400 frames -> starts 0,50,...,300
    assert dm.train_class_counts.sum() > 0.5 * 800
    x, y = next(iter(dm.train_dataloader()))[:2]
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
