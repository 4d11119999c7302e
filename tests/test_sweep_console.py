"""A real sweep as a researcher reads it: run folders named by what varies, one HPARAMS
schema for every model family read back through TensorBoard, the sweep's own line per run and
its report at the end, and a console without third-party adverts."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_process import run_cli
from helpers import TINY_DATA
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import plugin_data_pb2

from dbm_lightning.cli.config import compose_config
from dbm_lightning.cli.run_names import run_name
from dbm_lightning.cli.sweep_callbacks import progress_line
from dbm_lightning.console import NOTICES
from dbm_lightning.hparams_tab import HP_METRICS, run_hparams

TINY = [
    *TINY_DATA,
    "trainer.max_epochs=2",
    "split=sessions",
]
"""3 sessions: one for training, one for validation, one for the test."""


def _dbm_train(args: list[str]) -> subprocess.CompletedProcess:
    return run_cli("dbm-train", args, timeout=400)


def _plugin(content: bytes) -> plugin_data_pb2.HParamsPluginData:
    return plugin_data_pb2.HParamsPluginData.FromString(content)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A deep network and a classic model, two at a time (joblib), with a constant override
    (data.frames) and a varying one (model)."""
    root = tmp_path_factory.mktemp("sweep") / "sweep"
    args = [
        "-m",
        f"hydra.sweep.dir={root}",
        "hydra/launcher=parallel",
        "model=dbm_baseline,random_forest",
        "seed=0",
        *TINY,
    ]
    proc = _dbm_train(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


def test_run_folders_are_named_by_what_varies(sweep) -> None:
    root, _ = sweep
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert names == ["0_model=dbm_baseline", "1_model=random_forest"]
    jobs = [{"model": "a", "seed": "0"}, {"model": "b", "seed": "0"}]
    assert run_name(["model=b", "seed=0", "data.path=/x/y"], jobs) == "model=b"
    assert run_name(["seed=0"], [{"seed": "0"}]) == "single"


def test_every_model_family_declares_the_same_hparams() -> None:
    families = {
        m: run_hparams(compose_config([f"model={m}"]), classic=m in ("random_forest", "majority"))
        for m in ("dbm_baseline", "dbm_modified", "bilstm", "tcn", "random_forest", "majority")
    }
    types = [{k: type(v) for k, v in h.items()} for h in families.values()]
    assert all(t == types[0] for t in types)  # same keys, same types: one column each
    modified = run_hparams(
        compose_config(["model=dbm_modified", "model.dropout=0.3"]),
        classic=False,
        extra={"experiment": None, "model.noise_std": 0.05},
    )
    assert (modified["model.depth"], modified["model.dropout"], modified["experiment"]) == (
        2,
        0.3,
        "none",
    )
    assert modified["model.noise_std"] == 0.05  # a key the schema lacks, from the sweep
    forest = run_hparams(compose_config(["model=random_forest"]), classic=True)
    assert (forest["model.family"], forest["optim.lr"], forest["model.trees"]) == (
        "classic",
        0,
        100,
    )


def test_the_hparams_tab_lists_the_sweep_keys_and_real_metrics(sweep) -> None:
    """TensorBoard pointed at the sweep: one experiment (at the root) whose varying keys are
    marked, every run's session with the same keys, one value per hp/ metric (no placeholder)
    and curves against the epoch."""
    root, _ = sweep
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(root))
    mux.Reload()
    content = mux.PluginRunToTagToContent("hparams")
    experiments = [run for run, tags in content.items() if "_hparams_/experiment" in tags]
    assert experiments == ["."], content.keys()  # only the sweep's root declares one
    experiment = _plugin(content["."]["_hparams_/experiment"]).experiment
    differs = {h.name for h in experiment.hparam_infos if h.differs}
    assert {"model", "model.family", "model.depth", "optim.lr"} <= differs
    assert "seed" not in differs and "data.window" not in differs
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"hp/val_acc_best_epoch", "hp/val_acc_last_epoch", "hp/test_acc"} <= metric_tags
    assert metric_tags <= set(HP_METRICS)

    sessions = {
        run: set(_plugin(tags["_hparams_/session_start_info"]).session_start_info.hparams)
        for run, tags in content.items()
        if "_hparams_/session_start_info" in tags
    }
    assert len(sessions) == 2 and len({frozenset(k) for k in sessions.values()}) == 1
    for run in sessions:
        acc = mux.GetAccumulator(run)
        metrics = json.loads((root / run.split("/")[0] / "metrics.json").read_text())
        best = acc.Scalars("hp/val_acc_best_epoch")
        assert len(best) == 1 and best[0].value == pytest.approx(metrics["val_best"]["acc"])
        epochs = metrics["epochs"]
        if epochs:  # the network: curves against the epoch, hp/ at the last one
            assert [e.step for e in acc.Scalars("val/acc")] == list(range(epochs))
            assert best[0].step == epochs - 1


