"""The classic baseline arm (`dbm_lightning.models.classic`): rolling features against a naive
reference, the same metrics.json layout and metric values as the deep runs, saved model,
seeding, training-frame subsampling, a deep + classic Hydra multirun through `dbm-report`."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from cli_process import run_cli
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from dbm_lightning.build import build_datamodule
from dbm_lightning.cli.config import compose_config
from dbm_lightning.cli.report import main as report_main
from dbm_lightning.errors import ConfigError
from dbm_lightning.models.classic import (
    CLASSIC_MODELS,
    RandomForestModel,
    load_classic,
    rolling_blocks,
    rolling_feature_names,
    rolling_features,
)
from dbm_lightning.prediction.bouts import merge_short_bouts, smooth_probabilities
from dbm_lightning.runs import RunDir
from dbm_lightning.training import run_training

TINY = [
    "data.mice=2",
    "data.days=2",
    "data.frames=600",
    "data.window=100",
    "data.stride=50",
    "split.val_fraction=0.25",
    "split.test_fraction=0.25",
    "microstates.enabled=false",
]
RF = ["model=random_forest", "model.n_estimators=15"]


# ------------------------------------------------------------------------- rolling features


def _naive(x: np.ndarray, windows: tuple[int, ...], valid: np.ndarray) -> np.ndarray:
    """Loop reference: centred window [t - w//2, t + (w-1)//2] clipped to the session, over
    the valid frames in it (population std), 0 where none; invalid frames' own values 0."""
    t_len, f = x.shape
    own = np.where(valid[:, None], x, 0.0)
    cols = [own]
    for w in windows:
        mean = np.zeros((t_len, f))
        std = np.zeros((t_len, f))
        for t in range(t_len):
            lo, hi = max(t - w // 2, 0), min(t + (w - 1) // 2 + 1, t_len)
            rows = [r for r in range(lo, hi) if valid[r]]
            if rows:
                mean[t] = x[rows].mean(axis=0)
                std[t] = x[rows].std(axis=0)
        cols += [mean, std]
    return np.concatenate(cols, axis=1)


def test_rolling_features_equal_a_naive_reference_edges_included() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(37, 3)) * 2 + 1
    windows = (1, 4, 5, 15, 45)  # even, odd, and longer than the session (edges everywhere)
    all_valid = np.ones(37, dtype=bool)
    got = rolling_features(x, windows)
    assert got.dtype == np.float32 and got.shape == (37, 3 * (1 + 2 * len(windows)))
    np.testing.assert_allclose(got, _naive(x, windows, all_valid), rtol=1e-5, atol=1e-5)
    # pandas' centred rolling with shrinking edges, as documented
    ref = pd.DataFrame(x).rolling(4, center=True, min_periods=1)
    np.testing.assert_allclose(got[:, 9:12], ref.mean().to_numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, 12:15], ref.std(ddof=0).to_numpy(), rtol=1e-4, atol=1e-5)

    # invalid frames (mask and NaN) are left out of the statistics
    valid = all_valid.copy()
    valid[[0, 5, 6, 7, 20]] = False
    x_nan = x.copy()
    x_nan[30, 1] = np.nan
    expected = _naive(np.nan_to_num(x_nan), windows, valid & (np.arange(37) != 30))
    got = rolling_features(x_nan, windows, valid)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    # blocks with context give the whole-session result
    blocks = np.concatenate([b for _, b in rolling_blocks(x_nan, windows, valid, chunk=6)])
    np.testing.assert_allclose(blocks, got, rtol=1e-6, atol=1e-6)
    assert (got[:, 6:9] == 0).all()  # window 1: a std of exactly 0, not rounding noise

    names = rolling_feature_names(["a", "b", "c"], (5, 15))
    assert len(names) == rolling_features(x, (5, 15)).shape[1] == 15
    assert names[:5] == ["a", "b", "c", "a_mean5", "b_mean5"] and names[-1] == "c_std15"
    assert rolling_features(x, ()).shape == (37, 3)
    with pytest.raises(ValueError, match="positive integers"):
        rolling_features(x, (0, 3))


