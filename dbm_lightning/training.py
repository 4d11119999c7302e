"""One training run from a plain configuration mapping, with no Hydra involved.

``run_training(cfg, output_dir)`` is what ``dbm-train`` calls after Hydra has composed the
configuration; a notebook can call it with a nested ``dict`` of the same shape as the
composed ``conf/train.yaml`` (``dbm_lightning.cli.config.compose_config`` builds one).

It is the one runner of both model families: the deep networks (a ``DBMClassifier`` fitted by
a Lightning Trainer, then microstates) and the classic arm (a scikit-learn model of
:mod:`dbm_lightning.models.classic`, fitted in one go). Both see the same data module,
splits and metric code, and leave the same records in the run folder
(:class:`~dbm_lightning.runs.RunDir`): ``config.yaml``, ``data_summary.json``, TensorBoard
events and, last, ``metrics.json``. The builders of each config group are in
:mod:`dbm_lightning.build`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from dbm_lightning.analysis.plots import confusion_matrix_figure
from dbm_lightning.analysis.run_microstates import extract_run_microstates
from dbm_lightning.build import (
    build_classic_model,
    build_classifier,
    build_datamodule,
    build_logger,
    build_trainer,
    describe_data,
    is_classic,
    recorded_config,
)
from dbm_lightning.checkpoints import check_compatible, read_checkpoint
from dbm_lightning.config_check import plain_config, validate_config
from dbm_lightning.data import DBMDataModule
from dbm_lightning.ddp import clear_plan, is_main_process, wait_for_plan, write_plan
from dbm_lightning.errors import ConfigError, DataFormatError
from dbm_lightning.evaluation.files import write_evaluation
from dbm_lightning.evaluation.heldout import (
    PostprocessConfig,
    choose_postprocess,
    evaluate_split,
    flat_metrics,
    store_postprocess,
    write_heldout_predictions,
)
from dbm_lightning.hparams_tab import hp_metrics, run_hparams, write_run_hparams
from dbm_lightning.models import DBMClassifier
from dbm_lightning.models.classic import (
    ClassicModel,
    ClassicPredictor,
    build_classic,
    evaluate_sessions,
)
from dbm_lightning.models.ensemble import ENSEMBLE_KEY, EnsembleConfig, EnsemblePredictor
from dbm_lightning.run_guard import Action, RunLock, claim_folder, start_over
from dbm_lightning.runs import RunDir

log = logging.getLogger(__name__)

__all__ = ["fit_run_microstates", "run_training"]


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
    cfg: Mapping[str, Any],
    output_dir: str | Path,
    callbacks: Sequence[pl.Callback] = (),
    sweep: bool = False,
    extra_hparams: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one model as configured, write ``metrics.json`` in ``output_dir`` and return it.

    Steps: check the config, lock the folder and decide what to do with it
    (:func:`~dbm_lightning.run_guard.claim_folder`), seed everything (seed 0 included), build
    and set up the data module and check the settings against the data; only then clear
    the folder's earlier outcome and fit the model of ``cfg["model"]``:

    - a deep network: a Lightning fit with best/last checkpoints (``callbacks`` are added to
      the Trainer's), the best checkpoint evaluated on the test split when there is one, and
      microstates fitted on its embedding;
    - a classic model (``model=random_forest`` / ``gradient_boosting``): fitted in one go on the
      training frames, evaluated on the validation and test sessions, saved as
      ``model.joblib``; the ``optim``, ``loss``, ``trainer``, ``callbacks``, ``microstates`` and
      ``augment`` groups do not apply to it and ``ckpt_path`` is refused.

    ``metrics.json`` records validation/test metrics, the sessions used and skipped, wall
    time and training throughput, with the same keys for both families.

    A folder holding a finished run, or a run of another configuration, is refused
    (:class:`~dbm_lightning.errors.RunFolderError`) unless ``cfg["overwrite"]`` or
    ``cfg["ckpt_path"]`` is ``"last"``; an interrupted run of the same configuration is
    resumed from its ``last.ckpt``; ``sweep=True`` (one job of a sweep) returns a finished
    run's metrics without training and fits no microstates unless told to
    (:func:`fits_microstates`). ``extra_hparams``: what names the run beyond its config (the
    ``experiment=`` file it came from, the sweep's overrides), added to its hyperparameters
    (:func:`~dbm_lightning.hparams_tab.run_hparams`).

    ``cfg["ckpt_path"]`` resumes from a checkpoint (``"last"``: this output directory's
    ``checkpoints/last.ckpt``); it must have been trained on the same body parts, classes and
    features. Resuming a run killed mid-epoch repeats that epoch and ends with the same
    metrics as an uninterrupted run with the same seed (on the CPU).

    With several processes (``trainer=ddp``, :mod:`dbm_lightning.ddp`), only the main one
    locks and writes the folder; the others wait for its plan, train beside it and return
    ``{}``.
    """
    # config mistakes stop here, before anything is written or read; defaults filled in
    cfg = validate_config(plain_config(cfg, throw_on_missing=True))
    run = RunDir(output_dir)
    if not is_main_process():
        if is_classic(cfg):
            return {}  # a classic model is fitted by the main process alone
        cfg["ckpt_path"] = wait_for_plan(run.path)["ckpt_path"]
        _train_in(cfg, run, Action.RESUME, callbacks, sweep, dict(extra_hparams or {}))
        return {}
    with RunLock(run):
        action = claim_folder(run, cfg, sweep=sweep)
        if action is Action.SKIP:
            log.info("%s: finished with this configuration; skipped", run.path)
            return run.read_metrics_or_none() or {}
        if action is Action.RESUME and not cfg["ckpt_path"]:
            log.info("%s: interrupted; resuming from %s", run.path, run.last_checkpoint)
            cfg["ckpt_path"] = RunDir.LAST
        if action is Action.START and cfg["ckpt_path"] == RunDir.LAST:
            cfg["ckpt_path"] = None  # a sweep job with nothing to resume starts afresh
        return _train_in(cfg, run, action, callbacks, sweep, dict(extra_hparams or {}))