def test_the_sweep_says_where_it_is_and_ends_with_its_report(sweep) -> None:
    root, proc = sweep
    out = proc.stdout
    lines = [line for line in out.splitlines() if line.startswith("[sweep ")]
    assert len(lines) == 2 and all(" of 2] " in line for line in lines), out[-3000:]
    assert "all 2 ended" in lines[-1] or "all 2 ended" in lines[0]
    assert "dbm-report" in out and str(root) in out
    assert (root / "report.md").is_file()
    for run in ("0_model=dbm_baseline", "1_model=random_forest"):
        assert json.loads((root / run / "metrics.json").read_text())["microstates"] is None


def test_the_console_is_quiet_unless_verbose(sweep, tmp_path: Path) -> None:
    _, proc = sweep
    text = proc.stdout + proc.stderr
    for word in ("litlogger", "GPU available", "TPU available", "LeafSpec", "Seed set to"):
        assert word not in text, word
    loud = _dbm_train([f"hydra.run.dir={tmp_path / 'loud'}", "verbose=true", *TINY])
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "GPU available" in loud.stdout + loud.stderr
    assert any(n.startswith("(GPU") for n in NOTICES)


def test_a_failed_job_still_ends_the_sweep_with_its_report(tmp_path: Path) -> None:
    """Hydra skips its multirun-end callback when a job fails; dbm-train reports anyway."""
    root = tmp_path / "sweep"
    proc = _dbm_train(
        [
            "-m",
            f"hydra.sweep.dir={root}",
            "model=majority",
            *[a for a in TINY if not a.startswith("data.frames=")],
            "data.frames=400,1",
        ]
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[sweep ")]
    assert any("FAILED: " in line and "frames" in line for line in lines), proc.stdout[-3000:]
    assert (root / "report.md").is_file() and "1 failed" in proc.stdout, proc.stdout[-3000:]


def test_progress_counts_only_the_planned_jobs(sweep, tmp_path: Path) -> None:
    """A folder of another plan does not count; the estimate uses this launch's runs."""
    root, _ = sweep
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    stranger = copy / "9_model=tcn"
    shutil.copytree(copy / "0_model=dbm_baseline", stranger)
    (stranger / "overrides.yaml").write_text("- model=tcn\n")
    (stranger / ".hydra" / "overrides.yaml").write_text("- model=tcn\n")
    line = progress_line(copy, copy / "0_model=dbm_baseline")
    assert line.startswith("[sweep 2 of 2] 0_model=dbm_baseline finished in "), line
    assert line.endswith("all 2 ended")


def test_an_extended_sweep_finds_its_finished_runs(sweep) -> None:
    """The same sweep with one more model: the finished runs are found in their folders and
    skipped (not retrained), the new job gets its own folder. (Runs last: it adds a run.)"""
    root, _ = sweep
    before = {
        name: (root / name / "metrics.json").read_bytes()
        for name in ("0_model=dbm_baseline", "1_model=random_forest")
    }
    args = [
        "-m",
        f"hydra.sweep.dir={root}",
        "model=dbm_baseline,random_forest,majority",
        "seed=0",
        *TINY,
    ]
    proc = _dbm_train(args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert names == ["0_model=dbm_baseline", "1_model=random_forest", "2_model=majority"]
    for name, content in before.items():
        assert (root / name / "metrics.json").read_bytes() == content, name
    assert (proc.stdout + proc.stderr).count("skipped") >= 2
