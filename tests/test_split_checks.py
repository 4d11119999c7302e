"""The split is checked on what the data is: a recording copied under another name, path or
format may not straddle the split; split keys that name no mouse/day, or a split the data is
too small for, are one-line config errors naming the key; a split without validation says so."""

from __future__ import annotations

import gzip
import logging
import os
import shutil
from pathlib import Path

import pytest
from cli_process import run_cli

from dbm_lightning.build import build_datamodule
from dbm_lightning.cli.config import compose_config
from dbm_lightning.data import SplitLeakError
from dbm_lightning.errors import ConfigError


@pytest.fixture(scope="module")
def synth_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two mice x two days of 300 frames written as DeepLabCut CSVs by ``dbm-synth``."""
    from dbm_lightning.cli.synth import main as synth_main

    folder = tmp_path_factory.mktemp("synth") / "dlc"
    args = ["--out", str(folder), "--mice", "2", "--days", "2", "--frames", "300"]
    assert synth_main(args) == 0
    return folder


@pytest.fixture
def dlc(synth_folder: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`synth_folder` that a test may change."""
    return Path(shutil.copytree(synth_folder, tmp_path / "dlc"))


def _datamodule(folder: Path, *overrides: str):
    cfg = ["data=dlc", f"data.path={folder}", "data.window=100", *overrides]
    return build_datamodule(compose_config(cfg))


def _add_to_manifest(folder: Path, row: str) -> None:
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text().rstrip("\n") + f"\n{row}\n")


def _copy_of_m01_day1(folder: Path, how: str) -> str:
    """The recording ``m01_day1.csv`` once more under another file name; that name."""
    original = folder / "m01_day1.csv"
    if how == "copy":
        name = "copy_of_m01.csv"
        shutil.copyfile(original, folder / name)
    elif how == "symlink":
        name = "m01_day1_link.csv"
        try:
            os.symlink(original, folder / name)
        except OSError as exc:  # a file system without symbolic links
            pytest.skip(f"cannot make a symbolic link here: {exc}")
    else:
        name = "m01_day1.csv.gz"
        (folder / name).write_bytes(gzip.compress(original.read_bytes()))
    return name


# ------------------------------------------------------------------ same content, two names


@pytest.mark.parametrize("how", ["copy", "symlink", "gzip"])
def test_one_recording_under_two_file_names_cannot_straddle_the_split(dlc: Path, how: str) -> None:
    """The copy is listed as another mouse (m03) held out for validation while the original
    trains: the same pose on both sides is refused, naming both files and their sides."""
    name = _copy_of_m01_day1(dlc, how)
    _add_to_manifest(dlc, f"{name},m03,1,experimental")
    dm = _datamodule(
        dlc,
        "data.manifest=manifest.csv",
        "split=leave_mouse_out",
        "split.val_mice=[m03]",
        "split.test_fraction=0",
    )
    with pytest.raises(SplitLeakError) as caught:
        dm.setup("fit")
    message = str(caught.value)
    assert "m01_day1.csv " in message or "m01_day1.csv)" in message
    assert name in message
    assert "in train" in message and "in val" in message
    assert "identical pose (300 frames)" in message


