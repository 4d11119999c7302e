"""``dbm-predict`` against user mistakes: each is one ``dbm-predict: ...`` line on stderr that
names the option and the file, exit status 2, no traceback and nothing written.

Two tiny runs (A and B, other seeds) are trained once for the module, with their microstates
(fitted on best.ckpt and stored in it, as ``dbm-train`` does); predictions run on a synthetic
DeepLabCut folder neither saw. Every output folder of a failing call starts as a copy of an
earlier prediction, which must come out byte for byte the same.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dbm_lightning.analysis.microstates import Microstates, fit_microstates
from dbm_lightning.checkpoints import model_sha256
from dbm_lightning.cli.config import compose_config
from dbm_lightning.cli.predict import main as predict_main
from dbm_lightning.training import run_training

TINY = [
    "data.mice=4",
    "data.days=2",
    "data.frames=400",
    "data.window=100",
    "data.stride=50",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "split=leave_mouse_out",
    "split.val_mice=[m01]",
    "split.test_mice=[m03]",
    "trainer.max_epochs=1",
    "microstates.k=8",
]
"""One epoch on four small mice; microstates fitted after training (k = 8)."""
NOT_A_MODEL = "not a dbm-train checkpoint (.ckpt) or model.joblib"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs A and B, a folder of two new sessions, and A's predictions of them."""
    from dbm_lightning.cli.synth import main as synth_main

    root = tmp_path_factory.mktemp("hostile")
    for name, seed in (("A", 0), ("B", 1)):
        metrics = run_training(compose_config([*TINY, f"seed={seed}"]), root / name)
        assert metrics["microstates"]["k"] == 8
    new = root / "new"
    assert synth_main(["--out", str(new), "--mice", "1", "--days", "2", "--frames", "300"]) == 0
    reference = root / "reference"
    best = root / "A" / "checkpoints" / "best.ckpt"
    rc = predict_main(["--ckpt", str(best), "--input", str(new), "--out", str(reference)])
    assert rc == 0
    return {"A": root / "A", "B": root / "B", "new": new, "reference": reference}


def _best(run: Path) -> Path:
    return run / "checkpoints" / "best.ckpt"


