"""The `dbm-train` app: composed Hydra configs, fast_dev_run for every model x feature set,
a short real training, checkpoint reload and the TensorBoard event files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_process import run_cli

from dbm_lightning.build import build_datamodule
from dbm_lightning.cli.config import compose_config
from dbm_lightning.training import run_training


@pytest.mark.parametrize("model", ["dbm_baseline", "dbm_modified", "bilstm", "tcn"])
@pytest.mark.parametrize("features", ["dbm", "positional", "coordinates"])
def test_fast_dev_run_every_model_and_feature_set(
    tmp_path: Path, model: str, features: str, tiny_data: list[str]
) -> None:
    cfg = compose_config(
        [f"model={model}", f"features={features}", "trainer.fast_dev_run=true", *tiny_data]
    )
    metrics = run_training(cfg, tmp_path)
    assert (tmp_path / "metrics.json").is_file()
    assert metrics["n_features"] > 51 if features != "dbm" else metrics["n_features"] == 51
    assert (
        json.loads((tmp_path / "metrics.json").read_text())["class_names"] == metrics["class_names"]
    )


def test_pe_L_changes_feature_count(tmp_path: Path, tiny_data: list[str]) -> None:
    counts = {}
    for L in (0, 3):
        cfg = compose_config([f"features.pe_L={L}", *tiny_data])
        dm = build_datamodule(cfg)
        dm.setup("fit")
        counts[L] = dm.n_features
    # gamma(p) adds 2L values for x and for y of each of the 6 body parts
    assert counts[3] - counts[0] == 6 * 2 * 2 * 3


def test_dbm_mat_config_uses_embedded_labels() -> None:
    cfg = compose_config(["data=dbm_mat", "data.path=/x.mat"])
    assert cfg.labels.kind == "embedded"
    assert cfg.data.window == 800
    cfg = compose_config(["data=dbm_mat", "data.path=/x.mat", "labels=operant_box"])
    assert cfg.labels.kind == "rules"


@pytest.mark.slow
def test_short_training_beats_majority_and_reloads(tmp_path: Path) -> None:
    """A real (short) training on held-out synthetic sessions beats the majority class clearly;
    the best checkpoint reloads to identical predictions; TensorBoard files hold hparams."""
    cfg = compose_config(
        [
            "data.mice=4",
            "data.days=2",
            "data.frames=1500",
            "split=sessions",
            "split.val_fraction=0.25",
            "split.test_fraction=0.0",
            "trainer.max_epochs=12",
            "trainer.enable_progress_bar=false",
            "features=coordinates",
        ]
    )
    metrics = run_training(cfg, tmp_path)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    counts = np.zeros(dm.n_classes, dtype=np.int64)
    for _, y in dm.val_dataloader():
        y = y[y >= 0]
        counts += np.bincount(y.numpy(), minlength=dm.n_classes)
    majority = counts.max() / counts.sum()
    assert metrics["val_best"]["acc"] > majority + 0.15, (metrics["val_best"], majority)

    from dbm_lightning.models import DBMClassifier

    best = DBMClassifier.load_from_checkpoint(metrics["best_checkpoint"])
    again = DBMClassifier.load_from_checkpoint(metrics["best_checkpoint"])
    best.eval()
    again.eval()
    x, _ = next(iter(dm.val_dataloader()))[:2]
    with torch.no_grad():
        assert torch.equal(best(x), again(x))

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(metrics["tensorboard_dir"], size_guidance={"tensors": 0, "scalars": 0})
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"hp/val_acc_best_epoch", "hp/val_macro_f1_last_epoch"} <= scalars
    assert "hp_metric" not in scalars
    # one value per hp/ metric, at the last epoch: no placeholder
    assert [e.step for e in acc.Scalars("hp/val_acc_best_epoch")] == [metrics["epochs"] - 1]
    assert acc.Scalars("hp/val_acc_best_epoch")[0].value == pytest.approx(
        metrics["val_best"]["acc"]
    )
    assert [e.step for e in acc.Scalars("val/acc")] == list(range(metrics["epochs"]))


def test_dbm_train_console_script(tmp_path: Path, tiny_data: list[str]) -> None:
    """The installed `dbm-train` script, started as users start it, writes metrics.json and the
    resolved config (the other command tests fork it from a server, tests/cli_process.py)."""
    out = tmp_path / "run"
    cmd = [
        str(Path(sys.executable).parent / "dbm-train"),
        *tiny_data,
        "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false",
        f"hydra.run.dir={out}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "metrics.json").is_file()
    assert (out / ".hydra" / "config.yaml").is_file()
    assert "TensorBoard logs:" in proc.stdout


def test_resume_from_last_checkpoint(tmp_path: Path, tiny_data: list[str]) -> None:
    """`ckpt_path=.../last.ckpt` continues training where the first run stopped."""
    first = run_training(
        compose_config([*tiny_data, "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]),
        tmp_path / "first",
    )
    assert first["epochs"] == 1
    resumed = run_training(
        compose_config(
            [
                *tiny_data,
                "trainer.max_epochs=3",
                "trainer.enable_progress_bar=false",
                f"ckpt_path={first['last_checkpoint']}",
            ]
        ),
        tmp_path / "resumed",
    )
    assert resumed["epochs"] == 3
    # only the two missing epochs were trained, each on the same frames as the first run's;
    # the frame counter travels in the checkpoint, so the total covers all three epochs
    assert resumed["train_frames"] == 3 * first["train_frames"]


def test_dlc_folder_data_config(tmp_path: Path) -> None:
    """`data=dlc data.path=FOLDER` trains on a folder of DeepLabCut files (written by dbm-synth)."""
    from dbm_lightning.cli.synth import main as synth_main

    folder = tmp_path / "dlc"
    assert synth_main(["--out", str(folder), "--mice", "2", "--days", "2", "--frames", "500"]) == 0
    cfg = compose_config(
        ["data=dlc", f"data.path={folder}", "trainer.fast_dev_run=true", "data.window=100"]
    )
    metrics = run_training(cfg, tmp_path / "run")
    assert sum(metrics["sessions"].values()) == 4
    assert metrics["skipped_sessions"] == []


def test_dbm_train_bad_input_is_one_clear_line(tmp_path: Path) -> None:
    """A truncated DeepLabCut file or a missing data.path: exit 2, the problem, no traceback."""
    from dbm_lightning.cli.synth import main as synth_main

    folder = tmp_path / "dlc"
    synth_main(["--out", str(folder), "--mice", "1", "--days", "2", "--frames", "300"])
    bad = folder / "m01_day1.csv"
    bad.write_text(bad.read_text()[:2000])  # cut mid-row, as a copy that did not finish
    base = ["data=dlc"]
    for args, expected in (
        ([f"data.path={folder}", f"hydra.run.dir={tmp_path / 'a'}"], [str(bad), "truncated"]),
        ([f"hydra.run.dir={tmp_path / 'b'}"], ["data.path is required"]),
    ):
        proc = run_cli("dbm-train", [*base, *args], timeout=120)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr
        for text in expected:
            assert text in proc.stderr


def test_same_seed_same_run_seed_zero_honoured(tmp_path: Path, tiny_data: list[str]) -> None:
    """seed=0 is a seed like any other: two runs with it train identical weights; seed=1 not."""
    overrides = [*tiny_data, "trainer.max_epochs=1", "microstates.enabled=false"]
    weights = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        metrics = run_training(compose_config([*overrides, f"seed={seed}"]), tmp_path / name)
        state = torch.load(metrics["last_checkpoint"], weights_only=False)["state_dict"]
        weights[name] = torch.cat([v.flatten().float() for v in state.values()])
    assert torch.equal(weights["a"], weights["b"])
    assert not torch.equal(weights["a"], weights["c"])