def test_identical_content_on_one_side_is_one_logged_warning(
    dlc: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The copy trains beside its original: allowed, but one warning names both files."""
    name = _copy_of_m01_day1(dlc, "copy")
    _add_to_manifest(dlc, f"{name},m01,3,experimental")
    dm = _datamodule(
        dlc,
        "data.manifest=manifest.csv",
        "split=leave_mouse_out",
        "split.val_mice=[m02]",
        "split.test_fraction=0",
    )
    with caplog.at_level(logging.WARNING, logger="dbm_lightning"):
        dm.setup("fit")
    assert dm.assignment["m01_day3"] == dm.assignment["m01_day1"] == "train"  # the copy: day 3
    repeats = [r for r in caplog.records if "more than once" in r.getMessage()]
    assert len(repeats) == 1, caplog.text
    text = repeats[0].getMessage()
    assert "m01_day1.csv" in text and name in text


# ------------------------------------------------------------------ unknown names in the keys


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["split=leave_mouse_out", "split.val_mice=[m99]"],
            "split.val_mice: unknown mouse 'm99' (mice in the data: m01, m02)",
        ),
        (
            ["split=leave_mouse_out", "split.val_mice=[m01]", "split.test_mice=[m98,m99]"],
            "split.test_mice: unknown mice 'm98', 'm99' (mice in the data: m01, m02)",
        ),
        (
            ["split=leave_day_out", "split.val_days=[9]"],
            "split.val_days: unknown day 9 (days in the data: 1, 2)",
        ),
        (
            ["split=leave_day_out", "split.val_days=[1]", "split.test_days=[7]"],
            "split.test_days: unknown day 7 (days in the data: 1, 2)",
        ),
    ],
)
def test_unknown_names_in_split_keys_are_config_errors(
    synth_folder: Path, overrides: list[str], expected: str
) -> None:
    dm = _datamodule(synth_folder, *overrides)
    with pytest.raises(ConfigError) as caught:
        dm.setup("fit")
    assert str(caught.value) == expected
    assert caught.value.key == expected.split(":")[0]


# ------------------------------------------------------------------ too few sessions


@pytest.mark.parametrize(
    ("split", "key", "text"),
    [
        ("trials", "split.val_fraction", "1 session cannot be split into train and validation"),
        ("sessions", "split.val_fraction", "1 session cannot be split into train, validation"),
        ("leave_mouse_out", "split.val_fraction", "1 mouse cannot be split into train"),
        ("leave_day_out", "split.val_fraction", "1 day cannot be split into train"),
        ("kfold", "split.n_folds", "kfold with n_folds=5 needs at least that many sessions"),
        ("heldout", "split.n_folds", "needs at least that many sessions; the data has 1"),
        ("kfold_mouse", "split.n_folds", "needs at least that many mice; the data has 1"),
    ],
)
def test_one_session_cannot_be_held_out_a_config_error(
    synth_folder: Path, tmp_path: Path, split: str, key: str, text: str
) -> None:
    one = tmp_path / "one"
    one.mkdir()
    shutil.copyfile(synth_folder / "m01_day1.csv", one / "m01_day1.csv")
    dm = _datamodule(one, f"split={split}")
    with pytest.raises(ConfigError) as caught:
        dm.setup("fit")
    assert caught.value.key == key
    assert text in str(caught.value)
    assert "\n" not in str(caught.value)


def test_heldout_fold_leaving_one_training_session_cannot_also_validate(
    synth_folder: Path, tmp_path: Path
) -> None:
    """Two sessions, two folds held out for test: the one other session cannot be both the
    training set and the validation set."""
    two = tmp_path / "two"
    two.mkdir()
    for name in ("m01_day1.csv", "m02_day1.csv"):
        shutil.copyfile(synth_folder / name, two / name)
    dm = _datamodule(two, "split=heldout", "split.n_folds=2")
    with pytest.raises(ConfigError) as caught:
        dm.setup("fit")
    assert caught.value.key == "split.val_fraction"
    assert "at least one must remain for training" in str(caught.value)


# ------------------------------------------------------------------ no validation


def test_no_validation_sessions_is_one_logged_warning(
    synth_folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = _datamodule(synth_folder, "split=trials", "split.val_fraction=0")
    with caplog.at_level(logging.WARNING, logger="dbm_lightning"):
        dm.setup("fit")
    assert not dm.has_val
    said = [r.getMessage() for r in caplog.records if "no validation" in r.getMessage()]
    assert said == [
        "no validation sessions (split.val_fraction=0): no best checkpoint or early "
        "stopping; the last epoch is the model"
    ]


# ------------------------------------------------------------------ through dbm-train


@pytest.mark.parametrize(
    ("folder", "overrides", "expected"),
    [
        (
            "dlc",
            ["split=leave_mouse_out", "split.val_mice=[m99]"],
            "dbm-train: split.val_mice: unknown mouse 'm99' (mice in the data: m01, m02)",
        ),
        (
            "one",
            ["split=kfold"],
            "dbm-train: split.n_folds: kfold with n_folds=5 needs at least that many sessions; "
            "the data has 1",
        ),
    ],
)
def test_dbm_train_split_mistake_is_one_line_exit_2(
    synth_folder: Path, tmp_path: Path, folder: str, overrides: list[str], expected: str
) -> None:
    """The mistake stops dbm-train at set-up, before any training: exit status 2 and one
    line naming the key, no traceback."""
    data = synth_folder
    if folder == "one":
        data = tmp_path / "one"
        data.mkdir()
        shutil.copyfile(synth_folder / "m01_day1.csv", data / "m01_day1.csv")
    args = [
        "data=dlc",
        f"data.path={data}",
        "data.window=100",
        "logger=none",
        *overrides,
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    proc = run_cli("dbm-train", args, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dbm-train:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert errors[0].startswith(expected), errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists()
