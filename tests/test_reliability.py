"""Faults and reproducibility: a run killed with SIGKILL resumes to the same metrics, outputs
are written atomically, checkpoints are checked and loaded without unpickling code, equal
seeds give equal metrics, and the data module refuses a leaking split."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dbm_lightning.analysis.microstates import Microstates, fit_microstates
from dbm_lightning.atomic import TMP_MARKER, atomic_path, write_json_atomic
from dbm_lightning.build import build_datamodule
from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.cli.config import compose_config
from dbm_lightning.errors import DataFormatError
from dbm_lightning.prediction import predict_paths
from dbm_lightning.runs import load_model
from dbm_lightning.training import run_training

TINY = [
    "data.mice=4",
    "data.days=2",
    "data.frames=400",
    "data.window=100",
    "data.stride=50",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "microstates.enabled=false",
    "split=leave_mouse_out",
    "split.val_mice=[m01]",
    "split.test_mice=[m03]",
]
"""Four mice, one for validation and one for test, so val and test metrics both exist."""
TINY_DATA = TINY[:-3]

RESULTS = ("val", "val_best", "test", "epochs", "n_classes", "sessions", "session_split")
"""The parts of metrics.json that describe the result (not timings or paths)."""

KILLER = """
import os, signal, sys
import pytorch_lightning as pl
from dbm_lightning.cli.config import compose_config
from dbm_lightning.training import run_training

class KillMidEpoch(pl.Callback):
    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.current_epoch == 2 and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGKILL)

run_training(compose_config(sys.argv[2:]), sys.argv[1], callbacks=[KillMidEpoch()])
"""


def _results(metrics: dict) -> dict:
    return {k: metrics[k] for k in RESULTS}


def _no_temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if TMP_MARKER in p.name]


# ------------------------------------------------------------------------------ faults


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    """Killed hard in the middle of epoch 3 of 4, resumed with ckpt_path=last: the same
    validation and test metrics as a run that was never interrupted (modified DBM: dropout and
    input noise draw random numbers every step)."""
    overrides = [*TINY, "model=dbm_modified", "trainer.max_epochs=4", "seed=3", "data.batch_size=8"]
    killed_dir = tmp_path / "killed"
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(killed_dir), *overrides],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert (killed_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (killed_dir / "metrics.json").exists()
    assert read_checkpoint(killed_dir / "checkpoints" / "last.ckpt")["epoch"] == 1

    resumed = run_training(compose_config([*overrides, "ckpt_path=last"]), killed_dir)
    reference = run_training(compose_config(overrides), tmp_path / "reference")
    assert resumed["epochs"] == reference["epochs"] == 4
    assert _results(resumed) == _results(reference)
    assert resumed["test"]  # the comparison covers test metrics too
    # the frame counter travels in the checkpoint: epoch 3 counted once, not twice
    assert resumed["train_frames"] == reference["train_frames"]
    on_disk = json.loads((killed_dir / "metrics.json").read_text())
    assert _results(on_disk) == _results(reference)


def test_resume_without_a_checkpoint_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="last.ckpt"):
        run_training(compose_config([*TINY, "ckpt_path=last"]), tmp_path / "fresh")
    assert not (tmp_path / "fresh" / "metrics.json").exists()


def test_atomic_path_leaves_old_file_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"acc": 0.5})
    for interruption in (KeyboardInterrupt, RuntimeError):
        with pytest.raises(interruption), atomic_path(target) as tmp:
            tmp.write_text('{"acc": 0.9, "trunc')  # half written ...
            raise interruption  # ... when the process is interrupted
    assert json.loads(target.read_text()) == {"acc": 0.5}
    assert _no_temporaries(tmp_path) == []


KILLED_WRITER = """
import os, signal, sys
from dbm_lightning.atomic import write_atomic

def write(tmp):
    with open(tmp, "w") as fh:
        fh.write('{"val_best": {"acc": 0.9}, "trunc')
        fh.flush()
        os.kill(os.getpid(), signal.SIGKILL)

write_atomic(sys.argv[1], write)
"""


def test_sigkill_while_writing_metrics_leaves_no_readable_half_file(tmp_path: Path) -> None:
    """A process killed while writing metrics.json leaves no metrics.json at all (only a
    hidden temporary), so dbm-report never reads a half-written run as finished."""
    from dbm_lightning.analysis.sweep_runs import find_runs

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("seed: 0\n")
    target = run_dir / "metrics.json"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()
    assert len(_no_temporaries(run_dir)) == 1  # the orphan is hidden and never read
    assert all(r.error is None or "metrics" not in r.error for r in find_runs(tmp_path))
    assert not [r for r in find_runs(tmp_path) if r.metrics]


def test_metrics_json_is_written_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_training never leaves a partial metrics.json: interrupt the final rename."""
    import dbm_lightning.atomic as atomic

    real_replace = os.replace

    def interrupted_replace(src: str, dst: str) -> None:
        if Path(dst).name == "metrics.json":
            raise KeyboardInterrupt("killed while saving metrics.json")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        run_training(compose_config([*TINY, "trainer.max_epochs=1"]), tmp_path)
    assert not (tmp_path / "metrics.json").exists()
    assert _no_temporaries(tmp_path) == []
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def _small_microstates(seed: int) -> Microstates:
    rng = np.random.default_rng(seed)
    return fit_microstates(rng.normal(size=(300, 4)), rng.integers(0, 3, 300), k=5, seed=seed)


