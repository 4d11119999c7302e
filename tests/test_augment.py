"""Training-time pose augmentation (`dbm_lightning.augment`): the torch features equal the
NumPy ones, one transform per window, NaN kept, labels untouched, only training batches
augmented (in a real Trainer), reproducible per (seed, epoch) and resumable, and a Hydra
fast_dev_run with augment=pose features=egocentric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from helpers import PARTS, ListSource, StepLabeler, walk_session
from pytorch_lightning.callbacks import ModelCheckpoint

from dbm_lightning.augment import (
    AugmentConfig,
    PoseTransform,
    apply_transform,
    augment_pose,
)
from dbm_lightning.cli.config import compose_config
from dbm_lightning.data import DBMDataModule, EpochShuffleSampler, SplitConfig, WindowBatch
from dbm_lightning.features import FeatureConfig, compute_features, feature_names, window_features
from dbm_lightning.models import DBMClassifier
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig, scale_pose
from dbm_lightning.training import run_training

ARENA = ArenaBounds(0.0, 640.0, 0.0, 480.0)
ALL_BLOCKS = FeatureConfig(
    distances=True,
    coordinates=True,
    velocity=True,
    pe_L=3,
    egocentric=True,
    heading=True,
    speed=True,
    ego_centre="body_centre",
    ego_front="nose",
)
ON = AugmentConfig(enabled=True, jitter_px=0.0)


def session_pose(t: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pose = 300 + rng.normal(0, 4, (t, len(PARTS), 2)).cumsum(axis=0) + rng.normal(0, 20, (6, 2))
    pose[min(17, t - 1), 3] = np.nan  # one missing point
    return pose.astype(np.float32)


def numpy_features(pose: np.ndarray, cfg: FeatureConfig = ALL_BLOCKS, fps: float = 30.0):
    return compute_features(pose, scale_pose(pose, ARENA), cfg, fps, PARTS, ARENA)


# ------------------------------------------------------------------- torch == numpy


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_features_equal_numpy_features_all_blocks(dtype: torch.dtype) -> None:
    pose = session_pose()
    ref = numpy_features(pose)
    # (scale_pose rounds the scaled pose to float32: velocities differ by ~1e-6 even in float64)
    tol = {"rtol": 1e-6, "atol": 1e-5} if dtype == torch.float64 else {"rtol": 1e-4, "atol": 2e-4}
    # the whole session as one window: every frame, the last included
    whole = window_features(torch.tensor(pose[None], dtype=dtype), ALL_BLOCKS, ARENA, 30.0, PARTS)
    assert whole.shape == (1, 60, len(feature_names(PARTS, ALL_BLOCKS)))
    np.testing.assert_allclose(whole[0].numpy(), ref, equal_nan=True, **tol)
    # windows inside the session: all frames but each window's last; per-window fps tensor
    starts = [0, 5, 20, 40]
    windows = torch.tensor(np.stack([pose[s : s + 20] for s in starts]), dtype=dtype)
    out = window_features(windows, ALL_BLOCKS, ARENA, torch.full((4,), 30.0), PARTS)
    for b, s in enumerate(starts):
        np.testing.assert_allclose(
            out[b, :-1].numpy(), ref[s : s + 19], equal_nan=True, **tol, err_msg=f"window {s}"
        )
    # the last window ends the session: its last frame matches too
    np.testing.assert_allclose(out[3, -1].numpy(), ref[-1], equal_nan=True, **tol)
    # NaN pose -> NaN features at the same places
    np.testing.assert_array_equal(np.isnan(whole[0].numpy()), np.isnan(ref))


@pytest.mark.parametrize(
    "cfg",
    [FeatureConfig(), FeatureConfig(distances=False, pe_L=2), FeatureConfig(heading=True)],
)
def test_torch_features_single_blocks_and_one_frame(cfg: FeatureConfig) -> None:
    pose = session_pose(9)
    for t in (1, 2, 8):
        ref = numpy_features(pose[:t], cfg)
        out = window_features(
            torch.tensor(pose[None, :t], dtype=torch.float64), cfg, ARENA, 30.0, PARTS
        )
        np.testing.assert_allclose(out[0].numpy(), ref, rtol=1e-6, atol=1e-5, equal_nan=True)


# ------------------------------------------------------------------- the transform


def test_one_similarity_transform_per_window_and_different_windows_differ() -> None:
    pose = torch.tensor(np.stack([session_pose(30, s) for s in range(6)]), dtype=torch.float64)
    pose[:, 17] = 300.0  # no NaN here: fit the transform on every point
    torch.manual_seed(0)
    out = augment_pose(pose, AugmentConfig(enabled=True, jitter_px=0.0), ARENA)
    mats = []
    for b in range(pose.shape[0]):
        src = pose[b].reshape(-1, 2).numpy()
        dst = out[b].reshape(-1, 2).numpy()
        design = np.hstack([src, np.ones((len(src), 1))])
        coef, *_ = np.linalg.lstsq(design, dst, rcond=None)  # dst = src A + t
        np.testing.assert_allclose(design @ coef, dst, atol=1e-8)  # one affine map, all frames
        a = coef[:2].T
        s2 = a @ a.T
        np.testing.assert_allclose(s2, s2[0, 0] * np.eye(2), atol=1e-10)  # rotation x scale
        assert 0.9**2 - 1e-9 <= s2[0, 0] <= 1.1**2 + 1e-9
        mats.append(a)
        # pairwise distances within every frame scale by the same factor
        d0 = torch.cdist(pose[b], pose[b])
        d1 = torch.cdist(out[b], out[b])
        ratio = (d1 / d0)[d0 > 0]
        np.testing.assert_allclose(ratio.numpy(), np.sqrt(s2[0, 0]), rtol=1e-9)
    assert len({tuple(np.round(m.ravel(), 6)) for m in mats}) == len(mats)


def test_transform_parts_rotation_reflection_translation() -> None:
    pose = torch.tensor([[[[420.0, 240.0], [320.0, 340.0]]]])  # (1, 1, 2, 2), centre (320, 240)
    quarter = PoseTransform(
        angle=torch.tensor([np.pi / 2]),
        reflect=torch.tensor([True]),
        shift=torch.tensor([[10.0, -5.0]]),
        scale=torch.tensor([2.0]),
    )
    out = apply_transform(pose, quarter, ARENA)[0, 0]
    # (100, 0) about the centre: mirrored (-100, 0), rotated (0, -100), scaled (0, -200), shifted
    np.testing.assert_allclose(out[0].numpy(), [330.0, 35.0], atol=1e-4)
    np.testing.assert_allclose(out[1].numpy(), [320.0 - 200.0 + 10.0, 235.0], atol=1e-4)


def test_nan_preserved_jitter_only_per_frame_and_reproducible() -> None:
    pose = torch.tensor(np.stack([session_pose(30, s) for s in range(4)]))
    cfg = AugmentConfig(enabled=True, jitter_px=1.0)
    torch.manual_seed(3)
    a = augment_pose(pose, cfg, ARENA)
    torch.manual_seed(3)
    b = augment_pose(pose, cfg, ARENA)
    torch.testing.assert_close(a, b, equal_nan=True)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    torch.testing.assert_close(
        augment_pose(pose, cfg, ARENA, g1), augment_pose(pose, cfg, ARENA, g2), equal_nan=True
    )
    assert not torch.allclose(a.nan_to_num(), augment_pose(pose, cfg, ARENA).nan_to_num())
    nan = torch.isnan(pose).any(dim=-1, keepdim=True).expand_as(pose)
    assert torch.equal(torch.isnan(a), nan)  # NaN stays NaN, finite stays finite
    # off: no change at all (rotation 0, no reflection, no shift, scale 1, no jitter)
    still = AugmentConfig(True, 0.0, 0.0, 0.0, (1.0, 1.0), 0.0)
    torch.testing.assert_close(augment_pose(pose, still, ARENA), pose, equal_nan=True)


def test_config_validation() -> None:
    assert AugmentConfig(scale=[0.8, 1.2]).scale == (0.8, 1.2)
    assert AugmentConfig().to_dict()["scale"] == [0.9, 1.1]
    for bad in (
        {"rotation_deg": 190},
        {"reflection_p": 1.5},
        {"translation": -0.1},
        {"scale": (1.2, 1.1)},
        {"scale": (0.0, 1.0)},
        {"scale": 1.0},
        {"jitter_px": -1.0},
    ):
        with pytest.raises(ValueError):
            AugmentConfig(**bad)


# ------------------------------------------------------------------- the data module


def build_dm(augment: AugmentConfig | None, fps=(30.0, 30.0, 30.0, 30.0), seed: int = 0):
    sessions = [
        walk_session(f"m{i}_day1", 150 + 20 * i, i, f"m{i}", fps=f, long_gap=True)
        for i, f in enumerate(fps)
    ]
    dm = DBMDataModule(
        source=ListSource(sessions),
        labeler=StepLabeler(),
        preprocess=PreprocessConfig(likelihood_threshold=0.6, max_gap=5),
        features=ALL_BLOCKS,
        split=SplitConfig(strategy="leave_mouse_out", val_mice=["m1"]),
        window=40,
        stride=20,
        batch_size=4,
        seed=seed,
        augment=augment,
    )
    dm.setup()
    return dm


def test_training_batches_carry_pose_only_when_enabled() -> None:
    off, on = build_dm(None), build_dm(ON)
    x, y = next(iter(off.train_dataloader()))[:2]
    assert x.shape == (4, 40, off.n_features)
    assert off.datasets["train"].pose is None
    batch = next(iter(on.train_dataloader()))
    xa, ya, pose = batch.x, batch.y, batch.pose
    torch.testing.assert_close(xa, x)
    assert torch.equal(ya, y) and pose.shape == (4, 40, 6, 2) and pose.dtype == torch.float32
    assert len(next(iter(on.val_dataloader()))) == 2  # evaluation batches never carry pose
    # stored pose: all NaN at frames with a missing point, which the store marks invalid
    # (as it does the frame before each: its "t+1" terms are missing)
    ds = on.datasets["train"]
    frame_nan = torch.isnan(ds.pose).any(dim=(1, 2))
    assert torch.equal(frame_nan, torch.isnan(ds.pose).all(dim=(1, 2)))
    invalid = (ds.features == 0).all(dim=1)
    assert frame_nan.any() and bool(invalid[frame_nan].all())
    assert torch.equal(invalid, frame_nan | torch.cat([frame_nan[1:], frame_nan[-1:]]))
    # unaugmented recomputation of a batch equals the stored features (but window ends)
    still = AugmentConfig(True, 0.0, 0.0, 0.0, (1.0, 1.0), 0.0)
    on.augment = still
    z, y2 = on.augment_batch(WindowBatch(xa, ya, pose=pose))
    assert y2 is ya
    torch.testing.assert_close(z[:, :-1], xa[:, :-1], rtol=1e-4, atol=2e-4)
    on.augment = ON
    z, y3 = on.augment_batch(WindowBatch(xa, ya, pose=pose))
    assert y3 is ya and not torch.allclose(z, xa)
    assert torch.isfinite(z).all()


def test_mixed_frame_rates_give_one_per_window() -> None:
    dm = build_dm(ON, fps=(30.0, 25.0, 50.0, 30.0))
    batch = dm.datasets["train"].gather(range(len(dm.datasets["train"])))
    assert batch.fps is not None and batch.pose is not None
    assert set(batch.fps.tolist()) == {30.0, 50.0}  # m0, m2, m3 train; m1 val
    z = dm.augment_batch(batch).x
    assert z.shape == batch.x.shape


class Capture(pl.Callback):
    """Batches as the model sees them (after the transfer hooks)."""

    def __init__(self) -> None:
        self.train: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.val: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        assert batch.pose is None  # augmented: the model sees (x, y) only
        self.train.append((trainer.current_epoch, batch[0].cpu().clone(), batch[1].cpu().clone()))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dl_idx=0) -> None:
        if not trainer.sanity_checking:
            self.val.append(batch[0].cpu().clone())


def fit(dm: DBMDataModule, epochs: int, tmp_path: Path | None = None, ckpt=None) -> Capture:
    torch.manual_seed(0)
    model = DBMClassifier(
        "dbm_baseline", {}, dm.n_features, dm.n_classes, class_names=list(dm.class_names)
    )
    capture = Capture()
    callbacks: list = [capture]
    if tmp_path is not None:
        callbacks.append(ModelCheckpoint(dirpath=tmp_path, save_top_k=-1, every_n_epochs=1))
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=tmp_path is not None,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        callbacks=callbacks,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return capture


def stored_train_batches(dm: DBMDataModule, epoch: int) -> list[tuple[torch.Tensor, ...]]:
    ds = dm.datasets["train"]
    order = list(EpochShuffleSampler(len(ds), dm.seed, epoch))
    return [ds.gather(order[a : a + dm.batch_size]) for a in range(0, len(order), 4)]


def test_trainer_augments_training_only_and_resumes_exactly(tmp_path: Path) -> None:
    dm = build_dm(ON)
    cap = fit(dm, 2, tmp_path)
    val = dm.datasets["val"]
    stored_val = [val.gather(range(a, min(a + 4, len(val))))[0] for a in range(0, len(val), 4)]
    assert len(cap.val) == 2 * len(stored_val)
    for got, want in zip(cap.val, stored_val * 2, strict=True):
        assert torch.equal(got, want)  # validation: the stored features, untouched
    for epoch in (0, 1):
        stored = stored_train_batches(dm, epoch)
        got = [c for c in cap.train if c[0] == epoch]
        assert len(got) == len(stored)
        for (_, x, y), (xs, ys, _) in zip(got, stored, strict=True):
            assert torch.equal(y, ys)  # labels untouched
            assert x.shape == xs.shape and not torch.allclose(x, xs)
    # the same seed gives the same augmentation; a run resumed after epoch 0 continues exactly
    (ckpt0,) = sorted(tmp_path.glob("epoch=0*.ckpt"))
    resumed = fit(build_dm(ON), 2, ckpt=str(ckpt0))
    again = [c for c in cap.train if c[0] == 1]
    assert len(resumed.train) == len(again)
    for (_, x, _), (_, x2, _) in zip(again, resumed.train, strict=True):
        assert torch.equal(x, x2)
    other = fit(build_dm(ON, seed=1), 1)
    assert not torch.equal(other.train[0][1], cap.train[0][1])


def test_trainer_without_augmentation_sees_the_stored_features() -> None:
    dm = build_dm(AugmentConfig(enabled=False))
    cap = fit(dm, 1)
    stored = stored_train_batches(dm, 0)
    assert len(cap.train) == len(stored)
    for (_, x, y), (xs, ys) in zip(cap.train, stored, strict=True):
        assert torch.equal(x, xs) and torch.equal(y, ys)


def test_fast_dev_run_through_hydra_with_pose_augmentation(
    tmp_path: Path, tiny_data: list[str]
) -> None:
    cfg = compose_config(
        ["augment=pose", "features=egocentric", "trainer.fast_dev_run=true", *tiny_data]
    )
    assert cfg.augment.enabled and cfg.augment.jitter_px == 1.0
    metrics = run_training(cfg, tmp_path)
    assert metrics["n_features"] == 51 + 12 + 3 + 1
