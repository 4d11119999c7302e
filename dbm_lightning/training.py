"""One training run from a plain configuration mapping, with no Hydra involved.

``run_training(cfg, output_dir)`` is what ``dbm-train`` calls after Hydra has composed the
configuration; a notebook can call it with a nested ``dict`` of the same shape as the
composed ``conf/train.yaml`` (``dbm_lightning.cli.config.compose_config`` builds one). The
pieces it builds from each config group are public too: :func:`build_datamodule`,
:func:`build_classifier`, :func:`build_trainer`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from dbm_lightning.atomic import write_json_atomic, write_text_atomic
from dbm_lightning.augment import AugmentConfig
from dbm_lightning.checkpoints import (
    LAST_CHECKPOINT,
    AtomicCheckpointIO,
    check_compatible,
    read_checkpoint,
    resolve_ckpt_path,
)
from dbm_lightning.config_check import validate_config
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
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig
from dbm_lightning.runs import METRICS_FILE, clear_outcome

log = logging.getLogger(__name__)


def _plain(cfg: Any) -> Any:
    """A plain ``dict``/``list`` copy of ``cfg`` (accepts OmegaConf containers too)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, DictConfig | ListConfig):
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        pass
    if isinstance(cfg, Mapping):
        return {k: _plain(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [_plain(v) for v in cfg]
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
    cfg = _plain(cfg)
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
    cfg = _plain(cfg)
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


def build_logger(cfg: Mapping[str, Any], output_dir: Path) -> TensorBoardLogger | bool:
    """A TensorBoard logger whose HPARAMS tab compares runs on ``hp/*`` metrics."""
    logger_cfg = dict(cfg.get("logger") or {"kind": "tensorboard"})
    if logger_cfg.get("kind", "tensorboard") == "none":
        return False
    save_dir = logger_cfg.get("save_dir") or str(output_dir)
    return TensorBoardLogger(
        save_dir=save_dir,
        name=logger_cfg.get("name", "tensorboard"),
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
    cfg = _plain(cfg)
    cb_cfg = cfg.get("callbacks", {})
    ck = dict(cb_cfg.get("checkpoint", {}))
    checkpoint = ModelCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="best",
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
                dirpath=output_dir / "checkpoints",
                filename=Path(LAST_CHECKPOINT).stem,
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


def _scalar_metrics(metrics: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """The ``prefix``-ed scalar metrics of a Lightning metrics dict, as floats."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if not key.startswith(prefix):
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        out[key] = float(value)
    return out


def run_training(
    cfg: Mapping[str, Any], output_dir: str | Path, callbacks: Sequence[pl.Callback] = ()
) -> dict[str, Any]:
    """Train one model as configured, write ``metrics.json`` in ``output_dir`` and return it.

    Steps: seed everything (seed 0 included), build and set up the data module, build the
    classifier, fit with best/last checkpoints, evaluate the best checkpoint on the test split
    when there is one, and record validation/test metrics, the sessions used and skipped, wall
    time and training throughput. ``callbacks`` are added to the Trainer's.

    ``cfg["ckpt_path"]`` resumes from a checkpoint (``"last"``: this output directory's
    ``checkpoints/last.ckpt``); it must have been trained on the same body parts, classes and
    features. Resuming a run killed mid-epoch repeats that epoch and ends with the same
    metrics as an uninterrupted run with the same seed (on the CPU).

    A classic model (``model=random_forest`` / ``gradient_boosting``, see
    :mod:`dbm_lightning.classic`) takes the same steps up to the data module, then
    :func:`dbm_lightning.classic.run_classic` fits it in one go and writes the same
    ``metrics.json``; the ``optim``, ``loss``, ``trainer``, ``callbacks``, ``microstates`` and
    ``augment`` groups are ignored for it and ``ckpt_path`` is refused.
    """
    cfg = _plain(cfg)
    validate_config(cfg)  # config mistakes stop here, before anything is written or read
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    clear_outcome(output_dir)
    seed = int(cfg.get("seed", 0))
    if cfg.get("torch_threads"):
        torch.set_num_threads(int(cfg["torch_threads"]))
    pl.seed_everything(seed, workers=True)
    started = time.perf_counter()

    import yaml  # PyYAML comes with omegaconf

    write_text_atomic(output_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    ckpt_path = resolve_ckpt_path(cfg.get("ckpt_path"), output_dir)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    data_summary = dm.summary()
    write_json_atomic(output_dir / "data_summary.json", data_summary, default=str)
    log.info("%s", describe_data(data_summary))
    from dbm_lightning.classic import CLASSIC_MODELS, run_classic

    if cfg["model"].get("name") in CLASSIC_MODELS:
        # scikit-learn baseline, fitted in one go (optim/trainer/microstates not used)
        return run_classic(cfg, output_dir, dm, started=started)
    module = build_classifier(cfg, dm)
    if ckpt_path:
        check_compatible(ckpt_path, read_checkpoint(ckpt_path)["hyper_parameters"], dm)
    logger = build_logger(cfg, output_dir)
    trainer, checkpoint = build_trainer(cfg, output_dir, logger, callbacks)
    if logger:
        log.info("TensorBoard logs: %s  (tensorboard --logdir %s)", logger.log_dir, output_dir)

    fit_started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    fit_seconds = time.perf_counter() - fit_started

    val_final = _scalar_metrics(trainer.callback_metrics, "val/")
    best_path = checkpoint.best_model_path or None
    best_score = checkpoint.best_model_score
    test_metrics: dict[str, float] = {}
    fast_dev_run = bool(cfg.get("trainer", {}).get("fast_dev_run"))
    if cfg.get("test_after_fit", True) and dm.has_test:
        results = trainer.test(
            module if fast_dev_run or not best_path else None,
            datamodule=dm,
            ckpt_path=None if fast_dev_run or not best_path else best_path,
            verbose=False,
        )
        test_metrics = _scalar_metrics(results[0] if results else {}, "test/")

    microstates_info = None
    ms_cfg = cfg.get("microstates") or {}
    if ms_cfg.get("enabled", False) and best_path and not fast_dev_run:
        microstates_info = fit_run_microstates(
            best_path, dm, output_dir, int(ms_cfg.get("k", 50)), seed
        )

    metrics = {
        "val": val_final,
        "val_best": {
            "acc": float(best_score) if best_score is not None else module.best_val_acc(),
            "monitor": checkpoint.monitor,
        },
        "test": test_metrics,
        "best_checkpoint": best_path,
        "last_checkpoint": str(last) if (last := output_dir / LAST_CHECKPOINT).is_file() else None,
        "sessions": data_summary.get("sessions"),
        "session_split": data_summary.get("assignment"),
        "skipped_sessions": data_summary.get("skipped", []),
        "n_classes": dm.n_classes,
        "class_names": list(dm.class_names),
        "n_features": dm.n_features,
        "epochs": trainer.current_epoch,
        "wall_time_s": time.perf_counter() - started,
        "fit_time_s": fit_seconds,
        "train_frames": int(module.train_frames_seen),
        "train_frames_per_s": float(module.train_frames_per_s),
        "seed": seed,
        "microstates": microstates_info,
        "tensorboard_dir": logger.log_dir if logger else None,
    }
    write_json_atomic(output_dir / METRICS_FILE, metrics, default=_json_default)
    return metrics


def fit_run_microstates(
    ckpt_path: str | Path, dm: DBMDataModule, output_dir: Path, k: int, seed: int
) -> dict[str, Any]:
    """Fit ``k`` microstates on the LSTM output of the checkpoint's model over every session,
    save them in ``output_dir`` and inside the checkpoint; return where and how long."""
    from dbm_lightning.prediction import extract_run_microstates, load_classifier

    started = time.perf_counter()
    best = load_classifier(ckpt_path)
    result = extract_run_microstates(
        best, dm, k=k, seed=seed, run_dir=output_dir, ckpt_path=ckpt_path
    )
    return {
        "k": result.microstates.k,
        "method": result.microstates.method,
        "files": [str(f) for f in result.files],
        "fit_time_s": time.perf_counter() - started,
    }


def _json_default(obj: Any) -> Any:
    """JSON encoder fallback for numpy scalars, arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