def _predict(capsys: pytest.CaptureFixture, *args: str | Path) -> tuple[int, str, str]:
    """``dbm-predict ARGS --no-progress`` in this process: (status, stdout, stderr)."""
    capsys.readouterr()
    rc = predict_main([*map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _previous(runs: dict[str, Path], tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    """An output folder holding an earlier prediction, and its exact content."""
    out = tmp_path / "pred"
    shutil.copytree(runs["reference"], out)
    return out, _snapshot(out)


def _one_error(rc: int, err: str) -> str:
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbm-predict: "), err
    assert "Traceback" not in err
    return lines[0]


def _microstate_column(folder: Path) -> np.ndarray:
    return pd.read_csv(folder / "m01_day1.frames.csv")["microstate"].to_numpy()


# ------------------------------------------------------------------------------ --ckpt


@pytest.mark.parametrize("kind", ["metrics.json", "pose.csv", "empty.ckpt", "npz", "folder"])
def test_ckpt_that_is_no_model_names_the_file_and_what_to_pass(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, kind: str
) -> None:
    """A JSON, a pose CSV, an empty file, a microstates archive or a folder that is no run
    given as --ckpt: one line with the path, what it is not and what to give instead."""
    empty = tmp_path / "best.ckpt"
    empty.write_bytes(b"")
    wrong = {
        "metrics.json": runs["A"] / "metrics.json",
        "pose.csv": runs["new"] / "m01_day1.csv",
        "empty.ckpt": empty,
        "npz": runs["A"] / "microstates.npz",
        "folder": runs["new"],
    }[kind]
    out, before = _previous(runs, tmp_path)
    rc, _, err = _predict(capsys, "--ckpt", wrong, "--input", runs["new"], "--out", out)
    line = _one_error(rc, err)
    assert f"--ckpt {wrong}:" in line and NOT_A_MODEL in line
    assert "pickled" not in line
    # what to pass: this run's own checkpoint when the file lies in a run, else the pattern
    in_run = wrong.is_relative_to(runs["A"])
    assert (str(_best(runs["A"])) if in_run else "RUN/checkpoints/best.ckpt") in line
    assert _snapshot(out) == before


def test_ckpt_may_name_the_run_folder(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """--ckpt RUN predicts with RUN/checkpoints/best.ckpt (and says so)."""
    out = tmp_path / "pred"
    rc, stdout, err = _predict(capsys, "--ckpt", runs["A"], "--input", runs["new"], "--out", out)
    assert rc == 0, err
    assert f"model: {_best(runs['A'])}" in stdout.splitlines()
    assert _snapshot(out).keys() == _snapshot(runs["reference"]).keys()
    for name in ("m01_day1.frames.csv", "m01_day2.frames.csv"):
        assert (out / name).read_bytes() == (runs["reference"] / name).read_bytes()


# ------------------------------------------------------------------------------- --out


@pytest.mark.parametrize("where", ["file", "under_a_file"])
def test_out_that_is_a_file_is_refused_before_anything_is_read(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture, where: str
) -> None:
    """--out naming an existing file (or a folder under one; refused for root too): one line
    naming --out, the file untouched and nothing created beside it."""
    existing = tmp_path / "results.csv"
    existing.write_text("frame,label\n0,rest\n")
    out = existing if where == "file" else existing / "sub"
    before = _snapshot(tmp_path)
    rc, _, err = _predict(capsys, "--ckpt", _best(runs["A"]), "--input", runs["new"], "--out", out)
    line = _one_error(rc, err)
    assert f"--out {out}:" in line and ("is a file" in line)
    assert _snapshot(tmp_path) == before
    # checked first: a model and input that do not exist are not even looked at
    nowhere = ["--ckpt", tmp_path / "none.ckpt", "--input", tmp_path / "none"]
    line = _one_error(*_predict(capsys, *nowhere, "--out", out)[::2])
    assert f"--out {out}:" in line and "none.ckpt" not in line


def test_out_folder_that_cannot_be_written(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A read-only output folder: one line naming --out, its earlier content kept. chmod
    does not stop root, so as root the folder is made read-only by a read-only bind mount."""
    import subprocess

    out, before = _previous(runs, tmp_path)
    out.chmod(0o555)
    mounted = False
    try:
        if os.access(out, os.W_OK):
            cmds = (["mount", "--bind", str(out), str(out)],
                    ["mount", "-o", "remount,ro,bind", str(out)])  # fmt: skip
            for cmd in cmds:
                proc = subprocess.run(cmd, capture_output=True, text=True)
                mounted = mounted or (proc.returncode == 0 and cmd[1] == "--bind")
                if proc.returncode != 0:
                    pytest.skip(f"cannot make {out} read-only here: {proc.stderr.strip()}")
        args = ("--ckpt", _best(runs["A"]), "--input", runs["new"], "--out", out)
        line = _one_error(*_predict(capsys, *args)[::2])
        assert f"--out {out}:" in line and "not writable" in line
    finally:
        if mounted:
            subprocess.run(["umount", str(out)], check=False)
        out.chmod(0o755)
    assert _snapshot(out) == before


# ------------------------------------------------------------------------ --microstates


def test_microstates_of_another_run_are_refused_naming_both_files(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Run A's microstates.npz with run B's model: refused, naming both; with A's: used."""
    out, before = _previous(runs, tmp_path)
    theirs = runs["A"] / "microstates.npz"
    args = ["--input", runs["new"], "--out", out, "--microstates", theirs]
    line = _one_error(*_predict(capsys, "--ckpt", _best(runs["B"]), *args)[::2])
    assert f"--microstates {theirs}:" in line and str(_best(runs["B"])) in line
    assert "another model" in line and str(_best(runs["A"])) in line
    assert _snapshot(out) == before

    rc, _, err = _predict(capsys, "--ckpt", _best(runs["A"]), *args)
    assert rc == 0 and err == ""
    assert np.array_equal(_microstate_column(out), _microstate_column(runs["reference"]))


def test_fingerprint_saved_when_fitting_is_checked_anywhere(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Microstates fitted with the model's fingerprint and saved away from any run are
    accepted with that model and refused with another."""
    run_ms = Microstates.load(runs["A"] / "microstates.npz")
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1e-3, (8 * 20, run_ms.n_dims))
    embedding = np.repeat(run_ms.centroids, 20, axis=0) + noise
    sha = model_sha256(_best(runs["A"]))
    ms = fit_microstates(embedding, k=8, model_sha256=sha)
    npz = ms.save(tmp_path / "elsewhere" / "ms")
    assert Microstates.load(npz).model_sha256 == sha

    out, before = _previous(runs, tmp_path)
    args = ["--input", runs["new"], "--out", out, "--microstates", npz]
    line = _one_error(*_predict(capsys, "--ckpt", _best(runs["B"]), *args)[::2])
    assert f"--microstates {npz}:" in line and str(_best(runs["B"])) in line
    assert _snapshot(out) == before
    rc, _, err = _predict(capsys, "--ckpt", _best(runs["A"]), *args)
    assert rc == 0 and err == ""
    assert (_microstate_column(out) >= 0).any()


def test_old_microstates_without_fingerprint_warn_once_and_are_used(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A microstates file saved without a fingerprint (as before dbm-lightning recorded it),
    away from its run: one warning for the whole call (two sessions), then used."""
    old = tmp_path / "old"
    old.mkdir()
    for suffix in (".npz", ".json"):
        shutil.copy(runs["A"] / f"microstates{suffix}", old)
    record = json.loads((old / "microstates.json").read_text())
    record.pop("model_sha256", None)
    (old / "microstates.json").write_text(json.dumps(record))
    out = tmp_path / "pred"
    args = ["--input", runs["new"], "--out", out, "--microstates", old / "microstates.npz"]
    rc, stdout, err = _predict(capsys, "--ckpt", _best(runs["A"]), *args)
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbm-predict: warning: "), err
    assert str(old / "microstates.npz") in lines[0] and "fingerprint" in lines[0]
    assert stdout.count(".frames.csv") == 2
    assert np.array_equal(_microstate_column(out), _microstate_column(runs["reference"]))


def test_microstates_of_another_embedding_size_are_refused(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Microstates of another size of embedding (no fingerprint to tell): one line naming
    the file, nothing written."""
    npz = Microstates(centroids=np.zeros((3, 7)), dominant_label=np.full(3, -1)).save(
        tmp_path / "wide" / "ms"
    )
    out, before = _previous(runs, tmp_path)
    args = ["--ckpt", _best(runs["A"]), "--input", runs["new"], "--out", out]
    line = _one_error(*_predict(capsys, *args, "--microstates", npz)[::2])
    assert f"--microstates {npz}:" in line and "7-dimensional" in line
    assert _snapshot(out) == before


# ----------------------------------------------------------------------- last.ckpt


def _copy_run(runs: dict[str, Path], tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(runs["A"], run)
    return run


def test_last_ckpt_of_other_weights_says_where_the_microstates_are(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """last.ckpt holds other weights than best.ckpt (on which the run's microstates were
    fitted): one warning pointing at best.ckpt, and the column is -1."""
    run = _copy_run(runs, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    key = sorted(ckpt["state_dict"])[0]
    ckpt["state_dict"][key] = ckpt["state_dict"][key] + 0.01  # a later epoch
    torch.save(ckpt, last)
    out = tmp_path / "pred"
    rc, _, err = _predict(capsys, "--ckpt", last, "--input", runs["new"], "--out", out)
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dbm-predict: warning: "), err
    assert "fitted on best.ckpt" in lines[0] and "-1" in lines[0]
    assert f"use --ckpt {_best(run)}" in lines[0]
    assert (_microstate_column(out) == -1).all()


def test_last_ckpt_of_the_best_weights_uses_the_runs_microstates(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """After one epoch last.ckpt holds best.ckpt's weights: the run's microstates apply."""
    run = _copy_run(runs, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    assert model_sha256(last) == model_sha256(_best(run))
    out = tmp_path / "pred"
    rc, _, err = _predict(capsys, "--ckpt", last, "--input", runs["new"], "--out", out)
    assert rc == 0 and err == ""
    assert np.array_equal(_microstate_column(out), _microstate_column(runs["reference"]))
