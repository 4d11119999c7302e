"""From a run config to the objects that train: the data module, the model of either family,
the Lightning Trainer and logger (one builder per config group, no Hydra involved).

Each builder takes the plain config mapping of a run (the shape of ``conf/train.yaml``,
defaults filled in by :func:`dbm_lightning.schema.check_config`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from dbm_lightning.augment import AugmentConfig
from dbm_lightning.checkpoints import AtomicCheckpointIO
from dbm_lightning.data import (
    DBMDataModule,
    DBMMatSource,
    DLCFolderSource,
    SplitConfig,
    SyntheticSource,
)
from dbm_lightning.features import FeatureConfig
from dbm_lightning.labeling import build_labeler
from dbm_lightning.models import DBMClassifier
from dbm_lightning.models.classic import CLASSIC_MODELS, ClassicModel, build_classic
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig
from dbm_lightning.runs import RunDir


def plain_config(cfg: Any) -> Any:
    """A plain ``dict``/``list`` copy of ``cfg`` (accepts OmegaConf containers too)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, DictConfig | ListConfig):
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(cfg, Mapping):
        return {k: plain_config(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [plain_config(v) for v in cfg]
    return cfg


def build_source(data_cfg: Mapping[str, Any]) -> SyntheticSource | DLCFolderSource | DBMMatSource:
    """The data source named by ``data_cfg["source"]`` (the ``data`` config group)."""
    kind = data_cfg.get("source")
    if kind == "synthetic":
        return SyntheticSource(
            mice=int(data_cfg["mice"]),
            days=int(data_cfg["days"]),
            frames=int(data_cfg["frames"]),
            seed=int(data_cfg["seed"]),
        )
    if kind == "dlc":
        return DLCFolderSource(
            path=data_cfg["path"],
            pattern=data_cfg.get("pattern", "{mouse}_day{day}"),
            manifest=data_cfg.get("manifest"),
            skip_corrupted=bool(data_cfg.get("skip_corrupted", False)),
            individual=data_cfg.get("individual"),
            fps=data_cfg.get("fps"),
        )
    if kind == "dbm_mat":
        return DBMMatSource(path=data_cfg["path"])
    raise ValueError(f"data.source must be one of synthetic, dlc, dbm_mat; got {kind!r}")


def build_datamodule(cfg: Mapping[str, Any]) -> DBMDataModule:
    """The LightningDataModule from the ``data``, ``labels``, ``preprocess``, ``features``,
    ``split`` and ``augment`` groups."""
    cfg = plain_config(cfg)
    data_cfg = cfg["data"]
    arena = data_cfg.get("arena")
    return DBMDataModule(
        source=build_source(data_cfg),
        labeler=build_labeler(cfg["labels"]),
        preprocess=PreprocessConfig(**cfg.get("preprocess", {})),
        features=FeatureConfig(**cfg.get("features", {})),
        split=SplitConfig(**cfg.get("split", {})),
        arena=ArenaBounds(**arena) if arena else None,
        window=int(data_cfg.get("window", 200)),
        stride=int(data_cfg.get("stride", 100)),
        eval_stride=data_cfg.get("eval_stride"),
        batch_size=int(data_cfg.get("batch_size", 32)),
        num_workers=int(data_cfg.get("num_workers", 0)),
        fps=data_cfg.get("fps"),
        seed=int(cfg.get("seed", 0)),
        augment=AugmentConfig(**(cfg.get("augment") or {})),
    )


def describe_data(summary: Mapping[str, Any]) -> str:
    """One paragraph on the sessions of a run: split sizes, skipped files, gap fractions."""
    sessions = summary.get("sessions", {})
    text = "sessions: " + ", ".join(f"{n} {split}" for split, n in sessions.items())
    skipped = summary.get("skipped") or []
    if skipped:
        text += f"; {len(skipped)} skipped: " + "; ".join(
            f"{s['path']} ({s['reason']})" for s in skipped
        )
    gaps = summary.get("gaps") or []
    for key, what in (
        ("frac_low_likelihood", "frames with a low-likelihood point"),
        ("frac_interpolated", "interpolated"),
        ("frac_missing", "still missing (masked out of the loss)"),
    ):
        values = [g[key] for g in gaps if key in g]
        if values:
            worst = max(gaps, key=lambda g: g.get(key, 0.0))
            text += (
                f"; {what}: median {100 * float(np.median(values)):.1f} %"
                f" (max {100 * worst[key]:.1f} % in {worst['session']})"
            )
    return text


def build_classifier(cfg: Mapping[str, Any], dm: DBMDataModule) -> DBMClassifier:
    """The LightningModule from the ``model``, ``optim`` and ``loss`` groups, sized by ``dm``."""
    cfg = plain_config(cfg)
    model_cfg = dict(cfg["model"])
    name = model_cfg.pop("name")
    optim = cfg.get("optim", {})
    loss = cfg.get("loss", {})
    return DBMClassifier(
        net_name=name,
        net_kwargs=model_cfg,
        n_features=dm.n_features,
        n_classes=dm.n_classes,
        class_names=list(dm.class_names),
        lr=float(optim.get("lr", 3e-3)),
        weight_decay=float(optim.get("weight_decay", 1e-4)),
        class_weighting=loss.get("class_weighting", "none"),
        effective_beta=float(loss.get("effective_beta", 0.999)),
        class_counts=[int(c) for c in dm.train_class_counts],
        pipeline_state=dm.pipeline_state(),
        run_config=cfg,
    )


def is_classic(cfg: Mapping[str, Any]) -> bool:
    """Whether ``cfg["model"]`` names a classic (scikit-learn) model rather than a network."""
    return (cfg.get("model") or {}).get("name") in CLASSIC_MODELS


def build_classic_model(cfg: Mapping[str, Any]) -> ClassicModel:
    """The unfitted classic model of the ``model`` group (``name`` plus its arguments)."""
    return build_classic(plain_config(cfg)["model"])


def build_logger(cfg: Mapping[str, Any], output_dir: Path) -> TensorBoardLogger | bool:
    """A TensorBoard logger whose HPARAMS tab compares runs on ``hp/*`` metrics."""
    logger_cfg = dict(cfg.get("logger") or {"kind": "tensorboard"})
    if logger_cfg.get("kind", "tensorboard") == "none":
        return False
    save_dir = logger_cfg.get("save_dir") or str(output_dir)
    return TensorBoardLogger(
        save_dir=save_dir,
        name=logger_cfg.get("name", RunDir.TENSORBOARD),
        version=logger_cfg.get("version", ""),
        default_hp_metric=False,
    )


class EpochSeed(pl.Callback):
    """Reseed Python, NumPy and torch before the first batch of every training epoch from
    ``(seed, epoch)``, so dropout and noise in an epoch do not depend on the epochs before it:
    a run resumed from an epoch-end checkpoint continues exactly as the uninterrupted run
    would. (At the first batch rather than at ``on_train_epoch_start``, which Lightning skips
    for the first epoch after restoring a checkpoint written at an epoch's end.)"""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if batch_idx != 0:
            return
        state = np.random.SeedSequence([self.seed, trainer.current_epoch]).generate_state(1)
        seed = int(state[0])
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


def build_trainer(
    cfg: Mapping[str, Any],
    output_dir: Path,
    logger: TensorBoardLogger | bool,
    callbacks: Sequence[pl.Callback] = (),
) -> tuple[pl.Trainer, ModelCheckpoint]:
    """The Lightning Trainer with best/last checkpoints (written atomically), per-epoch
    seeding, optional early stopping and any extra ``callbacks``."""
    cfg = plain_config(cfg)
    cb_cfg = cfg.get("callbacks", {})
    ck = dict(cb_cfg.get("checkpoint", {}))
    run = RunDir(output_dir)
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoint_dir,
        filename=RunDir.BEST,
        monitor=ck.get("monitor", "val/acc"),
        mode=ck.get("mode", "max"),
        save_top_k=int(ck.get("save_top_k", 1)),
        auto_insert_metric_name=False,
    )
    callbacks = [checkpoint, EpochSeed(int(cfg.get("seed", 0))), *callbacks]
    if ck.get("save_last", True):
        # Lightning's own save_last refreshes last.ckpt only when a best checkpoint is saved;
        # resuming needs the state after every epoch, so a second callback writes it.
        callbacks.insert(
            1,
            ModelCheckpoint(
                dirpath=run.checkpoint_dir,
                filename=RunDir.LAST,
                monitor=None,
                save_top_k=1,
                every_n_epochs=1,
                enable_version_counter=False,
            ),
        )
    es = cb_cfg.get("early_stopping") or {}
    if es.get("enabled", False):
        callbacks.append(
            EarlyStopping(
                monitor=es.get("monitor", "val/acc"),
                mode=es.get("mode", "max"),
                patience=int(es.get("patience", 10)),
            )
        )
    trainer_kwargs = {k: v for k, v in cfg.get("trainer", {}).items() if v is not None}
    trainer = pl.Trainer(
        default_root_dir=str(output_dir),
        logger=logger,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        deterministic=bool(cfg.get("deterministic", True)),
        **trainer_kwargs,
    )
    return trainer, checkpoint
