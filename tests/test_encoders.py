"""The non-causal sequence encoders (`BiLSTMNet`, `TCNNet`) against the network contract shared
with the DBM nets: shapes, `stateful`, look-ahead, the TCN's exact receptive field, argument
checks, training in `DBMClassifier` and `dbm-train model=bilstm|tcn` through Hydra."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CLASS_NAMES, F_IN, random_loaders

from dbm_lightning.cli.config import compose_config
from dbm_lightning.config_check import validate_config
from dbm_lightning.errors import ConfigError
from dbm_lightning.models import (
    MODELS,
    BiLSTMNet,
    DBMBaseline,
    DBMClassifier,
    TCNNet,
    build_model,
)
from dbm_lightning.training import run_training

logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

C = len(CLASS_NAMES)
SMALL = {
    "dbm_baseline": ({"fc_width": 6, "lstm_width": 5}, 5),
    "dbm_modified": ({"fc_width": 6, "lstm_width": 5, "lstm_layers": 2}, 5),
    "bilstm": ({"fc_width": 6, "lstm_width": 5, "lstm_layers": 2}, 10),
    "tcn": ({"channels": 7, "levels": 3, "kernel_size": 3}, 7),
}
"""Per registered name: small hyperparameters and the embedding width they give."""
STATEFUL = {"dbm_baseline": True, "dbm_modified": True, "bilstm": False, "tcn": False}


def _changed_frames(net: torch.nn.Module, x: torch.Tensor, t: int) -> torch.Tensor:
    """Frames whose logits change when frame ``t`` of ``x`` changes (eval mode, float64)."""
    net = net.double().eval()
    x = x.double()
    x2 = x.clone()
    x2[:, t] += 3.0
    with torch.no_grad():
        diff = (net(x2) - net(x)).abs().amax(dim=(0, 2))
    return torch.nonzero(diff > 0).flatten()


# ------------------------------------------------------------------------------ contract


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("window", [1, 7, 20])
def test_shapes_embedding_dim_and_stateful(name: str, window: int) -> None:
    kwargs, h = SMALL[name]
    net = build_model(name, F_IN, C, **kwargs).eval()
    assert MODELS[name].stateful is STATEFUL[name]
    assert net.embedding_dim == h
    x = torch.randn(3, window, F_IN)
    with torch.no_grad():
        logits = net(x)
        emb = net.embed(x)
        enc, state = net.encode(x)
    assert logits.shape == (3, window, C)
    assert emb.shape == (3, window, h)
    assert torch.equal(enc, emb)
    assert torch.allclose(net.head(enc), logits)
    if STATEFUL[name]:
        assert state is not None
    else:
        assert state is None
    with pytest.raises(ValueError, match=rf"\(batch, window, {F_IN}\)"):
        net(torch.randn(2, window, F_IN + 1))
    with pytest.raises(ValueError, match="batch, window"):
        net(torch.randn(window, F_IN))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_stateful_means_chunks_carry_the_sequence(name: str) -> None:
    """A stateful net gives the same embedding in two chunks as in one pass; a non-stateful one
    ignores the state it is given."""
    torch.manual_seed(0)
    net = build_model(name, F_IN, C, **SMALL[name][0]).eval()
    x = torch.randn(2, 16, F_IN)
    with torch.no_grad():
        whole, _ = net.encode(x)
        first, state = net.encode(x[:, :9])
        second, _ = net.encode(x[:, 9:], state)
    if net.stateful:
        assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-6)
    else:
        with torch.no_grad():
            assert torch.equal(net.encode(x[:, 9:], ("junk",))[0], second)


def test_noise_and_dropout_only_in_training() -> None:
    x = torch.randn(2, 12, F_IN)
    for net in (BiLSTMNet(F_IN, C, batchnorm=True), TCNNet(F_IN, C, levels=3)):
        torch.manual_seed(0)
        net.train()
        assert not torch.equal(net(x), net(x))
        net.eval()
        with torch.no_grad():
            assert torch.equal(net(x), net(x))


# ------------------------------------------------------------------------------ BiLSTM


def test_bilstm_sees_future_frames_the_baseline_does_not() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 15, F_IN)
    t_future = 10
    bi = _changed_frames(BiLSTMNet(F_IN, C, fc_width=8, lstm_width=6), x, t_future)
    uni = _changed_frames(DBMBaseline(F_IN, C), x, t_future)
    assert bi.tolist() == list(range(15))  # every frame, before and after t
    assert uni.tolist() == list(range(t_future, 15))  # causal: only t and later


def test_bilstm_structure() -> None:
    net = BiLSTMNet(F_IN, C, fc_width=8, lstm_width=6, lstm_layers=3, dropout=0.3, batchnorm=True)
    assert net.lstm.bidirectional and net.lstm.batch_first and net.lstm.num_layers == 3
    assert net.lstm.dropout == pytest.approx(0.3)
    assert BiLSTMNet(F_IN, C, lstm_layers=1, dropout=0.3).lstm.dropout == 0.0
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in BiLSTMNet(F_IN, C).modules())
    with torch.no_grad():
        x = torch.randn(2, 5, F_IN)
        expected, _ = net.eval().lstm(net.pre(x))
        assert torch.allclose(net.embed(x), expected)  # before dropout / BatchNorm


# ------------------------------------------------------------------------------ TCN


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("levels", [1, 3])
def test_tcn_length_and_exact_receptive_field(kernel_size: int, levels: int) -> None:
    torch.manual_seed(1)
    net = TCNNet(F_IN, C, channels=16, levels=levels, kernel_size=kernel_size)
    rf = net.receptive_field
    assert rf == 1 + (kernel_size - 1) * (2**levels - 1)
    half = (rf - 1) // 2
    for window in (1, 4, 9):
        assert net(torch.randn(2, window, F_IN)).shape == (2, window, C)
    window = rf + 2 * 6 + 1
    x = torch.randn(3, window, F_IN)
    for t in (window // 2, 2, window - 1):
        changed = _changed_frames(net, x, t).tolist()
        assert changed == list(range(max(t - half, 0), min(t + half, window - 1) + 1)), t


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"kernel_size": 4}, "kernel_size"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": -3}, "kernel_size"),
        ({"levels": 0}, "levels"),
        ({"channels": 0}, "channels"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"noise_std": -1.0}, "std"),
    ],
)
def test_tcn_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        TCNNet(F_IN, C, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"lstm_layers": 0}, "lstm_layers"),
        ({"lstm_width": 0}, "lstm_width"),
        ({"dropout": 1}, "dropout"),
    ],
)
def test_bilstm_bad_arguments(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        BiLSTMNet(F_IN, C, **kwargs)


# ------------------------------------------------------------------------------ training


@pytest.mark.parametrize("name", ["bilstm", "tcn"])
def test_classifier_fast_dev_run(name: str, make_trainer) -> None:
    train, val = random_loaders()
    module = DBMClassifier(name, SMALL[name][0], F_IN, C, CLASS_NAMES)
    make_trainer(fast_dev_run=1).fit(module, train, val)
    assert module.train_frames_seen == 4 * 10
    assert module.embedding_dim == SMALL[name][1]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=bilstm", "model.lstm_width=8", "model.batchnorm=true"],
        ["model=tcn", "model.channels=8", "model.levels=4", "model.kernel_size=5"],
    ],
)
def test_dbm_train_fast_dev_run(tmp_path: Path, overrides: list[str], tiny_data: list[str]) -> None:
    cfg = compose_config([*overrides, "trainer.fast_dev_run=true", *tiny_data])
    metrics = run_training(cfg, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["class_names"] == metrics["class_names"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=bilstm", "+model.levels=3"], "model.levels: unknown key for model bilstm"),
        (["model=tcn", "model.kernel_size=4"], "model.kernel_size: must be an odd"),
        (["model=tcn", "model.levels=0"], "model.levels: must be a positive integer"),
        (["model=tcn", "model.channels=-2"], "model.channels: must be a positive integer"),
        (["model=bilstm", "model.dropout=1.5"], "model.dropout: must be in"),
    ],
)
def test_config_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_config(overrides))


@pytest.mark.parametrize(
    ("model", "size"),
    [("bilstm", ["model.fc_width=8", "model.lstm_width=6"]), ("tcn", ["model.channels=8"])],
)
def test_microstates_and_prediction_work_with_every_encoder(
    tmp_path: Path, model: str, size: list[str]
) -> None:
    """A real (1-epoch) run of a non-stateful encoder fits microstates on its per-frame
    embedding, and dbm-predict's library call labels a new session over overlapping windows
    with one row per frame and the microstate of every valid frame."""
    import pandas as pd

    from dbm_lightning.prediction import predict_paths
    from dbm_lightning.synthetic import SyntheticConfig, ensure_dataset

    cfg = compose_config(
        [
            f"model={model}",
            *size,
            "data.mice=2",
            "data.days=2",
            "data.frames=600",
            "data.window=100",
            "data.stride=50",
            "data.eval_stride=25",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "logger=none",
            "microstates.k=4",
        ]
    )
    metrics = run_training(cfg, tmp_path / "run")
    assert metrics["microstates"]["k"] == 4
    width = 2 * 6 if model == "bilstm" else 8
    ms = np.load(tmp_path / "run" / "microstates.npz")
    assert ms["centroids"].shape == (4, width)  # clustered the encoder's embedding

    data = ensure_dataset(SyntheticConfig(mice=2, days=2, frames=600, seed=0))
    session = sorted(data.glob("m01_day1.csv"))[0]
    predict_paths(metrics["best_checkpoint"], [session], tmp_path / "pred", progress=False)
    frames = pd.read_csv(tmp_path / "pred" / "m01_day1.frames.csv")
    assert len(frames) == 600 and frames["frame"].tolist() == list(range(600))
    assert frames["microstate"].notna().sum() > 500
