"""`dbm-report` on folders of killed and re-launched sweeps: each configuration and seed counted
once, planned jobs that never started listed, two sweeps in one folder said, corrupt run files
listed rather than raised. The run folders are built the way Hydra lays them out (a sweep's
``multirun.yaml``, each job's ``.hydra/`` and outcome file); nothing is trained."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dbm_lightning.cli.report import main as report_main

SHARED = ["data.mice=2", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
"""Overrides every job of a test sweep has, as typed on the command line."""

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _as_hydra_writes(item: str) -> str:
    """A job's override as Hydra records it in ``.hydra/overrides.yaml`` (``false``: ``False``)."""
    key, _, value = item.partition("=")
    return f"{key}={ {'false': 'False', 'true': 'True'}.get(value, value) }"


def write_multirun(
    sweep_dir: Path,
    task: list[str],
    params: dict[str, str] | None = None,
    sweeper: str = BASIC,
) -> Path:
    """The ``multirun.yaml`` Hydra saves at a sweep's root (the parts the report reads, in the
    layout of a real one)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cfg = {
        "hydra": {
            "run": {"dir": "outputs/x"},
            "sweep": {
                "dir": str(sweep_dir),
                "subdir": "${hydra:job.num}_${hydra:job.override_dirname}",
            },
            "launcher": {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"},
            "sweeper": {"_target_": sweeper, "max_batch_size": None, "params": params},
            "overrides": {
                "hydra": [f"hydra.sweep.dir={sweep_dir}", "hydra.mode=MULTIRUN"],
                "task": task,
            },
            "job": {"name": "train", "override_dirname": ",".join(sorted(task))},
            "mode": "MULTIRUN",
        },
        "task_name": "train",
        "seed": 0,
        "trainer": {"max_epochs": 1},
    }
    path = sweep_dir / "multirun.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def write_run(
    sweep_dir: Path,
    num: int,
    overrides: list[str],
    acc: float | None = None,
    error: str | None = None,
    mtime: float | None = None,
    metrics_text: str | None = None,
    failed_text: str | None = None,
    only_hydra: bool = False,
) -> Path:
    """One job's folder: ``.hydra/`` (overrides, config, hydra), then ``metrics.json`` (``acc``),
    ``failed.json`` (``error``), raw text for either, or nothing (a run that did not finish)."""
    items = [_as_hydra_writes(o) for o in overrides]
    run = sweep_dir / f"{num}_{','.join(sorted(items))}"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(items))
    (run / ".hydra" / "config.yaml").write_text("seed: 0\ntrainer:\n  max_epochs: 1\n")
    (run / ".hydra" / "hydra.yaml").write_text("hydra:\n  mode: MULTIRUN\n")
    if only_hydra:
        return run
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "train.log").write_text("[train] started\n")
    outcome = None
    if acc is not None or metrics_text is not None:
        outcome = run / "metrics.json"
        metrics = {
            "val": {"val/acc": acc, "val/macro_f1": acc},
            "val_best": {"acc": acc, "monitor": "val/acc"},
            "test": {},
            "heldout": {},
            "epochs": 1,
        }
        outcome.write_text(metrics_text if metrics_text is not None else json.dumps(metrics))
    elif error is not None or failed_text is not None:
        outcome = run / "failed.json"
        record = {"error": error, "traceback": f"Traceback (most recent call last):\n{error}\n"}
        outcome.write_text(failed_text if failed_text is not None else json.dumps(record))
    if mtime is not None:
        for path in (outcome, run):
            if path is not None:
                os.utime(path, (mtime, mtime))
    return run


def _table(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "report.csv").set_index("config")


T0 = 1_700_000_000.0  # the killed sweep's time; its re-run is an hour later


def test_a_killed_sweep_and_its_rerun_count_each_seed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "multirun" / "train"
    killed, rerun = root / "2024-05-01" / "10-00-00", root / "2024-05-01" / "11-00-00"
    task = ["optim.lr=0.001,0.01", "seed=0,1,2", *SHARED]
    for sweep in (killed, rerun):
        write_multirun(sweep, task)
    job = [f"optim.lr={lr}" for lr in ("0.001", "0.01")]
    # killed: lr=0.001 seeds 0 and 1 finished, seed 2 was running when killed, lr=0.01 never ran
    write_run(killed, 0, [job[0], "seed=0", *SHARED], acc=0.50, mtime=T0 + 7200)  # the newest
    write_run(killed, 1, [job[0], "seed=1", *SHARED], acc=0.60, mtime=T0)
    write_run(killed, 2, [job[0], "seed=2", *SHARED], mtime=T0)
    accs = {0: [0.70, 0.80, 0.90], 1: [0.40, 0.50, 0.60]}
    for i, (lr, values) in enumerate(accs.items()):
        for seed, acc in enumerate(values):
            write_run(rerun, 3 * i + seed, [job[lr], f"seed={seed}", *SHARED], acc, mtime=T0 + 3600)

    assert report_main([str(root)]) == 0
    table = _table(root)
    assert set(table.index) == {"optim.lr=0.001", "optim.lr=0.01"}
    assert (table["n_runs"] == 3).all()
    # seed 0 of lr=0.001: the killed sweep's run finished later than the re-run's, so it counts
    assert math.isclose(table.loc["optim.lr=0.001", "val_best/acc mean"], (0.50 + 0.80 + 0.90) / 3)
    assert math.isclose(table.loc["optim.lr=0.01", "val_best/acc mean"], 0.50)
    assert math.isclose(table.loc["optim.lr=0.01", "val_best/acc std"], 0.10)

    duplicates = pd.read_csv(root / "duplicates.csv")
    assert len(duplicates) == 3
    folders = sorted(Path(r).parent.name for r in duplicates["run"])
    assert folders == ["10-00-00", "10-00-00", "11-00-00"]
    by_seed = duplicates.set_index(duplicates["seed"].astype(str) + "/" + duplicates["status"])
    assert "finished later" in by_seed.loc["0/finished", "reason"]
    assert Path(by_seed.loc["0/finished", "kept"]).parent == killed
    assert "unfinished" in by_seed.loc["2/unfinished", "reason"]
    assert Path(by_seed.loc["2/unfinished", "kept"]).parent == rerun
    assert pd.read_csv(root / "failed.csv").empty  # the unfinished seed 2 re-ran and finished

    markdown = (root / "report.md").read_text()
    assert "## Left out: duplicates" in markdown and "3 run folders left out" in markdown
    assert "2 sweeps" in markdown
    assert "2 sweeps" in capsys.readouterr().err


def test_a_sweep_relaunched_into_its_own_folder_counts_each_seed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    write_run(sweep, 0, ["seed=0", *SHARED], acc=0.2, mtime=T0)
    write_run(sweep, 1, ["seed=1", *SHARED], acc=0.4, mtime=T0)  # then killed: seed 2 never ran
    write_multirun(sweep, ["seed=1,2", *SHARED])  # re-launched into the same folder
    write_run(sweep, 0, ["seed=1", *SHARED], acc=0.6, mtime=T0 + 60)
    write_run(sweep, 1, ["seed=2", *SHARED], acc=0.8, mtime=T0 + 60)

    assert report_main([str(sweep)]) == 0
    table = _table(sweep)
    assert int(table["n_runs"].iloc[0]) == 3
    assert math.isclose(table["val_best/acc mean"].iloc[0], (0.2 + 0.6 + 0.8) / 3)
    duplicates = pd.read_csv(sweep / "duplicates.csv")
    assert list(duplicates["seed"]) == [1] and Path(duplicates["run"][0]).name.startswith("1_")
    markdown = (sweep / "report.md").read_text()
    note = "describes another sweep than 1 of the 4 runs below it"
    assert note in markdown
    assert note in capsys.readouterr().err


def test_planned_jobs_that_never_started_are_listed(tmp_path: Path) -> None:
    """A `conf/sweep/*.yaml` sweep (its lists in hydra.sweeper.params) killed after two jobs:
    the third left only `.hydra/`, the fourth no folder at all."""
    sweep = tmp_path / "sweep"
    write_multirun(
        sweep, ["sweep=encoders", *SHARED], params={"model": "bilstm,tcn", "seed": "0,1"}
    )
    write_run(sweep, 0, ["model=bilstm", "seed=0", "sweep=encoders", *SHARED], acc=0.7)
    write_run(sweep, 1, ["model=bilstm", "seed=1", "sweep=encoders", *SHARED], error="OOM")
    write_run(sweep, 2, ["model=tcn", "seed=0", "sweep=encoders", *SHARED], only_hydra=True)

    assert report_main([str(sweep)]) == 0
    failed = pd.read_csv(sweep / "failed.csv")
    failed = failed.set_index(failed["config"] + "/" + failed["seed"].astype(str))
    assert sorted(failed.index) == ["model=bilstm/1", "model=tcn/0", "model=tcn/1"]
    assert tuple(failed.loc["model=bilstm/1", ["status", "error"]]) == ("failed", "OOM")
    hydra_only, missing = failed.loc["model=tcn/0"], failed.loc["model=tcn/1"]
    assert hydra_only["status"] == missing["status"] == "never started"
    assert "only .hydra/" in hydra_only["error"]
    assert "job 3" in missing["error"] and "no run folder" in missing["error"]
    assert missing["overrides"].split() == [
        "model=tcn",
        "seed=1",
        "sweep=encoders",
        "data.mice=2",
        "trainer.max_epochs=1",
    ]  # trainer.enable_progress_bar says how a run is run, not what it is: left out
    markdown = (sweep / "report.md").read_text()
    assert "2 planned jobs never started" in markdown
    failed_section = markdown.split("## Failed runs", 1)[1]
    assert failed_section.count("| never started |") == 2
    per_seed = markdown.split("## Per seed", 1)[1].split("##", 1)[0]
    assert "| `model=bilstm` | 70.00 | failed | 70.00 |" in per_seed
    assert "| `model=tcn` | never started | never started |  |" in per_seed
    assert int(_table(sweep).loc["model=bilstm", "n_runs"]) == 1


def test_planned_jobs_expand_as_hydra_basic_sweeper_does(tmp_path: Path) -> None:
    from dbm_lightning.analysis.sweep_runs import planned_jobs

    path = write_multirun(
        tmp_path, ["seed=0,1", "hydra.verbose=true", "+extra=range(1,3)"], params={"model": "a,b"}
    )
    jobs = planned_jobs(path)
    assert len(jobs) == 8
    assert jobs[0] == {"model": "a", "seed": "0", "extra": "1"}
    assert jobs[1] == {"model": "a", "seed": "0", "extra": "2"}
    assert jobs[-1] == {"model": "b", "seed": "1", "extra": "2"}


def test_a_plan_that_cannot_be_listed_is_said_not_guessed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    optuna, ranged = tmp_path / "optuna", tmp_path / "interval"
    write_multirun(
        optuna,
        ["optim.lr=interval(0.0001,0.1)", *SHARED],
        sweeper="hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
    )
    write_run(optuna, 0, ["optim.lr=0.003", *SHARED], acc=0.5)
    write_multirun(ranged, ["optim.lr=interval(0.0001,0.1)", *SHARED])
    write_run(ranged, 0, ["optim.lr=0.003", *SHARED], acc=0.7)

    assert report_main([str(tmp_path)]) == 0
    markdown = (tmp_path / "report.md").read_text()
    assert "optuna/multirun.yaml: its planned jobs cannot be listed (its sweeper OptunaSweeper" in (
        markdown
    )
    assert "interval/multirun.yaml: its planned jobs cannot be listed (cannot expand" in markdown
    assert "OptunaSweeper" in capsys.readouterr().err
    assert pd.read_csv(tmp_path / "failed.csv").empty  # nothing guessed as never started


def test_two_sweeps_in_one_folder_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i, name in enumerate(("lr", "depth")):
        write_multirun(tmp_path / name, [f"x.{name}=1,2", *SHARED])
        write_run(tmp_path / name, 0, [f"x.{name}=1", *SHARED], acc=0.1 * (i + 1))
        write_run(tmp_path / name, 1, [f"x.{name}=2", *SHARED], acc=0.2 * (i + 1))

    assert report_main([str(tmp_path)]) == 0
    line = "this folder holds 2 sweeps (multirun.yaml in depth, lr)"
    notes = [n for n in (tmp_path / "report.md").read_text().splitlines() if line in n]
    assert len(notes) == 1
    assert [n for n in capsys.readouterr().err.splitlines() if line in n] == [
        f"dbm-report: {line}; each configuration and seed is counted once"
    ]
    assert len(_table(tmp_path)) == 4


def test_corrupt_outcome_files_are_listed_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["seed=0,1,2,3,4", *SHARED])
    write_run(sweep, 0, ["seed=0", *SHARED], acc=0.9)
    runs = {
        "not json": write_run(sweep, 1, ["seed=1", *SHARED], failed_text="Traceback (most"),
        "no error": write_run(sweep, 2, ["seed=2", *SHARED], failed_text='{"traceback": "x"}'),
        "cut short": write_run(sweep, 3, ["seed=3", *SHARED], metrics_text='{"val_best": {"ac'),
        "a list": write_run(sweep, 4, ["seed=4", *SHARED], metrics_text="[1, 2]"),
    }
    broken = write_run(sweep, 5, ["seed=5", *SHARED], acc=0.1)
    (broken / ".hydra" / "overrides.yaml").write_text("- seed=5\n  : [unclosed\n")

    assert report_main([str(sweep)]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    failed = pd.read_csv(sweep / "failed.csv").set_index("run")
    for run in runs.values():
        row = failed.loc[str(run)]
        name = "failed.json" if (run / "failed.json").exists() else "metrics.json"
        assert row["status"] == "unreadable"
        assert row["error"].startswith(f"{run / name}: unreadable {name}"), row["error"]
    assert '(no "error" in it)' in failed.loc[str(runs["no error"]), "error"]
    assert "not a JSON object" in failed.loc[str(runs["a list"]), "error"]
    assert "unreadable overrides.yaml" in failed.loc[str(broken), "error"]
    assert int(_table(sweep)["n_runs"].iloc[0]) == 1
    assert "unreadable failed.json" in (sweep / "report.md").read_text()


def test_a_path_that_is_no_folder_or_holds_no_runs_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    for path, says in ((a_file, "not a directory"), (tmp_path / "gone", "no such directory")):
        assert report_main([str(path)]) == 2
        assert capsys.readouterr().err == f"dbm-report: {path}: {says}\n"
    assert report_main([str(empty)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"dbm-report: {empty}: no runs") and err.count("\n") == 1
    assert not (empty / "report.md").exists()
