"""``trainer=ddp``: two CPU processes train one model through ``dbm-train`` (Lightning's
subprocess launcher runs the command again as rank 1), and their validation metrics, gathered
across the processes, equal one process's on the same model and windows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from helpers import TINY_DATA

from dbm_lightning.build import build_datamodule
from dbm_lightning.models import DBMClassifier
from dbm_lightning.runs import RunDir

pytestmark = pytest.mark.slow


def test_two_processes_give_one_process_validation_metrics(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = [
        "trainer=ddp",
        *TINY_DATA,
        "data.eval_stride=50",  # overlapping validation windows, averaged per frame
        "data.batch_size=2",  # 7 validation windows: 4 on one process, 3 on the other
        "model=bilstm",
        "loss.class_weighting=none",  # the loss of a batch then sums over its frames
        "trainer.max_epochs=2",
        "microstates.enabled=false",
        f"hydra.run.dir={out}",
    ]
    script = Path(sys.executable).parent / "dbm-train"
    done = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sync_dist" not in done.stderr  # the metrics are gathered already: no advice
    metrics = json.loads((out / "metrics.json").read_text())
    assert (out / "train_ddp_process_1.log").is_file()  # rank 1 ran beside rank 0
    assert not (out / ".ddp_plan.json").exists()

    # the same model (the last epoch's weights) and windows, one process
    run = RunDir(out)
    dm = build_datamodule(run.read_config())
    dm.setup("fit")
    module = DBMClassifier.from_checkpoint_file(run.last_checkpoint)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    one = trainer.validate(module, datamodule=dm, verbose=False)[0]
    assert len(dm.datasets["val"]) == 7
    for key in ("val/acc", "val/balanced_acc", "val/macro_f1", "val/f1/rest"):
        assert metrics["val"][key] == pytest.approx(one[key], abs=1e-7), key
    assert metrics["val"]["val/loss"] == pytest.approx(one["val/loss"], rel=1e-5)
    # both processes' training frames are counted (a window repeated to even the shares)
    train = dm.datasets["train"]
    valid = [int((train[i].y >= 0).sum()) for i in range(len(train))]
    epochs = metrics["epochs"]
    assert sum(valid) * epochs <= metrics["train_frames"] <= (sum(valid) + max(valid)) * epochs