def _check_resumable(ckpt_path: str, module: DBMClassifier, dm: DBMDataModule) -> None:
    """Refuse a checkpoint trained on other data, or holding another network than the one
    configured, before the run starts over (``DataFormatError`` naming the file)."""
    ckpt = read_checkpoint(ckpt_path)
    check_compatible(ckpt_path, ckpt["hyper_parameters"], dm)
    try:
        module.load_state_dict(ckpt["state_dict"])  # a copy: the fit restores it again
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        raise DataFormatError(
            ckpt_path,
            f"holds a {ckpt['hyper_parameters'].get('net_name', 'other')} network, not the "
            f"configured {module.hparams.get('net_name')} ({first[:160]})",
        ) from None


def fits_microstates(cfg: Mapping[str, Any], sweep: bool) -> bool:
    """Whether the run fits microstates: ``microstates.enabled``, or when it is ``None`` (the
    default) after a single run and not after a sweep's runs; never for a classic model."""
    enabled = cfg["microstates"]["enabled"]
    return (not sweep if enabled is None else bool(enabled)) and not is_classic(cfg)


def _check_against_data(
    cfg: Mapping[str, Any], dm: DBMDataModule, summary: Mapping, sweep: bool
) -> None:
    """Settings that can only be checked once the data is known, checked before training."""
    if fits_microstates(cfg, sweep):
        frames = sum(s["valid_frames"] for s in summary["splits"].values())
        if cfg["microstates"]["k"] > frames:
            raise ConfigError(
                "microstates.k",
                f"{cfg['microstates']['k']} microstates need at least as many valid frames; "
                f"the data has {frames} (lower it, or microstates.enabled=false)",
            )