def test_microstates_save_is_atomic_and_pairs_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dbm_lightning.analysis.microstates as microstates

    path = tmp_path / "microstates"
    first = _small_microstates(0)
    first.save(path)
    # a save interrupted while writing the arrays: the old pair is intact
    real_savez = np.savez

    def half_savez(file: Path, **arrays: np.ndarray) -> None:
        Path(file).write_bytes(b"PK\x03\x04 half an npz")
        raise KeyboardInterrupt

    monkeypatch.setattr(microstates.np, "savez", half_savez)
    with pytest.raises(KeyboardInterrupt):
        _small_microstates(1).save(path)
    monkeypatch.setattr(microstates.np, "savez", real_savez)
    np.testing.assert_array_equal(Microstates.load(path).centroids, first.centroids)
    # interrupted between the arrays and their description: refused, not mixed
    monkeypatch.setattr(
        microstates, "write_json_atomic", lambda *a, **k: (_ for _ in ()).throw(SystemExit)
    )
    with pytest.raises(SystemExit):
        _small_microstates(2).save(path)
    with pytest.raises(DataFormatError, match="interrupted save"):
        Microstates.load(path)
    assert _no_temporaries(tmp_path) == []


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One short run with its checkpoint, and a DeepLabCut folder of new sessions."""
    from dbm_lightning.cli.synth import main as synth_main

    root = tmp_path_factory.mktemp("trained")
    metrics = run_training(compose_config([*TINY, "trainer.max_epochs=1"]), root / "run")
    folder = root / "new"
    assert synth_main(["--out", str(folder), "--mice", "1", "--days", "1", "--frames", "300"]) == 0
    return {"metrics": metrics, "ckpt": Path(metrics["best_checkpoint"]), "new": folder}


def test_prediction_tables_are_written_atomically(
    trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Interrupt the pandas writer (the bouts table; the frames table has its own writer,
    interrupted in test_prediction.py): both tables keep their complete previous version."""
    out = tmp_path / "pred"
    predict_paths(trained["ckpt"], trained["new"], out, progress=False)
    tables = [out / "m01_day1.frames.csv", out / "m01_day1.bouts.csv"]
    before = [t.read_bytes() for t in tables]
    assert len(pd.read_csv(tables[1])) >= 1  # so a cut after the header would show
    real_to_csv = pd.DataFrame.to_csv

    def interrupted_to_csv(self: pd.DataFrame, path: Path, **kwargs: object) -> None:
        real_to_csv(self.head(0), path, **kwargs)  # the header reaches the disk ...
        raise KeyboardInterrupt  # ... then the job is cancelled

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted_to_csv)
    with pytest.raises(KeyboardInterrupt):
        predict_paths(trained["ckpt"], trained["new"], out, progress=False)
    assert [t.read_bytes() for t in tables] == before
    assert _no_temporaries(out) == []


def test_checkpoint_on_other_classes_or_bodyparts_is_refused(trained: dict, tmp_path: Path) -> None:
    """Resuming a checkpoint on data with other classes fails before training, naming both;
    predicting on sessions without the trained body parts fails naming the file."""
    other_classes = [
        *TINY,
        "trainer.max_epochs=2",
        f"ckpt_path={trained['ckpt']}",
        "labels.other=idle",  # the catch-all class renamed: other classes than the checkpoint's
    ]
    with pytest.raises(DataFormatError) as info:
        run_training(compose_config(other_classes), tmp_path / "resume")
    message = str(info.value)
    assert str(trained["ckpt"]) in message and "classes" in message and "idle" in message

    session_csv = trained["new"] / "m01_day1.csv"
    header = session_csv.read_text().splitlines()
    renamed = [header[0], header[1].replace("nose", "snout"), *header[2:]]
    bad = tmp_path / "renamed.csv"
    bad.write_text("\n".join(renamed) + "\n")
    with pytest.raises(DataFormatError, match=r"renamed\.csv.*nose"):
        predict_paths(trained["ckpt"], bad, tmp_path / "pred", progress=False)


