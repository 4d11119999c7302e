"""Overlapping-window inference: every frame predicted once, edge frames decided with context,
and validation metrics equal to the predictions the model writes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from dbm_lightning.data import window_starts
from dbm_lightning.models import DBMClassifier
from dbm_lightning.models.inference import accumulate_windows, predict_overlapping, window_weights
from dbm_lightning.models.metrics import metrics_from_confusion

logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def test_window_weights_taper() -> None:
    w = window_weights(10)
    assert w.shape == (10,) and bool((w > 0).all())
    assert torch.allclose(w, w.flip(0))
    assert float(w[0]) < 0.05 and float(w[4]) > 0.95
    assert window_weights(1).tolist() == [1.0]
    with pytest.raises(ValueError, match="window"):
        window_weights(0)


@pytest.mark.parametrize(("t", "window", "stride"), [(100, 20, 10), (97, 16, 5), (7, 20, 5)])
def test_every_frame_predicted_once_as_the_weighted_mean(t: int, window: int, stride: int) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(t, 3)).astype(np.float32)
    calls = []

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(x.shape[0])
        probs = torch.softmax(x[..., :2] * 3, dim=-1)
        return probs, x * 2  # the "embedding"

    probs, emb = predict_overlapping(run, features, window, stride, batch_size=3)
    assert probs.shape == (t, 2) and emb.shape == (t, 3)
    # reference: a loop over windows (tests only)
    w = min(window, t)
    weights = window_weights(w).numpy().astype(np.float64)
    num = np.zeros((t, 2))
    den = np.zeros(t)
    for s in window_starts(t, w, min(stride, w)):
        p = torch.softmax(torch.from_numpy(features[s : s + w, :2]) * 3, dim=-1).numpy()
        num[s : s + w] += p * weights[:, None]
        den[s : s + w] += weights
    np.testing.assert_allclose(probs, num / den[:, None], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb, features * 2, rtol=1e-5, atol=1e-6)  # same at every window
    assert sum(calls) == len(window_starts(t, w, min(stride, w)))


def test_edge_frames_are_decided_by_a_window_with_context() -> None:
    """A fake network that is wrong (class 1) within 3 frames of a window's edge and right
    (class 0) elsewhere: averaged overlapping windows get every frame right except the
    session's own first and last frames, which no window sees with context on both sides;
    tiled windows get every window edge wrong."""
    t, window, margin = 120, 24, 3

    def run(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, w, _ = x.shape
        pos = torch.arange(w)
        edge = (pos < margin) | (pos >= w - margin)
        probs = torch.zeros(b, w, 2)
        probs[:, ~edge, 0] = 1.0
        probs[:, edge, 1] = 1.0
        return probs, torch.zeros(b, w, 1)

    features = np.zeros((t, 1), np.float32)
    probs, _ = predict_overlapping(run, features, window, window // 2)
    pred = probs.argmax(axis=1)
    assert (pred[margin:-margin] == 0).all()
    assert (pred[:margin] == 1).all() and (pred[-margin:] == 1).all()
    tiled = predict_overlapping(run, features, window, window)[0].argmax(axis=1)
    assert (tiled[window - margin : window + margin] == 1).all()  # edges without context


def test_accumulate_windows_sums_in_place() -> None:
    values = torch.ones(2, 4, 1)
    sums, wsum = torch.zeros(6, 1), torch.zeros(6)
    accumulate_windows(values, torch.tensor([0, 2]), torch.ones(4), sums, wsum)
    assert wsum.tolist() == [1, 1, 2, 2, 1, 1]
    assert sums[:, 0].tolist() == [1, 1, 2, 2, 1, 1]


def _fit(tmp_path: Path, dm, net: str, net_kwargs: dict) -> DBMClassifier:
    dm.setup()
    module = DBMClassifier(
        net_name=net,
        net_kwargs=net_kwargs,
        n_features=dm.n_features,
        n_classes=dm.n_classes,
        class_names=list(dm.class_names),
        pipeline_state=dm.pipeline_state(),
    )
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(module, datamodule=dm)
    module.trainer_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return module


@pytest.mark.parametrize(
    ("net", "net_kwargs"),
    [("dbm_baseline", {}), ("dbm_modified", {"lstm_layers": 1})],
)
def test_overlapping_validation_counts_each_frame_once_and_matches_prediction(
    tmp_path: Path, net: str, net_kwargs: dict, make_sessions, make_datamodule
) -> None:
    torch.manual_seed(0)
    dm = make_datamodule(make_sessions(), window=40, stride=20, eval_stride=10, batch_size=4)
    module = _fit(tmp_path, dm, net, net_kwargs)
    x, y, starts = dm.datasets["val"].gather([0, 1])[:3]  # batches carry the window starts
    assert starts.tolist() == dm.datasets["val"].starts[:2].tolist()
    assert module.inference_windows() == (40, 10)

    # the validation metrics are exactly those of predict_session on the whole val sessions
    n_classes = dm.n_classes
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.long)
    frames = 0
    for prepared in dm.predict_sessions(split="val"):
        probs, emb = module.predict_session(prepared.features)
        assert probs.shape == (len(prepared.labels), n_classes)
        assert emb.shape == (len(prepared.labels), module.embedding_dim)
        keep = prepared.labels >= 0
        frames += int(keep.sum())
        np.add.at(confusion.numpy(), (prepared.labels[keep], probs.argmax(axis=1)[keep]), 1)
    expected = metrics_from_confusion(confusion)
    assert int(confusion.sum()) == frames == dm.summary()["splits"]["val"]["labelled_frames"]
    assert module.trainer_metrics["val/acc"] == pytest.approx(float(expected["acc"]), abs=1e-6)
    assert module.trainer_metrics["val/macro_f1"] == pytest.approx(
        float(expected["macro_f1"]), abs=1e-6
    )


def test_tiled_evaluation_is_unchanged_and_stateful_nets_run_whole_sessions(
    tmp_path: Path, make_sessions, make_datamodule
) -> None:
    dm = make_datamodule(make_sessions(), window=40, stride=20, batch_size=4)
    dm.setup()
    assert len(dm.datasets["val"].gather([0])) == 2  # (x, y): no starts when tiled
    module = _fit(tmp_path, dm, "dbm_baseline", {})
    assert module.inference_windows() is None  # one sequential pass, as the original DBM
    prepared = dm.predict_sessions(split="val")[0]
    whole, _ = module.predict_session(prepared.features, chunk=None)
    chunked, _ = module.predict_session(prepared.features, chunk=7)
    np.testing.assert_allclose(whole, chunked, atol=1e-5)
    windowed, _ = module.predict_session(prepared.features, window=40, stride=10)
    assert windowed.shape == whole.shape and not np.allclose(windowed, whole, atol=1e-4)