# ------------------------------------------------------------------------- subsampling


class _Recorder:
    """Stands in for the scikit-learn estimator: keeps what it was fitted on."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> _Recorder:
        self.X, self.y = X.copy(), y.copy()
        self.classes_ = np.unique(y)
        return self


class _RecordingForest(RandomForestModel):
    def make_estimator(self, seed: int) -> _Recorder:
        return _Recorder()


def _sessions() -> list[SimpleNamespace]:
    """Three sessions whose single feature is the global frame number; every third frame
    unlabelled."""
    out, start = [], 0
    for n in (50, 80, 30):
        frames = np.arange(start, start + n, dtype=np.float32)
        labels = np.where(frames % 3 == 0, -1, (frames % 2).astype(np.int64))
        out.append(SimpleNamespace(features=frames[:, None], labels=labels, valid=np.ones(n, bool)))
        start += n
    return out


def test_max_train_frames_subsample_is_seeded() -> None:
    sessions = _sessions()
    labelled = np.concatenate([s.features[s.labels >= 0, 0] for s in sessions])

    def fitted(seed: int, limit: int | None) -> _Recorder:
        model = _RecordingForest(rolling_windows=[], max_train_frames=limit)
        model.fit(sessions, n_classes=2, seed=seed)
        assert model.train_frames_ == len(model.estimator_.y)
        return model.estimator_

    full = fitted(0, None)
    np.testing.assert_array_equal(full.X[:, 0], labelled)  # every labelled frame, in order
    sub = fitted(0, 40)
    frames = sub.X[:, 0]
    assert len(frames) == 40 and len(np.unique(frames)) == 40
    assert np.isin(frames, labelled).all()
    np.testing.assert_array_equal(sub.y, frames.astype(np.int64) % 2)  # labels follow rows
    np.testing.assert_array_equal(fitted(0, 40).X, sub.X)  # same seed, same subsample
    assert not np.array_equal(fitted(1, 40).X, sub.X)
    assert len(fitted(0, 10_000).y) == len(labelled)  # limit above the count: all frames


# ------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("classic")
    classic_cfg = compose_config([*RF, *TINY])
    deep_cfg = compose_config(
        [
            *TINY,
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "trainer.enable_progress_bar=false",
            "logger=none",
        ]
    )
    return {
        "classic_cfg": classic_cfg,
        "classic": run_training(classic_cfg, root / "rf"),
        "classic_dir": root / "rf",
        "deep": run_training(deep_cfg, root / "deep"),
        "root": root,
    }


def test_metrics_json_has_the_deep_layout(runs: dict) -> None:
    classic, deep = runs["classic"], runs["deep"]
    on_disk = json.loads((runs["classic_dir"] / "metrics.json").read_text())
    assert on_disk["val"] == classic["val"]
    assert set(deep) <= set(classic) and set(classic) - set(deep) == {"model_file"}
    for section in ("val", "test", "val_best"):
        assert set(classic[section]) == set(deep[section]), section
        assert classic[section], section
    assert classic["val_best"] == {
        "acc": classic["val"]["val/acc"],
        "macro_f1": classic["val"]["val/macro_f1"],
        "balanced_acc": classic["val"]["val/balanced_acc"],
        "epoch": None,
        "monitor": "val/acc",
        "score": classic["val"]["val/acc"],
    }
    for key in ("sessions", "session_split", "n_classes", "class_names", "seed"):
        assert classic[key] == deep[key], key
    assert classic["n_features"] == 51 * 7  # 51 DBM distances, + mean and std over 3 windows
    assert classic["epochs"] is None and classic["microstates"] is None
    assert classic["train_frames"] > 0 and classic["train_frames_per_s"] > 0
    assert Path(classic["model_file"]) == RunDir(runs["classic_dir"]).model_file
    assert (runs["classic_dir"] / "data_summary.json").is_file()
    assert (runs["classic_dir"] / "config.yaml").is_file()

    # TensorBoard: the hp/ metrics of every run, with the run's values
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(classic["tensorboard_dir"], size_guidance={"scalars": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    hp = {"hp/val_acc_last_epoch", "hp/val_macro_f1_best_epoch", "hp/test_acc", "test/acc"}
    assert hp <= scalars
    assert [e.value for e in acc.Scalars("hp/val_acc_last_epoch")] == [
        pytest.approx(classic["val"]["val/acc"])
    ]


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_val_metrics_equal_the_saved_models_predictions(runs: dict) -> None:
    model = load_classic(runs["classic"]["model_file"])
    assert isinstance(model, CLASSIC_MODELS["random_forest"])
    dm = build_datamodule(runs["classic_cfg"])
    dm.setup("fit")
    for stage in ("val", "test"):
        sessions = dm.predict_sessions(split=stage)
        preds = [model.predict(s.features, s.valid) for s in sessions]
        y_true = np.concatenate([s.labels[s.labels >= 0] for s in sessions])
        y_pred = np.concatenate([p[s.labels >= 0] for p, s in zip(preds, sessions, strict=True)])
        got = runs["classic"][stage]
        assert math.isclose(got[f"{stage}/acc"], accuracy_score(y_true, y_pred), abs_tol=1e-6)
        assert math.isclose(
            got[f"{stage}/balanced_acc"], balanced_accuracy_score(y_true, y_pred), abs_tol=1e-6
        )
        assert math.isclose(
            got[f"{stage}/macro_f1"], f1_score(y_true, y_pred, average="macro"), abs_tol=1e-6
        )
        per_class = f1_score(
            y_true, y_pred, labels=range(dm.n_classes), average=None, zero_division=0
        )
        for name, value in zip(dm.class_names, per_class, strict=True):
            assert math.isclose(got[f"{stage}/f1/{name}"], value, abs_tol=1e-6)


def test_seeded_runs_repeat_and_other_seeds_differ(runs: dict, tmp_path: Path) -> None:
    same = run_training(compose_config([*RF, *TINY, "logger=none"]), tmp_path / "same")
    assert same["val"] == runs["classic"]["val"] and same["test"] == runs["classic"]["test"]
    # another model seed on the same split (the split follows the run seed by default)
    other = run_training(
        compose_config([*RF, *TINY, "logger=none", "seed=1", "split.seed=0"]), tmp_path / "other"
    )
    assert other["session_split"] == runs["classic"]["session_split"]
    dm = build_datamodule(runs["classic_cfg"])
    dm.setup("fit")
    s = dm.predict_sessions(split="val")[0]
    first = load_classic(runs["classic"]["model_file"]).predict_proba(s.features, s.valid)
    again = load_classic(same["model_file"]).predict_proba(s.features, s.valid)
    changed = load_classic(other["model_file"]).predict_proba(s.features, s.valid)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, changed)


def test_max_train_frames_and_gradient_boosting_run(runs: dict, tmp_path: Path) -> None:
    summary = json.loads((runs["classic_dir"] / "data_summary.json").read_text())
    assert runs["classic"]["train_frames"] == summary["splits"]["train"]["labelled_frames"]
    metrics = run_training(
        compose_config(
            [
                "model=gradient_boosting",
                "model.max_iter=5",
                "model.max_train_frames=300",
                *TINY,
                "logger=none",
            ]
        ),
        tmp_path,
    )
    assert metrics["train_frames"] == 300
    assert set(metrics["val"]) == set(runs["classic"]["val"])
    assert load_classic(metrics["model_file"]).estimator_.n_iter_ == 5


def test_ckpt_path_with_a_classic_model_is_a_clear_error(tmp_path: Path) -> None:
    cfg = compose_config([*RF, *TINY, "ckpt_path=last"])
    with pytest.raises(ConfigError) as info:
        run_training(cfg, tmp_path / "run")
    assert info.value.key == "ckpt_path"
    assert "random_forest is fitted in one go and cannot resume" in str(info.value)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------- sweep + report


def test_deep_and_classic_multirun_side_by_side_in_the_report(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m",
        "model=dbm_baseline,random_forest",
        "seed=0,1",
        f"hydra.sweep.dir={sweep_dir}",
        *TINY,
        "data.frames=400",
        "data.stride=100",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.enable_progress_bar=false",
    ]
    proc = run_cli("dbm-train", args, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list(sweep_dir.rglob("metrics.json"))) == 4, proc.stderr[-3000:]
    assert report_main([str(sweep_dir)]) == 0
    table = pd.read_csv(sweep_dir / "report.csv").set_index("config")
    assert set(table.index) == {"model=dbm_baseline", "model=random_forest"}
    assert (table["n_runs"] == 2).all()
    for column in ("val_best/acc mean", "val/acc mean", "val/macro_f1 mean", "test/acc mean"):
        assert table[column].notna().all() and (table[column] > 0).all(), column
    markdown = (sweep_dir / "report.md").read_text()
    assert "`model=dbm_baseline`" in markdown and "`model=random_forest`" in markdown


def test_dbm_predict_applies_a_classic_run_to_a_new_session(runs: dict, tmp_path: Path) -> None:
    """`dbm-predict --ckpt RUN/model.joblib` labels a DeepLabCut file frame by frame with the
    forest's predictions on the training pipeline's features (no microstates: -1)."""
    from dbm_lightning.data import prepare_session
    from dbm_lightning.io import load_dlc
    from dbm_lightning.synthetic import SyntheticConfig, ensure_dataset

    cfg = runs["classic_cfg"]
    data = ensure_dataset(
        SyntheticConfig(mice=cfg.data.mice, days=cfg.data.days, frames=cfg.data.frames, seed=0)
    )
    source = data / "m01_day1.csv"
    out = tmp_path / "pred"
    done = run_cli(
        "dbm-predict",
        [
            "--ckpt",
            runs["classic"]["model_file"],
            "--input",
            str(source),
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert done.returncode == 0, done.stderr
    frames = pd.read_csv(out / "m01_day1.frames.csv")
    model = load_classic(runs["classic"]["model_file"])
    features, valid = prepare_session(load_dlc(source), model.pipeline_state)
    # with the post-processing the run chose on its validation sessions (stored in the model)
    chosen = model.postprocess
    probs = smooth_probabilities(model.predict_proba(features, valid), chosen["smoothing"])
    pred = merge_short_bouts(probs.argmax(axis=1), chosen["min_bout"])
    expected = np.asarray(model.class_names)[pred]
    assert len(frames) == cfg.data.frames
    assert (frames["label"].to_numpy() == expected).all()
    assert (frames["microstate"] == -1).all()
    # dbm-summarise reads a classic model's prediction too; it has no microstates to count
    from dbm_lightning.errors import DataFormatError
    from dbm_lightning.summarise import summarise

    record = summarise(out)
    budget = pd.read_csv(out / "summary" / "time_budget.csv")
    assert budget.groupby("behaviour")["frames"].sum().to_dict() == {
        name: int((expected[frames["valid"].to_numpy()] == name).sum())
        for name in model.class_names
    }
    assert record["sessions"] == 1 and record["statistics_skipped"]
    with pytest.raises(DataFormatError, match="no microstates"):
        summarise(out, tmp_path / "ms", unit="microstate")


def test_classic_run_explains_what_it_lacks(runs: dict) -> None:
    """dbm-plots on a classic run says why there is nothing to plot."""

    with pytest.raises(FileNotFoundError, match="classic-arm run"):
        RunDir(runs["classic_dir"]).find_checkpoint()


def test_augment_with_a_classic_model_is_ignored_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose_config([*RF, *TINY, "augment=small", "model.n_estimators=3", "logger=none"])
    with caplog.at_level("WARNING", logger="dbm_lightning.training"):
        run_training(cfg, tmp_path)
    assert "pose augmentation applies to the deep models" in caplog.text
