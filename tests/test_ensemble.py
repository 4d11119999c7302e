"""A deep run with a classic member (``ensemble.classic``): the network's share chosen on the
validation sessions with the post-processing, stored with the checkpoint, and applied by every
reader of the model (``load_model``, ``dbm-predict``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dbm_lightning.build import build_datamodule
from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.cli.config import compose_config
from dbm_lightning.config_check import validate_config
from dbm_lightning.errors import ConfigError, DataFormatError
from dbm_lightning.models.classic import ClassicPredictor, load_classic
from dbm_lightning.models.ensemble import ENSEMBLE_KEY, EnsemblePredictor
from dbm_lightning.models.lightning import DBMClassifier
from dbm_lightning.prediction import predict_paths
from dbm_lightning.runs import RunDir, load_model
from dbm_lightning.training import run_training

TINY = [
    "data.mice=4",
    "data.days=1",
    "data.frames=400",
    "data.window=100",
    "data.stride=50",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "logger=none",
    "microstates.enabled=false",
    "split=leave_mouse_out",
    "split.val_mice=[m01]",
    "split.test_mice=[m03]",
    "ensemble.classic=random_forest",
    "model=bilstm",
]


@pytest.fixture(scope="module")
def forced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An ensemble whose only candidate share is 0.5 (so it must be used)."""
    folder = tmp_path_factory.mktemp("ensemble") / "run"
    metrics = run_training(compose_config([*TINY, "ensemble.weights=[0.5]"]), folder)
    return folder, metrics


def test_the_share_is_chosen_on_validation_and_stored(forced: tuple[Path, dict]) -> None:
    folder, metrics = forced
    run = RunDir(folder)
    assert run.ensemble_member_file.is_file()
    choice = metrics["heldout"]["postprocess"]
    assert choice["network_weight"] == 0.5
    assert {r["network_weight"] for r in choice["tried"]} == {0.5}
    stored = read_checkpoint(run.best_checkpoint)[ENSEMBLE_KEY]
    assert stored == {"file": RunDir.ENSEMBLE_MEMBER, "network_weight": 0.5}


def test_every_reader_applies_the_stored_ensemble(
    forced: tuple[Path, dict], tmp_path: Path
) -> None:
    """load_model and dbm-predict give the average of the network's and the member's
    probabilities; the network alone differs."""
    folder, _ = forced
    run = RunDir(folder)
    model = load_model(run.best_checkpoint)
    assert isinstance(model, EnsemblePredictor)
    network = DBMClassifier.from_checkpoint_file(run.best_checkpoint)
    member = ClassicPredictor(load_classic(run.ensemble_member_file))
    dm = build_datamodule(compose_config(TINY))
    dm.setup("fit")
    session = dm.predict_sessions(split="test")[0]
    probs, embedding = model.predict_session(session.features, session.valid)
    net_probs, net_embedding = network.predict_session(session.features, session.valid)
    member_probs, _ = member.predict_session(session.features, session.valid)
    np.testing.assert_allclose(probs, 0.5 * net_probs + 0.5 * member_probs, atol=1e-6)
    np.testing.assert_array_equal(embedding, net_embedding)  # microstates: the network's
    assert not np.allclose(probs, net_probs)

    pose = session.session.source
    out = tmp_path / "pred"
    predict_paths(run.best_checkpoint, [pose], out, smoothing=0, min_bout=1, progress=False)
    table = pd.read_csv(next(out.glob("*.frames.csv")))
    cols = [c for c in table.columns if c.startswith("prob_")]
    ok = table["valid"].to_numpy()
    np.testing.assert_allclose(table[cols].to_numpy()[ok], probs[ok], atol=2e-6)


def test_a_missing_member_file_is_named(forced: tuple[Path, dict], tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "moved"
    shutil.copytree(forced[0], folder)
    RunDir(folder).ensemble_member_file.unlink()
    with pytest.raises(DataFormatError, match=r"ensemble_member\.joblib: the classic member"):
        load_model(RunDir(folder).best_checkpoint)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("ensemble.classic=random_forst", "ensemble.classic: unknown classic model"),
        ("ensemble.weights=[1.5]", "ensemble.weights: must be a non-empty list of numbers"),
    ],
)
def test_ensemble_settings_are_checked(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config([*TINY, override]))
