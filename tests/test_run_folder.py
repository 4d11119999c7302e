"""A run never loses another run's results: a finished or interrupted run's folder is refused
(unless resumed or overwritten) with nothing touched, the outcome is cleared only once the new
run has set up its data, a second live run is locked out, best.ckpt is always the model
metrics.json names, SIGTERM/SIGINT end a run with a non-zero status and failed.json, and a
re-launched sweep skips what finished and resumes what was cut short."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_process import CliProcess, run_cli, start_cli
from helpers import TINY_DATA

from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.cli.config import compose_config
from dbm_lightning.errors import ConfigError, DataFormatError, RunFolderError
from dbm_lightning.run_guard import RunLock
from dbm_lightning.runs import RunDir
from dbm_lightning.training import run_training

TINY = [
    *TINY_DATA,
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "microstates.enabled=false",
    "split=sessions",
]

LONG = [*TINY[:2], "data.frames=3000", *TINY[3:5], "trainer.max_epochs=6", *TINY[6:]]
"""Long enough (several seconds per epoch) to be stopped from outside between epochs."""


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file of a run folder (Hydra's and the lock aside) with its content's hash."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".hydra" not in p.parts and p.name not in (".lock", "train.log")
    }


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny run (its folder is copied by each test that changes it)."""
    folder = tmp_path_factory.mktemp("finished") / "run"
    run_training(compose_config(TINY), folder)
    return folder


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def _dbm_train(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return run_cli("dbm-train", args, timeout=timeout)


# ------------------------------------------------------------------ a finished run is kept


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (["optim.lr=-1"], ConfigError),  # a config typo: refused before the folder is looked at
        ([], RunFolderError),  # the same command again
        (["data=dlc", "data.path=/no/such/folder"], RunFolderError),  # a mistyped data.path
        (["overwrite=true", "data=dlc", "data.path=/no/such/folder"], DataFormatError),
        (["ckpt_path=last", "model=tcn"], ValueError),  # resume with another model
    ],
)
def test_a_rerun_that_cannot_start_leaves_the_finished_run_as_it_was(
    finished: Path, tmp_path: Path, change: list[str], error: type
) -> None:
    folder = _copy(finished, tmp_path / "run")
    before = _snapshot(folder)
    overrides = [o for o in TINY if not o.startswith(tuple(c.split("=")[0] for c in change))]
    with pytest.raises(error):
        run_training(compose_config([*overrides, *change]), folder)
    assert _snapshot(folder) == before