class _Payload:
    """Unpickling this runs a shell command (what a hostile checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_with_pickled_code_is_refused_without_running_it(
    trained: dict, tmp_path: Path
) -> None:
    marker = tmp_path / "code_was_executed"
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    ckpt["hyper_parameters"]["run_config"] = _Payload(marker)
    hostile = tmp_path / "hostile.ckpt"
    torch.save(ckpt, hostile)
    for load in (load_model, read_checkpoint):
        with pytest.raises(DataFormatError, match=r"hostile\.ckpt.*refused"):
            load(hostile)
    assert not marker.exists()
    # and the well-formed checkpoint still loads the same way
    assert len(load_model(trained["ckpt"]).class_names) == trained["metrics"]["n_classes"]


def test_truncated_checkpoint_is_a_clear_error(trained: dict, tmp_path: Path) -> None:
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(trained["ckpt"].read_bytes()[:500])
    with pytest.raises(DataFormatError, match=r"cut\.ckpt.*not a readable checkpoint"):
        load_model(cut)


# ----------------------------------------------------------------------- reproducibility


def test_same_seed_same_metrics_json_other_seed_differs(tmp_path: Path) -> None:
    overrides = [*TINY, "model=dbm_modified", "trainer.max_epochs=2"]
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        run_training(compose_config([*overrides, f"seed={seed}"]), tmp_path / name)
        runs[name] = _results(json.loads((tmp_path / name / "metrics.json").read_text()))
    assert runs["a"] == runs["b"]
    assert runs["a"]["val"] != runs["c"]["val"]


# ------------------------------------------------------------------------- split checks


def _tiny_datamodule(extra: list[str]) -> object:
    return build_datamodule(compose_config([*(TINY if not extra else TINY_DATA), *extra]))


@pytest.mark.parametrize(
    ("strategy", "leak", "what"),
    [
        ("sessions", {"m02_day1": "val"}, None),
        ("leave_mouse_out", {"m02_day1": "val"}, "mouse 'm02'"),
        ("leave_day_out", {"m02_day1": "val"}, "day 1"),
    ],
)
def test_datamodule_refuses_a_leaking_split(
    monkeypatch: pytest.MonkeyPatch, strategy: str, leak: dict, what: str | None
) -> None:
    """Whatever computes the assignment, setup() refuses one that puts a mouse (or day) on
    two sides; a session-level split may move single sessions freely."""
    import dbm_lightning.data as data
    from dbm_lightning.data import datamodule

    real_split = data.split_sessions

    def leaky_split(sessions: list, config: data.SplitConfig) -> dict[str, str]:
        out = dict(real_split(sessions, config))
        for name, side in leak.items():
            out[name] = side
        return out

    monkeypatch.setattr(datamodule, "split_sessions", leaky_split)
    extra = {
        "sessions": ["split=sessions"],
        "leave_mouse_out": [],
        "leave_day_out": ["split=leave_day_out", "split.val_days=[2]", "split.test_fraction=0"],
    }[strategy]
    dm = _tiny_datamodule(extra)
    if what is None:
        dm.setup("fit")  # moving a single session is not a leak for a session split
        return
    with pytest.raises(data.SplitLeakError, match=rf"{what}.*on 2 sides"):
        dm.setup("fit")


def test_same_recording_listed_twice_cannot_straddle_the_split(tmp_path: Path) -> None:
    """A manifest that lists one file twice under two names: the copies may not be split."""
    from dbm_lightning.cli.synth import main as synth_main
    from dbm_lightning.data import SplitLeakError

    folder = tmp_path / "dlc"
    assert synth_main(["--out", str(folder), "--mice", "2", "--days", "2", "--frames", "300"]) == 0
    manifest = folder / "manifest.csv"
    rows = manifest.read_text().splitlines()
    rows = ["path,mouse,day,condition,name", *(f"{r},{r.split('.')[0]}" for r in rows[1:])]
    rows.append("m01_day1.csv,m01,1,experimental,m01_day1_again")
    manifest.write_text("\n".join(rows) + "\n")
    cfg = ["data=dlc", f"data.path={folder}", "data.manifest=manifest.csv", "data.window=100"]
    cfg.append("split=sessions")
    cfg.append("split.val_fraction=0.4")
    leaks = 0
    for seed in range(6):  # some seeds put the two copies on different sides
        dm = build_datamodule(
            compose_config([*cfg, f"split.seed={seed}", "split.val_fraction=0.4"])
        )
        try:
            dm.setup("fit")
        except SplitLeakError as exc:
            assert "m01_day1.csv" in str(exc) and "m01_day1_again" in str(exc)
            leaks += 1
    assert leaks > 0


def test_project_errors_survive_pickling_across_processes() -> None:
    """Launchers (joblib, submitit) send a failed job's exception back pickled."""
    import pickle

    from dbm_lightning.errors import ConfigError

    for exc in (
        DataFormatError("/data/m01_day1.csv", "file is empty"),
        ConfigError("data.window", "must be a positive integer, got -5", [("optim.lr", "bad")]),
    ):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)