def _train_in(
    cfg: dict[str, Any],
    run: RunDir,
    action: Action,
    callbacks: Sequence[pl.Callback],
    sweep: bool,
    extra_hparams: dict[str, Any],
) -> dict[str, Any]:
    """The run once its folder is claimed (see :func:`run_training`); in a DDP process other
    than the main one, the same steps without writing anything."""
    main = is_main_process()
    seed = cfg["seed"]
    if cfg["torch_threads"]:
        torch.set_num_threads(cfg["torch_threads"])
    pl.seed_everything(seed, workers=True)
    started = time.perf_counter()

    classic = is_classic(cfg)  # validate_config refused a ckpt_path with a classic model
    if classic and cfg["ensemble"]["classic"]:
        log.info(
            "ensemble.classic does not apply: model %s is itself classic", cfg["model"]["name"]
        )
    ckpt_path = run.resolve_ckpt_path(cfg["ckpt_path"])
    dm = build_datamodule(cfg)
    log.info("loading the sessions and computing their features ...")
    dm.setup("fit")
    log.info("data ready in %.0f s", time.perf_counter() - started)
    data_summary = dm.summary()
    module = None if classic else build_classifier(cfg, dm)
    if ckpt_path and module is not None:
        _check_resumable(ckpt_path, module, dm)
    _check_against_data(cfg, dm, data_summary, sweep)
    # everything that can refuse the settings is built before the folder is cleared
    trainer = (
        None if classic else build_trainer(cfg, run.path, build_logger(cfg, run.path), callbacks)
    )
    classic_model = build_classic_model(cfg) if classic else None

    if main:
        start_over(run, action, bool(cfg["overwrite"]))  # from here on, the folder is this run's
        run.write_config(cfg)
        run.write_data_summary(data_summary)
        log.info("%s", describe_data(data_summary))
        if trainer is not None and trainer[0].world_size > 1:
            write_plan(run.path, ckpt_path)

    if module is None:
        fit = _fit_classic(cfg, run, dm, classic_model)
    else:
        fit = _fit_deep(
            cfg, run, dm, module, ckpt_path, trainer, main and fits_microstates(cfg, sweep)
        )
        if not main:
            return {}  # the main process evaluates and writes the results
        if cfg["ensemble"]["classic"] and _member_usable(cfg, dm):
            fit["ensemble_member"] = _fit_member(cfg, run, dm)
    if classic:  # saved first, then again with the post-processing the held-out step chose
        fit["model_file"] = str(fit["model"].save(run.model_file))
    heldout = heldout_evaluation(cfg, run, dm, fit)
    if classic:
        fit.pop("model").save(run.model_file)
    metrics = {
        "val": fit["val"],
        "val_best": fit["val_best"],
        "test": fit["test"],
        "heldout": heldout,
        "best_checkpoint": fit.get("best_checkpoint"),
        "last_checkpoint": fit.get("last_checkpoint"),
        **({"model_file": fit["model_file"]} if "model_file" in fit else {}),
        "sessions": data_summary.get("sessions"),
        "session_split": data_summary.get("assignment"),
        "skipped_sessions": data_summary.get("skipped", []),
        "n_classes": dm.n_classes,
        "class_names": list(dm.class_names),
        "n_features": fit["n_features"],
        "epochs": fit["epochs"],
        "wall_time_s": time.perf_counter() - started,
        "fit_time_s": fit["fit_time_s"],
        "train_frames": int(fit["train_frames"]),
        "train_frames_per_s": float(fit["train_frames_per_s"]),
        "seed": seed,
        "microstates": fit.get("microstates"),
        "tensorboard_dir": fit["tensorboard_dir"],
    }
    metrics["hp"] = hp_metrics(metrics)
    run.write_metrics(metrics)
    try:  # the run is finished: the HPARAMS tab cannot undo that
        write_run_hparams(
            run.path,
            fit["tensorboard_dir"],
            run_hparams(cfg, classic=classic, extra=extra_hparams),
            metrics["hp"],
            step=max(int(metrics["epochs"] or 0) - 1, 0),  # the last epoch's index
        )
    except (OSError, ValueError, TypeError) as exc:
        log.warning("%s: the HPARAMS tab could not be written: %s", run.path, exc)
    return metrics


