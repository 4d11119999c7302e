"""DBM networks, the model factory and the DBMClassifier LightningModule, on random tensors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import CLASS_NAMES, F_IN, C, random_loaders
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from dbm_lightning.models import (
    MODELS,
    DBMBaseline,
    DBMClassifier,
    DBMModified,
    GaussianNoise,
    balanced_accuracy_from_confusion,
    build_model,
    compute_class_weights,
    masked_cross_entropy,
    register_model,
)

logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

# --------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fc_width", "lstm_width"), [(10, 10), (4, 16), (32, 3)])
def test_baseline_shapes(fc_width: int, lstm_width: int) -> None:
    net = DBMBaseline(F_IN, C, fc_width=fc_width, lstm_width=lstm_width)
    x = torch.randn(3, 17, F_IN)
    assert net(x).shape == (3, 17, C)
    assert net.embed(x).shape == (3, 17, lstm_width)
    assert net.embedding_dim == lstm_width
    assert net.lstm.batch_first and net.lstm.num_layers == 1


@pytest.mark.parametrize(("layers", "fc_width", "lstm_width"), [(1, 10, 10), (2, 8, 12), (3, 5, 7)])
def test_modified_shapes_and_depth(layers: int, fc_width: int, lstm_width: int) -> None:
    net = DBMModified(F_IN, C, fc_width=fc_width, lstm_width=lstm_width, lstm_layers=layers)
    x = torch.randn(2, 9, F_IN)
    assert net(x).shape == (2, 9, C)
    assert net.embed(x).shape == (2, 9, lstm_width)
    assert net.lstm.num_layers == layers and net.lstm.batch_first
    n_dropout = sum(isinstance(m, torch.nn.Dropout) for m in net.modules())
    assert n_dropout == 4  # after 3 hidden FC layers + after the LSTMs
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in net.modules())


def test_wrong_input_shape_is_explained() -> None:
    with pytest.raises(ValueError, match=r"\(batch, window, 6\)"):
        DBMBaseline(F_IN, C)(torch.randn(2, 5, F_IN + 1))


@pytest.mark.parametrize("cls", [DBMBaseline, DBMModified])
def test_noise_and_dropout_only_in_training(cls: type) -> None:
    torch.manual_seed(0)
    net = cls(F_IN, C, noise_std=0.5)
    x = torch.randn(4, 10, F_IN)
    net.train()
    assert not torch.equal(net(x), net(x))  # noise (and dropout) active
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
        assert torch.equal(net.embed(x), net.embed(x))
    noise = GaussianNoise(0.3)
    noise.eval()
    assert torch.equal(noise(x), x)
    noise.train()
    assert not torch.equal(noise(x), x)


def test_embed_is_lstm_output_before_noise() -> None:
    torch.manual_seed(0)
    net = DBMModified(F_IN, C, lstm_width=7, lstm_layers=2).eval()
    x = torch.randn(2, 11, F_IN)
    with torch.no_grad():
        h = net.embed(x)
        expected, _ = net.lstm(net.pre(x))
        assert torch.allclose(h, expected)
        assert torch.allclose(net.head(h), net(x))


def test_batchnorm_with_a_single_window_batch() -> None:
    net = DBMModified(F_IN, C, lstm_layers=2)
    net.train()
    x = torch.randn(1, 25, F_IN)
    out = net(x)
    assert out.shape == (1, 25, C) and torch.isfinite(out).all()
    out.sum().backward()
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert bn.num_batches_tracked.item() == 1
    net.eval()
    with torch.no_grad():
        assert net(torch.randn(1, 1, F_IN)).shape == (1, 1, C)  # eval uses running stats


def test_factory_registry() -> None:
    assert set(MODELS) >= {"dbm_baseline", "dbm_modified"}
    net = build_model("dbm_modified", F_IN, C, lstm_layers=3, dropout=0.1)
    assert isinstance(net, DBMModified) and net.lstm.num_layers == 3
    with pytest.raises(ValueError, match="dbm_baseline"):
        build_model("nope", F_IN, C)
    with pytest.raises(TypeError, match="dbm_baseline"):
        build_model("dbm_baseline", F_IN, C, lstm_layers=2)

    class Tiny(DBMBaseline):
        pass

    register_model("tiny_test", Tiny)
    try:
        assert isinstance(build_model("tiny_test", F_IN, C), Tiny)
        with pytest.raises(ValueError, match="already registered"):
            register_model("tiny_test", DBMBaseline)
    finally:
        MODELS.pop("tiny_test")


# --------------------------------------------------------------------------------------------
# loss, class weights, metrics
# --------------------------------------------------------------------------------------------


def test_class_weights_formulas() -> None:
    counts = [10, 0, 100, 1000]
    assert torch.equal(compute_class_weights(counts, "none"), torch.ones(4))

    inv = compute_class_weights(counts, "inverse").double().numpy()
    raw = np.array([1 / 10, 0, 1 / 100, 1 / 1000])
    np.testing.assert_allclose(inv, raw * 3 / raw.sum(), rtol=1e-6)
    assert inv[1] == 0 and inv[[0, 2, 3]].mean() == pytest.approx(1.0)

    for beta in (0.999, 0.9):
        eff = compute_class_weights(counts, "effective", beta=beta).double().numpy()
        n = np.array([10.0, 100.0, 1000.0])
        raw = (1 - beta) / (1 - beta**n)
        np.testing.assert_allclose(eff[[0, 2, 3]], raw * 3 / raw.sum(), rtol=1e-5)
        assert eff[1] == 0 and np.isfinite(eff).all()
    # effective weighting interpolates between none (beta -> 0) and inverse (beta -> 1)
    assert np.allclose(compute_class_weights(counts, "effective", beta=0.0)[[0, 2, 3]], 1.0)
    near_inv = compute_class_weights(counts, "effective", beta=1 - 1e-9).numpy()
    np.testing.assert_allclose(near_inv, inv, rtol=1e-4)

    with pytest.raises(ValueError, match="class_weighting"):
        compute_class_weights(counts, "focal")
    with pytest.raises(ValueError, match="needs class_counts"):
        compute_class_weights(None, "inverse", n_classes=4)


def test_loss_ignores_masked_frames() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 10, C, requires_grad=True)
    y = torch.randint(0, C, (3, 10))
    mask = torch.rand(3, 10) < 0.3
    y_masked = torch.where(mask, torch.full_like(y, -1), y)
    weight = compute_class_weights([5, 1, 20, 3], "inverse")

    loss = masked_cross_entropy(logits, y_masked, weight)
    ref = F.cross_entropy(
        logits.reshape(-1, C), y_masked.reshape(-1), weight=weight, ignore_index=-1
    )
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    # the same loss as on the valid frames alone, whatever the labels were before masking
    y_other = torch.where(mask, (y + 1) % C, y)
    y_other_masked = torch.where(mask, torch.full_like(y, -1), y_other)
    assert masked_cross_entropy(logits, y_other_masked, weight).item() == pytest.approx(loss.item())
    valid_only = F.cross_entropy(logits[~mask], y[~mask], weight=weight)
    assert loss.item() == pytest.approx(valid_only.item(), rel=1e-6)
    # masked frames get no gradient
    loss.backward()
    assert torch.all(logits.grad[mask] == 0) and torch.any(logits.grad[~mask] != 0)

    # nothing to learn from: 0, not NaN
    assert masked_cross_entropy(logits, torch.full_like(y, -1)).item() == 0.0
    zero_w = torch.tensor([1.0, 0.0, 1.0, 1.0])
    assert masked_cross_entropy(logits, torch.ones_like(y), zero_w).item() == 0.0


def test_module_uses_class_weights_in_loss() -> None:
    torch.manual_seed(0)
    counts = [50, 5, 500, 0]
    module = DBMClassifier(
        "dbm_baseline", {}, F_IN, C, CLASS_NAMES, class_weighting="effective", class_counts=counts
    )
    expected = compute_class_weights(counts, "effective", 0.999)
    assert torch.equal(module.class_weights, expected)
    module.eval()
    x = torch.randn(2, 8, F_IN)
    y = torch.randint(0, C, (2, 8))
    y[0, :3] = -1
    with torch.no_grad():
        ref = F.cross_entropy(
            module(x).reshape(-1, C), y.reshape(-1), weight=expected, ignore_index=-1
        )
        assert masked_cross_entropy(module(x), y, module.class_weights).item() == pytest.approx(
            ref.item(), rel=1e-6
        )


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_balanced_accuracy_matches_sklearn() -> None:
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)  # class 3 never true but predicted sometimes
    y_pred = rng.integers(0, 4, 200)
    cm = torch.as_tensor(confusion_matrix(y_true, y_pred, labels=range(4)))
    assert balanced_accuracy_from_confusion(cm).item() == pytest.approx(
        balanced_accuracy_score(y_true, y_pred), rel=1e-6
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_counts_and_metrics_equal_torchmetrics(seed: int) -> None:
    """One confusion-count update per step gives, at the epoch's end, exactly the values of
    the torchmetrics metrics fed with the valid frames of the same steps."""
    from torchmetrics.classification import (
        MulticlassAccuracy,
        MulticlassConfusionMatrix,
        MulticlassF1Score,
    )

    from dbm_lightning.models.metrics import ConfusionCounts, metrics_from_confusion

    gen = torch.Generator().manual_seed(seed)
    n_classes = 5
    counts = ConfusionCounts(n_classes)
    reference = {
        "acc": MulticlassAccuracy(n_classes, average="micro"),
        "macro_f1": MulticlassF1Score(n_classes, average="macro"),
        "f1": MulticlassF1Score(n_classes, average=None),
        "confmat": MulticlassConfusionMatrix(n_classes),
    }
    for _ in range(4):  # steps
        logits = torch.randn(3, 20, n_classes, generator=gen)
        logits[..., 4] -= 10.0  # class 4 is never predicted ...
        y = torch.randint(-1, 3, (3, 20), generator=gen)  # ... nor true; -1 = ignored frame
        counts.update(logits, y)
        valid = y.reshape(-1) >= 0
        for metric in reference.values():
            metric.update(logits.reshape(-1, n_classes)[valid], y.reshape(-1)[valid])
    confusion = counts.compute()
    assert torch.equal(confusion, reference["confmat"].compute())
    values = metrics_from_confusion(confusion)
    for key in ("acc", "macro_f1", "f1"):
        assert torch.equal(values[key], reference[key].compute()), key
    assert values["f1"][4] == 0.0
    assert torch.equal(values["balanced_acc"], balanced_accuracy_from_confusion(confusion))
    counts.reset()
    assert int(counts.confmat.sum()) == 0 and counts.update_count == 0


# --------------------------------------------------------------------------------------------
# Lightning: fit, TensorBoard, checkpoints, prediction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("net", "kwargs", "weighting"),
    [
        ("dbm_baseline", {}, "none"),
        ("dbm_modified", {"lstm_layers": 2, "dropout": 0.3}, "effective"),
        ("dbm_modified", {"lstm_layers": 1, "fc_width": 6}, "inverse"),
    ],
)
def test_fast_dev_run(net: str, kwargs: dict, weighting: str, make_trainer) -> None:
    train, val = random_loaders()
    module = DBMClassifier(
        net, kwargs, F_IN, C, CLASS_NAMES, class_weighting=weighting, class_counts=[9, 3, 0, 20]
    )
    make_trainer(fast_dev_run=2).fit(module, train, val)
    assert module.train_frames_seen == 2 * 4 * 10  # 2 batches x 4 windows x 10 labelled frames
    assert module.train_seconds > 0 and module.train_frames_per_s > 0


def _event_accumulator(log_dir: str):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(
        log_dir, size_guidance={"scalars": 0, "images": 0, "tensors": 0, "histograms": 0}
    )
    acc.Reload()
    return acc


def test_fit_logs_metrics_and_confusion_to_tensorboard_and_reloads(
    tmp_path: Path, make_trainer
) -> None:
    torch.manual_seed(0)
    train, val = random_loaders(n=16, w=12)
    pipeline_state = {"class_names": CLASS_NAMES, "standardizer": {"mean": [0.0] * F_IN}}
    module = DBMClassifier(
        "dbm_modified",
        {"lstm_layers": 2, "fc_width": 8, "lstm_width": 5},
        F_IN,
        C,
        CLASS_NAMES,
        lr=1e-2,
        class_weighting="inverse",
        class_counts=np.array([40, 30, 20, 10]),
        pipeline_state=pipeline_state,
        run_config={"seed": 0, "features": {"pe_L": 4}, "model": {"name": "dbm_modified"}},
    )
    logger = TensorBoardLogger(str(tmp_path), name="tb", version="", default_hp_metric=False)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/acc", mode="max")
    trainer = make_trainer(logger=logger, max_epochs=2, enable_checkpointing=True, callbacks=[ckpt])
    trainer.fit(module, train, val)

    # throughput: every labelled training frame of both epochs was counted
    assert module.train_frames_seen == 2 * 16 * 10
    assert module.train_seconds > 0
    assert np.isfinite(module.best_val_acc())
    assert trainer.callback_metrics["val/acc_best"].item() == pytest.approx(module.best_val_acc())
    assert module.confusion_matrices["val"].shape == (C, C)

    acc = _event_accumulator(logger.log_dir)
    scalars = set(acc.Tags()["scalars"])
    expected = {
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/balanced_acc",
        "val/macro_f1",
        "val/acc_best",
    } | {f"val/f1/{name}" for name in CLASS_NAMES}
    assert expected <= scalars, expected - scalars
    # the module writes no HPARAMS and no hp/ placeholder (the run does, with its results)
    assert not {t for t in scalars if t.startswith("hp")}
    assert "hparams" not in acc.Tags().get("plugins", {}) or not acc.PluginTagToContent("hparams")
    # one validation entry per epoch; the best epoch is the best checkpoint's
    assert [h["epoch"] for h in module.val_history] == [0, 1]
    best = module.val_epoch(torch.load(ckpt.best_model_path, weights_only=True)["epoch"])
    assert best["acc"] == pytest.approx(module.best_val_acc())
    assert best["acc"] == pytest.approx(ckpt.best_model_score.item())
    assert {"macro_f1", "balanced_acc", "loss"} | {f"f1/{c}" for c in CLASS_NAMES} <= set(best)
    images = acc.Images("val/confusion_matrix")
    assert len(images) == 2  # one per validation epoch, none from the sanity check
    assert images[0].width > 100 and images[0].encoded_image_string[:4] == b"\x89PNG"

    # checkpoint alone -> identical eval predictions, same hparams and class weights
    reloaded = DBMClassifier.load_from_checkpoint(ckpt.best_model_path)
    assert reloaded.hparams["pipeline_state"] == pipeline_state
    assert reloaded.class_names == CLASS_NAMES
    assert torch.equal(reloaded.class_weights, module.class_weights)
    best_state = torch.load(ckpt.best_model_path, weights_only=False)["state_dict"]
    module.load_state_dict(best_state)
    module.eval()
    reloaded.eval()
    x = torch.randn(3, 20, F_IN)
    with torch.no_grad():
        assert torch.equal(module(x), reloaded(x))
        assert torch.equal(module.embed(x), reloaded.embed(x))

    results = make_trainer(logger=logger).test(reloaded, val, verbose=False)[0]
    assert {"test/acc", "test/balanced_acc", "test/macro_f1", "test/f1/rest"} <= set(results)


def test_learns_a_trivial_sequence_task(make_trainer) -> None:
    """Label = sign of feature 0 of the *previous* frame: needs the recurrence, learnt fast."""
    torch.manual_seed(0)
    x = torch.randn(96, 30, 3)
    y = (torch.roll(x[:, :, 0], shifts=1, dims=1) > 0).long()
    y[:, 0] = -1
    train = DataLoader(TensorDataset(x[:80], y[:80]), batch_size=8, shuffle=True)
    val = DataLoader(TensorDataset(x[80:], y[80:]), batch_size=16)
    module = DBMClassifier(
        "dbm_baseline", {"fc_width": 16, "lstm_width": 16}, 3, 2, ["neg", "pos"], lr=2e-2
    )
    trainer = make_trainer(max_epochs=15)
    trainer.fit(module, train, val)
    assert module.best_val_acc() > 0.9
    assert trainer.callback_metrics["val/acc"].item() > 0.9


def test_predict_session_and_predict_step(make_trainer) -> None:
    torch.manual_seed(0)
    module = DBMClassifier("dbm_modified", {"lstm_width": 6}, F_IN, C, CLASS_NAMES)
    features = np.random.default_rng(0).normal(size=(257, F_IN)).astype(np.float32)
    module.train()
    probs, emb = module.predict_session(features, chunk=None)
    assert module.training  # mode restored
    assert probs.shape == (257, C) and emb.shape == (257, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    probs_c, emb_c = module.predict_session(features, chunk=50)  # chunks carry the LSTM state
    np.testing.assert_allclose(probs_c, probs, atol=1e-5)
    np.testing.assert_allclose(emb_c, emb, atol=1e-5)
    module.eval()
    with torch.no_grad():
        full = torch.softmax(module(torch.from_numpy(features)[None]), -1)[0].numpy()
    np.testing.assert_allclose(probs, full, atol=1e-6)
    # NaN (invalid) frames are treated as 0 features; empty sessions give empty arrays
    with_nan = features.copy()
    with_nan[10] = np.nan
    assert np.isfinite(module.predict_session(with_nan)[0]).all()
    assert module.predict_session(features[:0])[1].shape == (0, 6)
    with pytest.raises(ValueError, match="features must be"):
        module.predict_session(features[:, :2])

    train, val = random_loaders(n=8, w=12)
    out = make_trainer().predict(module, val)
    assert out[0]["probs"].shape == (4, 12, C) and out[0]["embedding"].shape == (4, 12, 6)