def test_the_cli_refuses_a_finished_folder_in_one_line(finished: Path, tmp_path: Path) -> None:
    folder = _copy(finished, tmp_path / "run")
    before = _snapshot(folder)
    proc = _dbm_train([*TINY, f"hydra.run.dir={folder}"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"dbm-train: {folder}: holds a finished run")
    assert "overwrite=true" in last and "Traceback" not in proc.stderr
    assert _snapshot(folder) == before


def test_overwrite_replaces_every_file_of_the_earlier_run(finished: Path, tmp_path: Path) -> None:
    """overwrite=true: the new run's best.ckpt is the model its metrics.json names (no
    best-v1.ckpt beside a stale best.ckpt), and no file of the earlier run is left."""
    folder = _copy(finished, tmp_path / "run")
    stale = folder / "figures" / "old.png"
    stale.parent.mkdir()
    stale.write_bytes(b"earlier run")
    old_best = read_checkpoint(folder / "checkpoints" / "best.ckpt")["state_dict"]
    metrics = run_training(compose_config([*TINY, "seed=5", "overwrite=true"]), folder)
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert Path(metrics["best_checkpoint"]) == folder / "checkpoints" / "best.ckpt"
    new_best = read_checkpoint(folder / "checkpoints" / "best.ckpt")["state_dict"]
    assert any(not (old_best[k] == new_best[k]).all() for k in new_best)
    assert not stale.exists()
    assert json.loads((folder / "metrics.json").read_text())["seed"] == 5


def test_a_second_live_run_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    refused = pytest.raises(RunFolderError, match="another run is writing into this folder")
    with RunLock(RunDir(folder)), refused:
        run_training(compose_config(TINY), folder)
    assert not (folder / "metrics.json").exists() and not (folder / "failed.json").exists()
    run_training(compose_config(TINY), folder)  # the lock went with its holder
    assert (folder / "metrics.json").is_file()


def test_a_failure_before_training_leaves_the_finished_metrics(
    finished: Path, tmp_path: Path
) -> None:
    """A check against the data (here: more microstates than frames) stops the run before it
    trains; the folder's finished results are kept and no failed.json is put beside them."""
    folder = _copy(finished, tmp_path / "run")
    before = _snapshot(folder)
    change = ["overwrite=true", "microstates.enabled=true", "microstates.k=100000"]
    with pytest.raises(ConfigError, match=r"microstates\.k: 100000 microstates need"):
        run_training(compose_config([*TINY[:-2], *change]), folder)
    assert _snapshot(folder) == before


# ------------------------------------------------------------------ signals


def _wait_for(path: Path, proc: CliProcess, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_training(compose_config(LONG), tmp_path_factory.mktemp("reference") / "run")


RESULTS = ("val", "val_best", "test", "epochs", "train_frames")


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_fails_the_run_and_the_same_command_resumes_it(
    tmp_path: Path, uninterrupted: dict, signum: int
) -> None:
    """SIGTERM (kill, docker stop, a scheduler) or SIGINT (Ctrl-C) after the first epoch:
    exit 128 + signal, failed.json saying so, last.ckpt kept; then (SIGTERM) with another
    setting the folder is refused, and the same command again resumes and ends with the
    metrics of a run that was never stopped."""
    folder = tmp_path / "run"
    proc = start_cli("dbm-train", [*LONG, f"hydra.run.dir={folder}"])
    _wait_for(folder / "checkpoints" / "last.ckpt", proc)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, stderr[-3000:]
    name = signal.Signals(signum).name
    assert stderr.strip().splitlines()[-1].startswith(f"dbm-train: stopped by {name}")
    failure = json.loads((folder / "failed.json").read_text())
    assert failure["error"] == f"RunInterrupted: stopped by {name}"
    assert not (folder / "metrics.json").exists()
    assert read_checkpoint(folder / "checkpoints" / "last.ckpt")["epoch"] < 5

    if signum == signal.SIGINT:
        return  # what follows does not depend on the signal
    other = _dbm_train([*LONG, f"hydra.run.dir={folder}", "optim.lr=0.01"])
    assert other.returncode == 2, other.stderr[-3000:]
    assert (
        "holds an interrupted run of another configuration (differs in optim.lr)"
        in (other.stderr.strip().splitlines()[-1])
    )
    resumed = _dbm_train([*LONG, f"hydra.run.dir={folder}"])  # the same command again
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout + resumed.stderr
    metrics = json.loads((folder / "metrics.json").read_text())
    assert {k: metrics[k] for k in RESULTS} == {k: uninterrupted[k] for k in RESULTS}
    assert not (folder / "failed.json").exists()


# ------------------------------------------------------------------ sweeps


def _sweep(sweep_dir: Path, launcher: list[str]) -> list[str]:
    return ["-m", *launcher, f"hydra.sweep.dir={sweep_dir}", "seed=0,1", *LONG]


def _job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml"))


@pytest.mark.slow
def test_a_killed_joblib_sweep_takes_its_workers_along_and_resumes(
    tmp_path: Path, uninterrupted: dict
) -> None:
    """SIGKILL of a parallel sweep's parent once both runs have a checkpoint: the workers
    stop within seconds (failed.json says why); the same command then resumes both runs
    from last.ckpt, and the seed-0 run ends as a run that was never stopped."""
    sweep_dir = tmp_path / "sweep"
    args = _sweep(sweep_dir, ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"])
    proc = start_cli("dbm-train", args)
    deadline = time.monotonic() + 180
    while len(list(sweep_dir.glob("*/checkpoints/last.ckpt"))) < 2:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    workers = [int((d / ".lock").read_text().split()[1]) for d in _job_dirs(sweep_dir)]
    assert os.getpid() not in workers and proc.pid not in workers
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its sweep"
        time.sleep(0.1)
    stopped = [d for d in _job_dirs(sweep_dir) if not (d / "metrics.json").is_file()]
    assert stopped, "both runs finished before the kill: nothing was tested"  # (a busy machine)
    for d in stopped:  # a run may have finished in the moment before the kill
        failure = json.loads((d / "failed.json").read_text())
        assert "the process that launched this job" in failure["error"]

    again = _dbm_train(args)
    assert again.returncode == 0, again.stderr[-3000:]
    seed0 = [d for d in _job_dirs(sweep_dir) if "seed=0" in d.name]
    metrics = json.loads((seed0[0] / "metrics.json").read_text())
    assert {k: metrics[k] for k in RESULTS} == {k: uninterrupted[k] for k in RESULTS}
    assert all((d / "metrics.json").is_file() for d in _job_dirs(sweep_dir))


def test_a_relaunched_sweep_skips_the_finished_runs(tmp_path: Path) -> None:
    """The same sweep into its folder again: nothing is retrained or rewritten; with
    another data set (a key outside the run folder names) it is refused."""
    sweep_dir = tmp_path / "sweep"
    unnamed = "hydra.job.config.override_dirname.exclude_keys=[data.frames]"
    args = ["-m", f"hydra.sweep.dir={sweep_dir}", unnamed, "seed=0,1", *TINY]
    assert _dbm_train(args).returncode == 0
    before = {d.name: _snapshot(d) for d in _job_dirs(sweep_dir)}
    again = _dbm_train(args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {d.name: _snapshot(d) for d in _job_dirs(sweep_dir)} == before
    assert again.stderr.count("skipped") >= 2 or again.stdout.count("skipped") >= 2
    other = _dbm_train([*[a for a in args if a != "data.frames=400"], "data.frames=500"])
    assert other.returncode == 2, other.stderr[-3000:]
    assert "another configuration (differs in data.frames)" in other.stderr.splitlines()[-1]
    assert {d.name: _snapshot(d) for d in _job_dirs(sweep_dir)} == before


# ------------------------------------------------------------------ the disk


def test_an_output_folder_under_a_file_is_one_line(tmp_path: Path) -> None:
    """Hydra would create the folder with a traceback; dbm-train says what is wrong first."""
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    for args in ([f"hydra.run.dir={blocker}/run"], ["-m", f"hydra.sweep.dir={blocker}/sweep"]):
        proc = _dbm_train([*args, *TINY])
        assert proc.returncode == 2, proc.stderr[-2000:]
        key = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
        assert proc.stderr.strip() == (
            f"dbm-train: {key}: {blocker}/{'sweep' if '-m' in args else 'run'}: "
            f"cannot be created: {blocker} is a file, not a folder"
        )
    assert blocker.read_text() == "not a folder"


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 120 kB tmpfs: room for the run's first checkpoints, not for the next ones."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=120k", "tmpfs", str(mount)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_exit_2(small_disk: Path) -> None:
    proc = _dbm_train([*TINY, f"hydra.run.dir={small_disk}/run"])
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"dbm-train: {small_disk}/run/checkpoints/")
    assert "could not write the checkpoint (no space left on the device" in last
    assert not (small_disk / "run" / "metrics.json").exists()


def test_an_early_stopped_run_resumed_after_its_fit_trains_no_more(tmp_path: Path) -> None:
    """Stopped early, then cut short after the fit (no metrics.json yet): the same command
    resumes it without training another epoch and ends with the same results."""
    stop = ["callbacks.early_stopping.enabled=true", "callbacks.early_stopping.patience=1"]
    overrides = [*TINY[:5], "trainer.max_epochs=40", *TINY[6:], *stop, "optim.lr=0.03"]
    folder = tmp_path / "run"
    first = run_training(compose_config(overrides), folder)
    assert first["epochs"] < 40  # it did stop early
    (folder / "metrics.json").unlink()  # as if killed in the held-out step
    again = run_training(compose_config(overrides), folder)
    assert {k: again[k] for k in RESULTS} == {k: first[k] for k in RESULTS}


def test_dbm_synth_output_under_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from dbm_lightning.cli.synth import main as synth_main

    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(SystemExit) as stop:
        synth_main(["--out", str(blocker / "data"), "--mice", "1", "--days", "1"])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    why = f"cannot be created: {blocker} is a file, not a folder"
    assert last == f"dbm-synth: error: --out {blocker}/data: {why}"