def _fit_deep(
    cfg: dict[str, Any],
    run: RunDir,
    dm: DBMDataModule,
    module: DBMClassifier,
    ckpt_path: str | None,
    built: tuple[pl.Trainer, Any],
    microstates: bool,
) -> dict[str, Any]:
    """Fit ``module`` with the Trainer (and its best-checkpoint callback) ``built``, test its
    best checkpoint, fit microstates."""
    trainer, checkpoint = built
    logger = trainer.logger
    main = trainer.is_global_zero  # rank 0 reads and writes files; the others only train
    if logger and main:
        log.info("TensorBoard logs: %s  (tensorboard --logdir %s)", logger.log_dir, run.path)

    fit_started = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    fit_seconds = time.perf_counter() - fit_started
    # read before the test step: it loads the best checkpoint, with that epoch's counters
    train_frames, train_frames_per_s = module.train_frames_seen, module.train_frames_per_s
    if main:
        clear_plan(run.path)  # every process has read it

    val_final = _scalar_metrics(trainer.callback_metrics, "val/")
    if ckpt_path and not val_final and dm.has_val:
        # resumed after the last epoch (stopped in the held-out step, say): nothing was left to
        # train, so the final model's validation metrics are computed again, as they were
        trainer.validate(module, datamodule=dm, verbose=False)
        val_final = _scalar_metrics(trainer.callback_metrics, "val/")
    best_path = checkpoint.best_model_path or None
    best_score = checkpoint.best_model_score
    best_epoch = int(read_checkpoint(best_path)["epoch"]) if best_path and main else None
    best = (module.val_epoch(best_epoch) if best_epoch is not None else None) or {}
    test_metrics: dict[str, float] = {}
    fast_dev_run = bool(cfg["trainer"]["fast_dev_run"])
    if cfg["test_after_fit"] and dm.has_test:
        results = trainer.test(
            module if fast_dev_run or not best_path else None,
            datamodule=dm,
            ckpt_path=None if fast_dev_run or not best_path else best_path,
            verbose=False,
        )
        test_metrics = _scalar_metrics(results[0] if results else {}, "test/")

    microstates_info = None
    if microstates and best_path and not fast_dev_run:
        k, fitting = cfg["microstates"]["k"], time.perf_counter()
        log.info("fitting %d microstates on the best model's embedding ...", k)
        microstates_info = fit_run_microstates(best_path, dm, run.path, k, cfg["seed"])
        log.info("microstates fitted in %.1f s", time.perf_counter() - fitting)
    return {
        "val": val_final,
        "val_best": {
            **{k: best.get(k, float("nan")) for k in ("acc", "macro_f1", "balanced_acc")},
            "epoch": best_epoch,
            "monitor": checkpoint.monitor,
            "score": float(best_score) if best_score is not None else None,
        },
        "test": test_metrics,
        "best_checkpoint": best_path,
        "last_checkpoint": str(run.last_checkpoint) if run.last_checkpoint.is_file() else None,
        "n_features": dm.n_features,
        "epochs": trainer.current_epoch,
        "fit_time_s": fit_seconds,
        "train_frames": train_frames,
        "train_frames_per_s": train_frames_per_s,
        "microstates": microstates_info,
        "tensorboard_dir": logger.log_dir if logger else None,
    }


def _fit_on_training_frames(model: ClassicModel, cfg: dict[str, Any], dm: DBMDataModule) -> None:
    """Fit an unfitted classic ``model`` on the training sessions and record with it the data
    pipeline and run config that ``dbm-predict`` needs."""
    model.fit(
        dm.predict_sessions(split="train"),
        n_classes=dm.n_classes,
        class_names=dm.class_names,
        feature_names=dm.feature_names,
        seed=cfg["seed"],
    )
    model.pipeline_state = dm.pipeline_state()
    model.run_config = recorded_config(cfg)


