"""From a run config to the objects that train: the data module, the model of either family,
the Lightning Trainer and logger (one builder per config group, no Hydra involved).

Each builder takes the config mapping of a run (the shape of ``conf/train.yaml``; groups it does
not use may be absent), checks the groups it reads and fills in their defaults from the schema
(:func:`dbm_lightning.config_check.validate_config`).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities import rank_zero_only

from dbm_lightning.augment import AugmentConfig
from dbm_lightning.checkpoints import AtomicCheckpointIO
from dbm_lightning.config_check import plain_config, validate_config
from dbm_lightning.data import (
    SOURCES,
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
from dbm_lightning.schema import trainer_schema


def _checked(cfg: Any, *groups: str) -> dict[str, Any]:
    """The top-level keys and ``groups`` of ``cfg``, checked and complete (a ``???`` left in
    an OmegaConf config raises OmegaConf's ``MissingMandatoryValue``)."""
    return validate_config(plain_config(cfg, throw_on_missing=True), groups=groups)


def _source(data: Mapping[str, Any]) -> SyntheticSource | DLCFolderSource | DBMMatSource:
    """The source of a checked, complete ``data`` group (its class's keys)."""
    cls = SOURCES[data["source"]]
    return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.init})


def build_source(data_cfg: Mapping[str, Any]) -> SyntheticSource | DLCFolderSource | DBMMatSource:
    """The data source named by ``data_cfg["source"]`` (the ``data`` config group; the keys
    of the source's class are taken, the loader's left to :func:`build_datamodule`)."""
    return _source(_checked({"data": dict(data_cfg)}, "data")["data"])


def build_datamodule(cfg: Mapping[str, Any]) -> DBMDataModule:
    """The LightningDataModule from the ``data``, ``labels``, ``preprocess``, ``features``,
    ``split`` and ``augment`` groups (checked, defaults filled in from the schema)."""
    cfg = _checked(cfg, "data", "labels", "preprocess", "features", "split", "augment")
    data = cfg["data"]
    return DBMDataModule(
        source=_source(data),
        labeler=build_labeler(cfg["labels"]),
        preprocess=PreprocessConfig(**cfg["preprocess"]),
        features=FeatureConfig(**cfg["features"]),
        split=SplitConfig(**cfg["split"]),
        arena=ArenaBounds(**data["arena"]) if data["arena"] else None,
        window=data["window"],
        stride=data["stride"],
        eval_stride=data["eval_stride"],
        batch_size=data["batch_size"],
        num_workers=data["num_workers"],
        fps=data["fps"],
        seed=cfg["seed"],
        augment=AugmentConfig(**cfg["augment"]),
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
    """The LightningModule from the ``model``, ``optim`` and ``loss`` groups, sized by ``dm``;
    the whole run config is kept in its hyperparameters (``trainer`` reduced to the keys
    that differ from Lightning's defaults)."""
    run_config = recorded_config(cfg)
    cfg = _checked(cfg, "model", "optim", "loss")
    net_kwargs = dict(cfg["model"])
    name = net_kwargs.pop("name")
    return DBMClassifier(
        net_name=name,
        net_kwargs=net_kwargs,
        n_features=dm.n_features,
        n_classes=dm.n_classes,
        class_names=list(dm.class_names),
        lr=cfg["optim"]["lr"],
        weight_decay=cfg["optim"]["weight_decay"],
        class_weighting=cfg["loss"]["class_weighting"],
        effective_beta=cfg["loss"]["effective_beta"],
        class_counts=[int(c) for c in dm.train_class_counts],
        pipeline_state=dm.pipeline_state(),
        run_config=run_config,
    )


def trainer_arguments(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``trainer`` keys whose value differs from Lightning's default (what
    :func:`build_trainer` passes to ``pl.Trainer``)."""
    trainer = _checked(cfg, "trainer")["trainer"]
    defaults = {f.name: f.default for f in dataclasses.fields(trainer_schema())}
    return {k: v for k, v in trainer.items() if v != defaults[k]}


def recorded_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The run config kept with a trained model of either family (provenance, TensorBoard's
    HPARAMS tab): ``trainer`` reduced to :func:`trainer_arguments`."""
    run_config = dict(plain_config(cfg, throw_on_missing=True))
    if "trainer" in run_config:
        run_config["trainer"] = trainer_arguments(run_config)
    return run_config


def is_classic(cfg: Mapping[str, Any]) -> bool:
    """Whether ``cfg["model"]`` names a classic (scikit-learn) model rather than a network."""
    return (cfg.get("model") or {}).get("name") in CLASSIC_MODELS


def build_classic_model(cfg: Mapping[str, Any]) -> ClassicModel:
    """The unfitted classic model of the ``model`` group (``name`` plus its arguments)."""
    return build_classic(_checked(cfg, "model")["model"])


class EpochTensorBoardLogger(TensorBoardLogger):
    """TensorBoard curves against the epoch (every metric of the module is logged once per
    epoch), not Lightning's global step: the x axis of every run reads the same."""

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        super().log_metrics(metrics, int(epoch) if epoch is not None else step)

    @rank_zero_only
    def save(self) -> None:
        """Flush the events; no ``hparams.yaml`` (the checkpoint holds the hyperparameters, and
        ``hparams.json`` the HPARAMS tab's)."""
        if self._experiment is not None:
            self._experiment.flush()


def build_logger(cfg: Mapping[str, Any], output_dir: Path) -> TensorBoardLogger | bool:
    """A TensorBoard logger, curves against the epoch (``False`` for ``logger=none``); the
    HPARAMS tab is written with the run's results (:mod:`dbm_lightning.hparams_tab`)."""
    logger = _checked(cfg, "logger")["logger"]
    if logger["kind"] == "none":
        return False
    return EpochTensorBoardLogger(
        save_dir=logger["save_dir"] or str(output_dir),
        name=logger["name"],
        version=logger["version"],
        default_hp_metric=False,
    )


class StayStopped(pl.Callback):
    """A run that early stopping ended stays ended when it is resumed (Lightning restores the
    early-stopping state, not ``trainer.should_stop``): resumed after its fit (stopped in the
    held-out step, say), it trains no further epoch and ends as the uninterrupted run."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks):
            trainer.should_stop = True


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
    cfg = _checked(cfg, "callbacks", "trainer")
    ck, es = cfg["callbacks"]["checkpoint"], cfg["callbacks"]["early_stopping"]
    run = RunDir(output_dir)
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoint_dir,
        filename=RunDir.BEST,
        monitor=ck["monitor"],
        mode=ck["mode"],
        save_top_k=ck["save_top_k"],
        auto_insert_metric_name=False,
        # one best.ckpt, the model metrics.json names (not best-v1.ckpt beside an old one)
        enable_version_counter=ck["save_top_k"] not in (0, 1),
    )
    callbacks = [checkpoint, EpochSeed(cfg["seed"]), *callbacks]
    if ck["save_last"]:
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
    if es["enabled"]:
        callbacks.append(
            EarlyStopping(monitor=es["monitor"], mode=es["mode"], patience=es["patience"])
        )
        callbacks.append(StayStopped())
    trainer = pl.Trainer(
        default_root_dir=str(output_dir),
        logger=logger,
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        deterministic=cfg["deterministic"],
        use_distributed_sampler=False,  # DBMDataModule shares the windows between processes
        **trainer_arguments(cfg),
    )
    return trainer, checkpoint
