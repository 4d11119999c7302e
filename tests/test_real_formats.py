"""The files as users have them, end to end: a pair-behaviour model trained on rat_social's
multi-animal DeepLabCut .csv.xz files with their Caltech annotator labels, applied to a
held-out video by dbm-predict and scored by dbm-evaluate; ethome's BORIS session likewise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dbm_lightning.cli.config import compose_config
from dbm_lightning.cli.evaluate import main as evaluate_main
from dbm_lightning.cli.predict import main as predict_main
from dbm_lightning.cli.summarise import main as summarise_main
from dbm_lightning.training import run_training

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

QUICK = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "logger=none"]


def _rat_files(shared: Path, ids: list[str]) -> list[Path]:
    folder = shared / "rat_social" / "dlc"
    return [next(folder.glob(f"{i}DLC_*.csv.xz")) for i in ids]


def test_rat_pairs_train_predict_and_evaluate(shared_data: Path, tmp_path: Path, capsys) -> None:
    manifest = tmp_path / "manifest.csv"
    rows = [
        f"{p},,,,{p.name.split('DLC')[0]}" for p in _rat_files(shared_data, ["1", "2", "3", "5"])
    ]
    manifest.write_text("path,mouse,day,condition,name\n" + "\n".join(rows) + "\n")
    cfg = compose_config(
        [
            "experiment=rat_social",
            f"data.path={shared_data / 'rat_social' / 'dlc'}",
            f"data.manifest={manifest}",
            "split.n_folds=4",
            *QUICK,
        ]
    )
    run = tmp_path / "run"
    metrics = run_training(cfg, run)
    assert metrics["class_names"] == ["social", "nonsocial", "aggression"]
    assert metrics["n_features"] == 2 * (6 + 3 + 1) + 9 + 3 + 6  # ego per rat + social block
    held = metrics["heldout"]
    assert 0.0 <= held["heldout/macro_f1"] <= 1.0 and held["heldout/scored_frames"] > 5000

    # the run's held-out predictions, scored again from the files by dbm-evaluate
    labels = ["--labels", "../annotations/{base}_annot.txt", "--ignore", "base"]
    assert evaluate_main([str(run / "heldout" / "predictions"), *labels]) == 0
    again = json.loads(
        (run / "heldout" / "predictions" / "evaluation" / "evaluation.json").read_text()
    )
    assert again["summary"]["macro_f1"] == pytest.approx(held["heldout/macro_f1"], abs=1e-9)

    # a video the run never saw, through dbm-predict with the stored post-processing
    (new_video,) = _rat_files(shared_data, ["10"])
    out = tmp_path / "pred"
    assert predict_main(["--ckpt", str(run / "checkpoints" / "best.ckpt"), "--input",
                         str(new_video), "--out", str(out), "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    stored = held["postprocess"]
    assert (summary["smoothing"], summary["min_bout"]) == (stored["smoothing"], stored["min_bout"])
    assert summary["sessions"][0]["frames"] == 14957
    assert evaluate_main([str(out), *labels]) == 0
    scored = json.loads((out / "evaluation" / "evaluation.json").read_text())["summary"]
    assert scored["frames"] == 14957 and scored["unlabelled"] > 0 and scored["scored"] > 5000
    assert "macro F1" in capsys.readouterr().out

    # the pair's time budget and the snippets of each predicted behaviour (both rats drawn)
    assert summarise_main([str(out), "--snippets", "all", "--snippet-bouts", "2"]) == 0
    budget = pd.read_csv(out / "summary" / "time_budget.csv")
    assert budget["behaviour"].tolist() == ["social", "nonsocial", "aggression"]
    assert budget["percent_time"].sum() == pytest.approx(100.0)
    seen = budget.loc[budget["bouts"] > 0, "behaviour"]
    assert sorted(p.stem for p in (out / "summary" / "snippets").iterdir()) == sorted(seen)
    assert "Not computed" in (out / "summary" / "summary.md").read_text()


def test_ethome_boris_session_trains_and_predicts(shared_data: Path, tmp_path: Path) -> None:
    dlc = shared_data / "ethome_boris" / "dlc"
    cfg = compose_config(
        [
            "data=dlc",
            f"data.path={dlc}",
            "data.pattern='{stem}'",
            "labels=from_files",
            "labels.pattern='../boris/{base}_reencode.csv'",
            "labels.subject=adult",
            "features=egocentric",
            "features.social=true",
            "features.ego_front=nose",
            "features.ego_centre=neck",
            "split.val_fraction=0",
            "microstates.enabled=false",
            "model=bilstm",
            *QUICK,
        ]
    )
    run = tmp_path / "run"
    metrics = run_training(cfg, run)
    assert metrics["class_names"] == ["interact", "other"]
    summary = json.loads((run / "data_summary.json").read_text())
    counts = dict(zip(summary["class_names"], summary["train_class_counts"], strict=True))
    # 663 interact frames in the BORIS file; the ones with usable pose are trained on
    assert 300 < counts["interact"] <= 663 and counts["interact"] + counts["other"] <= 5700
    out = tmp_path / "pred"
    ckpt = run / "checkpoints" / "last.ckpt"
    assert predict_main(["--ckpt", str(ckpt), "--input", str(dlc), "--out", str(out),
                         "--no-progress"]) == 0  # fmt: skip
    table = np.loadtxt(next(out.glob("*.frames.csv")), delimiter=",", skiprows=1, usecols=0)
    assert table.shape == (5700,)