def _fit_classic(
    cfg: dict[str, Any], run: RunDir, dm: DBMDataModule, model: ClassicModel
) -> dict[str, Any]:
    """Fit the classic ``model`` in one go, evaluate it on whole val/test sessions.

    ``val``/``test`` hold the deep runs' keys (``val/acc``, ``val/balanced_acc``,
    ``val/macro_f1``, ``val/f1/<class>``, ``val/loss``, ``val/acc_best``), ``val_best.acc``
    equals ``val/acc`` (one fit, nothing to select), ``epochs`` is ``None`` and
    ``n_features`` is the engineered feature count.
    """
    if cfg["augment"]["enabled"]:
        log.warning(
            "augment is enabled but model %s is a classic model: pose augmentation applies to "
            "the deep models' training batches only and is ignored here",
            cfg["model"]["name"],
        )
    _fit_on_training_frames(model, cfg, dm)

    val, val_cm = evaluate_sessions(model, dm.predict_sessions(split="val"), "val")
    if "val/acc" in val:
        val["val/acc_best"] = val["val/acc"]
    test: dict[str, float] = {}
    test_cm = None
    if cfg["test_after_fit"] and dm.has_test:
        test, test_cm = evaluate_sessions(model, dm.predict_sessions(split="test"), "test")

    n_features = len(model.feature_names_)
    logger = build_logger(cfg, run.path)
    if logger:
        _log_classic_tensorboard(logger, model, {**val, **test}, {"val": val_cm, "test": test_cm})
    return {
        "val": val,
        "val_best": {
            **{k: val.get(f"val/{k}", float("nan")) for k in ("acc", "macro_f1", "balanced_acc")},
            "epoch": None,
            "monitor": "val/acc",
            "score": val.get("val/acc", float("nan")),
        },
        "test": test,
        "model": model,
        "n_features": n_features,
        "epochs": None,
        "fit_time_s": model.fit_time_s_,
        "train_frames": model.train_frames_,
        "train_frames_per_s": model.train_frames_ / max(model.fit_time_s_, 1e-9),
        "tensorboard_dir": logger.log_dir if logger else None,
    }


def _member_usable(cfg: Mapping[str, Any], dm: DBMDataModule) -> bool:
    """Whether an ensemble member can be chosen: the held-out step runs and has validation
    sessions to choose its share on (else it is not fitted, and the log says why)."""
    if cfg["postprocess"]["enabled"] and not cfg["trainer"].get("fast_dev_run") and dm.has_val:
        return True
    log.warning(
        "ensemble.classic=%s is not fitted: its share is chosen on the validation sessions by "
        "the held-out step (postprocess.enabled, validation sessions needed)",
        cfg["ensemble"]["classic"],
    )
    return False


def _fit_member(cfg: dict[str, Any], run: RunDir, dm: DBMDataModule) -> ClassicPredictor:
    """The ensemble's classic member (``ensemble.classic`` with its defaults), fitted on the
    training frames the network saw and saved as ``RUN/ensemble_member.joblib``."""
    started = time.perf_counter()
    model = build_classic({"name": cfg["ensemble"]["classic"]})
    _fit_on_training_frames(model, cfg, dm)
    path = model.save(run.ensemble_member_file)
    log.info(
        "ensemble member %s fitted in %.0f s: %s", model.name, time.perf_counter() - started, path
    )
    return ClassicPredictor(model)


