"""Real Hydra multiruns in subprocesses: the joblib launcher with a deliberately failing run,
aggregated by `dbm-report`; the submitit path through submitit_local."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from cli_process import run_cli

from dbm_lightning.cli.report import main as report_main

TINY = [
    "data.mice=2",
    "data.days=2",
    "data.frames=400",
    "data.window=100",
    "data.stride=100",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.enable_progress_bar=false",
]


def _dbm_train(args: list[str], timeout: int = 420) -> subprocess.CompletedProcess:
    return run_cli("dbm-train", args, timeout=timeout)


@pytest.mark.slow
def test_joblib_multirun_with_a_failing_run_is_reported(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = _dbm_train(
        [
            "-m",
            "hydra/launcher=parallel",
            "hydra.launcher.n_jobs=2",
            f"hydra.sweep.dir={sweep_dir}",
            "optim.lr=0.003,-1",  # a negative learning rate makes Adam refuse: a failing run
            "seed=0,1",
            *TINY,
        ]
    )
    run_dirs = sorted(p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml"))
    assert len(run_dirs) == 4, proc.stderr[-3000:]
    finished = [d for d in run_dirs if (d / "metrics.json").is_file()]
    failed = [d for d in run_dirs if (d / "failed.json").is_file()]
    assert len(finished) == 2 and len(failed) == 2, proc.stderr[-3000:]
    # every run of a sweep logs under the sweep's root, so TensorBoard compares them
    assert len(list(sweep_dir.rglob("events.out.tfevents.*"))) >= 2

    assert report_main([str(sweep_dir)]) == 0
    table = pd.read_csv(sweep_dir / "report.csv")
    assert list(table["config"]) == ["optim.lr=0.003"]
    assert int(table["n_runs"].iloc[0]) == 2
    accs = [json.loads((d / "metrics.json").read_text())["val_best"]["acc"] for d in finished]
    assert math.isclose(table["val_best/acc mean"].iloc[0], sum(accs) / 2, rel_tol=1e-9)
    assert bool(table["best"].iloc[0])
    failed_table = pd.read_csv(sweep_dir / "failed.csv")
    assert len(failed_table) == 2
    assert failed_table["error"].str.contains("optim.lr: must be > 0").all()
    markdown = (sweep_dir / "report.md").read_text()
    assert "(best)" in markdown and "Failed runs" in markdown
    assert (sweep_dir / "comparison.png").stat().st_size > 5000


@pytest.mark.slow
def test_submitit_local_launcher_runs(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    proc = _dbm_train(
        [
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            f"hydra.sweep.dir={sweep_dir}",
            "seed=3",
            *TINY,
        ]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = list(sweep_dir.rglob("metrics.json"))
    assert len(metrics) == 1
    assert json.loads(metrics[0].read_text())["seed"] == 3
