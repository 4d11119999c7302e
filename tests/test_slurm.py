"""A real SLURM cluster (one node on this machine, scripts/slurm_cluster.sh): a sweep through
``hydra/launcher=slurm`` (submitit -> sbatch -> jobs) with one job pre-empted mid-run, which
SLURM requeues and which resumes from last.ckpt to the metrics of a run never stopped; then
``dbm-report`` on the sweep. Skipped, with the reason, where the packages are missing."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from cli_process import run_cli, start_cli

from dbm_lightning.cli.config import compose_config
from dbm_lightning.cli.report import main as report_main
from dbm_lightning.training import run_training

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_cluster.sh"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
# one test process runs this file (pytest-xdist --dist loadfile): the tests share the queue

LONG = [
    "data.mice=3",
    "data.days=1",
    "data.frames=3000",
    "data.window=100",
    "data.stride=50",
    "trainer.max_epochs=6",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "microstates.enabled=false",
    "split=sessions",
]
RESULTS = ("val", "val_best", "test", "epochs", "train_frames")


@pytest.fixture(scope="module")
def slurm_conf(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The cluster's SLURM_CONF: one already running (``$SLURM_CONF`` answers), else one this
    module starts and stops."""
    if (
        os.environ.get("SLURM_CONF")
        and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    ):
        yield os.environ["SLURM_CONF"]
        return
    folder = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "DBM_SLURM_DIR": str(folder)}
    proc = subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, text=True, env=env)
    if proc.returncode == 3:
        pytest.skip(f"no SLURM here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    try:
        yield str(folder / "slurm.conf")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, check=False)


def _squeue(env: dict) -> list[tuple[str, str]]:
    out = subprocess.run(
        ["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, env=env
    ).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def test_a_slurm_sweep_survives_a_preemption(slurm_conf: str, tmp_path: Path) -> None:
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    sweep_dir = tmp_path / "sweep"
    cmd = [
        "-m", "hydra/launcher=slurm",
        "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
        "hydra.launcher.timeout_min=10", "hydra.launcher.array_parallelism=1",
        f"hydra.sweep.dir={sweep_dir}", "seed=0,1", *LONG,
    ]  # fmt: skip
    proc = start_cli("dbm-train", cmd, env=env)
    # pre-empt the seed-0 job once it has a checkpoint: submitit's warning signal (USR2)
    deadline = time.monotonic() + 240
    while not list(sweep_dir.glob("*seed=0*/checkpoints/last.ckpt")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the seed-0 job never wrote a checkpoint"
        time.sleep(0.1)
    running = [job for job, state in _squeue(env) if state == "RUNNING"]
    assert len(running) == 1
    subprocess.run(["scancel", "--signal=USR2", running[0]], check=True, env=env)
    # SLURM holds a requeued job for two minutes: release it at once (the seed-1 job waits
    # too, for the array's one-at-a-time limit: it is not the one to release)
    deadline = time.monotonic() + 60
    while (running[0], "PENDING") not in _squeue(env):
        assert time.monotonic() < deadline, "the pre-empted job was not requeued"
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"JobId={running[0]}", "StartTime=now"], env=env)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]

    runs = sorted(p.parent for p in sweep_dir.glob("*/metrics.json"))
    assert len(runs) == 2 and not list(sweep_dir.glob("*/failed.json"))
    seed0 = next(r for r in runs if "seed=0" in r.name)
    log = (seed0 / "train.log").read_text()
    assert "interrupted; resuming from" in log  # the requeued job went on from last.ckpt
    reference = run_training(compose_config([*LONG, "seed=0"]), tmp_path / "reference")
    metrics = json.loads((seed0 / "metrics.json").read_text())
    assert {k: metrics[k] for k in RESULTS} == {k: reference[k] for k in RESULTS}

    assert report_main([str(sweep_dir)]) == 0
    table = pd.read_csv(sweep_dir / "report.csv")
    assert list(table["n_runs"]) == [2]


def test_a_ddp_run_on_slurm_takes_one_task_per_process(slurm_conf: str, tmp_path: Path) -> None:
    """``trainer=ddp`` through ``hydra/launcher=slurm`` with ``tasks_per_node=2``: SLURM starts
    the two processes, Lightning joins them (rank 1 says so in its task log), the main task
    alone writes the run, counting both tasks' training frames."""
    env = {**os.environ, "SLURM_CONF": slurm_conf}
    sweep_dir = tmp_path / "sweep"
    args = [
        "-m", "hydra/launcher=slurm", "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
        "hydra.launcher.timeout_min=10", "trainer=ddp", f"hydra.sweep.dir={sweep_dir}",
        *LONG[:5], "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
        "microstates.enabled=false", "split=sessions",
    ]  # fmt: skip
    done = run_cli("dbm-train", args, env=env, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = [p.parent for p in sweep_dir.glob("*/metrics.json")]
    logs = sorted(sweep_dir.glob(".submitit/*/*_log.err"))
    assert len(logs) == 2  # one per task
    rank1 = next(log for log in logs if log.name.endswith("_1_log.err")).read_text()
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in rank1 and "Traceback" not in rank1
    metrics = json.loads((run / "metrics.json").read_text())
    one_process = run_training(
        compose_config([*LONG[:5], "trainer.max_epochs=1", "logger=none", "split=sessions"]),
        tmp_path / "one",
    )
    # two tasks saw every training window once per epoch (one repeated to even the shares)
    assert metrics["train_frames"] >= 2 * one_process["train_frames"]
    assert not (run / ".ddp_plan.json").exists()