def _log_classic_tensorboard(
    logger: Any,
    model: ClassicModel,
    metrics: Mapping[str, float],
    confusions: Mapping[str, np.ndarray | None],
) -> None:
    """The deep runs' TensorBoard layout for a classic fit: the stage scalars and the
    row-normalised confusion matrices, at epoch 0 (the HPARAMS tab is written with the run's
    results, :func:`~dbm_lightning.hparams_tab.write_run_hparams`)."""
    logger.log_metrics(dict(metrics), step=0)
    for stage, cm in confusions.items():
        if cm is None:
            continue
        fig = confusion_matrix_figure(
            cm, model.class_names, title=f"{stage} confusion ({model.name})"
        )
        logger.experiment.add_figure(f"{stage}/confusion_matrix", fig, global_step=0, close=True)
    logger.finalize("success")


def heldout_evaluation(
    cfg: Mapping[str, Any], run: RunDir, dm: DBMDataModule, fit: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The trained model (best checkpoint, or the classic model) on the held-out sessions:
    post-processing chosen on the validation sessions and stored with the model, then the
    test sessions scored once with it (and without it), the tables in ``heldout/evaluation``
    and the test predictions in ``heldout/predictions`` (what ``dbm-evaluate`` reads)."""
    pp = PostprocessConfig(**cfg["postprocess"])
    if not pp.enabled or cfg["trainer"].get("fast_dev_run"):
        return None
    member = fit.get("ensemble_member")
    if "model" in fit:
        model: Any = ClassicPredictor(fit["model"])
    elif fit.get("best_checkpoint"):
        model = DBMClassifier.from_checkpoint_file(fit["best_checkpoint"])
    else:
        return None
    names = list(dm.class_names)
    weights = EnsembleConfig(**cfg["ensemble"]).weights
    choice = choose_postprocess(
        model, dm.predict_sessions(split="val"), names, pp, member=member, weights=weights
    )
    chosen = {"smoothing": choice["smoothing"], "min_bout": choice["min_bout"]}
    share = float(choice.get("network_weight", 1.0))
    if member is not None and share < 1.0:
        model = EnsemblePredictor(model, member, share)
    if "model" in fit:
        fit["model"].postprocess = chosen
    elif run.path.resolve() in Path(fit["best_checkpoint"]).resolve().parents:
        extra = (
            {ENSEMBLE_KEY: {"file": run.ENSEMBLE_MEMBER, "network_weight": share}} if member else {}
        )
        store_postprocess(fit["best_checkpoint"], chosen, extra)  # never a file another run made
    out: dict[str, Any] = {"postprocess": choice}
    if dm.has_test and cfg["test_after_fit"]:
        test = dm.predict_sessions(split="test")
        evaluation, raw, decisions = evaluate_split(model, test, names, **chosen, iou=pp.iou)
        out.update(flat_metrics(evaluation, "heldout"))
        out.update(flat_metrics(raw, "heldout_raw"))
        write_evaluation(evaluation, run.heldout_dir / "evaluation")
        write_heldout_predictions(run.heldout_dir / "predictions", test, decisions, names, chosen)
        log.info(
            "held-out test sessions: macro F1 %.3f (post-processed: smoothing %d, min bout %d; "
            "%.3f without), bout macro F1 %.3f",
            out["heldout/macro_f1"],
            chosen["smoothing"],
            chosen["min_bout"],
            out["heldout_raw/macro_f1"],
            out["heldout/bout_macro_f1"],
        )
    return out


def fit_run_microstates(
    ckpt_path: str | Path, dm: DBMDataModule, output_dir: str | Path, k: int, seed: int
) -> dict[str, Any]:
    """Fit ``k`` microstates on the LSTM output of the checkpoint's model over every session,
    save them in ``output_dir`` and inside the checkpoint; return where and how long."""
    started = time.perf_counter()
    best = DBMClassifier.from_checkpoint_file(ckpt_path)
    result = extract_run_microstates(
        best, dm, k=k, seed=seed, run_dir=output_dir, ckpt_path=ckpt_path
    )
    return {
        "k": result.microstates.k,
        "method": result.microstates.method,
        "files": [str(f) for f in result.files],
        "fit_time_s": time.perf_counter() - started,
    }
