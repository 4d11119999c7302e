"""TensorBoard's HPARAMS tab: one set of hyperparameters for every run, and the ``hp/`` metrics.

Every run, whatever its model family or features, declares the same keys (:func:`run_hparams`;
a key that does not apply has a neutral value: ``"none"``, 0 or ``False``), so that a sweep's
table has one column per key and no run hides another's. A run writes them once it has its
results (:func:`write_run_hparams`): the session summaries and the ``hp/`` metrics, one value
each, at the run's last epoch, never a placeholder. A sweep's experiment (which keys and
metrics the tab lists) is written at its root (:func:`write_sweep_hparams`), with the keys that
vary in the sweep marked so that the tab lists them first; TensorBoard pointed at single runs
works the experiment out from their sessions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dbm_lightning.atomic import write_json_atomic

__all__ = [
    "HPARAMS_FILE",
    "HP_METRICS",
    "hp_metrics",
    "run_hparams",
    "write_run_hparams",
    "write_sweep_hparams",
]

HPARAMS_FILE = "hparams.json"
"""A run's :func:`run_hparams` and :func:`hp_metrics`, beside its ``metrics.json``."""
_SUFFIX = ".dbm_hparams"
"""The file-name suffix of the event files written here (and replaced when written again)."""

NONE = "none"
"""The value of a text hyperparameter that does not apply (no experiment file, no ensemble)."""

HP_METRICS: dict[str, tuple[str, str]] = {
    "hp/val_acc_best_epoch": ("val_best", "acc"),
    "hp/val_macro_f1_best_epoch": ("val_best", "macro_f1"),
    "hp/val_balanced_acc_best_epoch": ("val_best", "balanced_acc"),
    "hp/val_acc_last_epoch": ("val", "val/acc"),
    "hp/val_macro_f1_last_epoch": ("val", "val/macro_f1"),
    "hp/val_balanced_acc_last_epoch": ("val", "val/balanced_acc"),
    "hp/test_acc": ("test", "test/acc"),
    "hp/test_macro_f1": ("test", "test/macro_f1"),
    "hp/test_balanced_acc": ("test", "test/balanced_acc"),
    "hp/heldout_macro_f1": ("heldout", "heldout/macro_f1"),
    "hp/heldout_bout_macro_f1": ("heldout", "heldout/bout_macro_f1"),
}
"""The ``hp/`` metrics and where each is in ``metrics.json`` (section, key). "Best epoch": the
epoch of the best checkpoint (chosen on ``callbacks.checkpoint.monitor``); "last epoch": the
model after the last epoch. A run has the test and held-out ones only with such a split."""

_DEPTH_KEYS = ("lstm_layers", "levels")
_WIDTH_KEYS = ("lstm_width", "channels")
_ONE_LSTM = ("dbm_baseline",)
"""Networks with one LSTM layer and no ``lstm_layers`` key (the paper's baseline)."""


def _text(value: Any) -> str:
    return NONE if value is None else str(value)


def _number(value: Any) -> float | int:
    if isinstance(value, bool) or value is None:
        return 0
    return value if isinstance(value, (int, float)) else 0


def run_hparams(
    cfg: Mapping[str, Any], classic: bool, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The hyperparameters of the run configured by ``cfg`` (the composed ``dbm-train``
    config; ``classic``: a classic model, not a network), the same keys for every model:
    ``experiment`` (the ``experiment=`` file, from ``extra``), model name and family, encoder
    depth and width, dropout, optimiser, every feature switch, augmentation, split, seed,
    window, batch size, class weighting and ensemble; then the other keys of ``extra`` (a
    sweep's overrides: numbers and booleans as they are, anything else as text)."""
    extra = dict(extra or {})
    model = dict(cfg["model"])
    name = str(model["name"])
    depth = next((model[k] for k in _DEPTH_KEYS if k in model), 1 if name in _ONE_LSTM else 0)
    width = next((model[k] for k in _WIDTH_KEYS if k in model), 0)
    optim = cfg.get("optim") or {}
    out: dict[str, Any] = {
        "experiment": _text(extra.pop("experiment", None)),
        "model": name,
        "model.family": "classic" if classic else "network",
        "model.depth": int(_number(depth)),
        "model.width": int(_number(width)),
        "model.fc_width": int(_number(model.get("fc_width"))),
        "model.dropout": float(_number(model.get("dropout"))),
        "model.batchnorm": bool(model.get("batchnorm", False)),
        "model.trees": int(_number(model.get("n_estimators", model.get("max_iter")))),
        "optim.lr": 0.0 if classic else float(_number(optim.get("lr"))),
        "optim.weight_decay": 0.0 if classic else float(_number(optim.get("weight_decay"))),
        "data": _text(cfg["data"].get("source")),
        "data.window": int(_number(cfg["data"].get("window"))),
        "data.batch_size": int(_number(cfg["data"].get("batch_size"))),
    }
    for key, value in dict(cfg["features"]).items():
        out[f"features.{key}"] = value if isinstance(value, (bool, int, float)) else _text(value)
    out["augment"] = bool((cfg.get("augment") or {}).get("enabled", False))
    split = cfg["split"]
    out["split.strategy"] = _text(split.get("strategy"))
    out["split.fold"] = int(_number(split.get("fold")))
    out["seed"] = int(_number(cfg.get("seed")))
    out["loss.class_weighting"] = _text((cfg.get("loss") or {}).get("class_weighting"))
    out["ensemble.classic"] = _text((cfg.get("ensemble") or {}).get("classic"))
    out["callbacks.monitor"] = _text(
        ((cfg.get("callbacks") or {}).get("checkpoint") or {}).get("monitor")
    )
    for key, value in extra.items():
        if key not in out:
            out[key] = value if isinstance(value, (bool, int, float)) else _text(value)
    return out


def hp_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The ``hp/`` metrics (:data:`HP_METRICS`) a run's ``metrics.json`` has (finite ones)."""
    out = {}
    for tag, (section, key) in HP_METRICS.items():
        value = (metrics.get(section) or {}).get(key)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and math.isfinite(value):
            out[tag] = float(value)
    return out


def _experiment_summary(hparams: Iterable[Mapping[str, Any]], metric_names: Iterable[str]) -> Any:
    """The hparams plugin's experiment summary for runs with ``hparams``: every key, typed
    from its values, ``differs`` set on the keys whose value is not the same in every run."""
    from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    runs = list(hparams)
    infos = []
    for key in dict.fromkeys(k for h in runs for k in h):
        values = [h[key] for h in runs if key in h]
        if all(isinstance(v, bool) for v in values):
            kind = api_pb2.DATA_TYPE_BOOL
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            kind = api_pb2.DATA_TYPE_FLOAT64
        else:
            kind = api_pb2.DATA_TYPE_STRING
        info = api_pb2.HParamInfo(name=key, type=kind)
        distinct = sorted({str(v) for v in values})
        info.differs = len(distinct) > 1
        if kind == api_pb2.DATA_TYPE_STRING:
            info.domain_discrete.extend(distinct)
        elif kind == api_pb2.DATA_TYPE_BOOL:
            info.domain_discrete.extend(sorted({bool(v) for v in values}))
        else:
            numbers = [float(v) for v in values]
            info.domain_interval.min_value = min(numbers)
            info.domain_interval.max_value = max(numbers)
        infos.append(info)
    experiment = api_pb2.Experiment(
        hparam_infos=infos,
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=tag)) for tag in metric_names],
    )
    content = plugin_data_pb2.HParamsPluginData(
        experiment=experiment, version=metadata.PLUGIN_DATA_VERSION
    )
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(
            plugin_name=metadata.PLUGIN_NAME, content=content.SerializeToString()
        )
    )
    return Summary(value=[Summary.Value(tag=metadata.EXPERIMENT_TAG, metadata=meta)])


def _replace_events(log_dir: Path) -> Any:
    """A SummaryWriter into ``log_dir`` whose file replaces the ones written here before."""
    from torch.utils.tensorboard import SummaryWriter

    log_dir.mkdir(parents=True, exist_ok=True)
    for old in log_dir.glob(f"events.out.tfevents.*{_SUFFIX}"):
        old.unlink()
    return SummaryWriter(str(log_dir), filename_suffix=_SUFFIX)


def write_run_hparams(
    run_dir: str | Path,
    log_dir: str | Path | None,
    hparams: Mapping[str, Any],
    values: Mapping[str, float],
    *,
    step: int,
) -> None:
    """Record a finished run's hyperparameters and ``hp/`` metric ``values``
    (:func:`hp_metrics`): ``run_dir/hparams.json`` and, with a TensorBoard ``log_dir``, its
    session summaries and one value per ``hp/`` metric at ``step``."""
    from torch.utils.tensorboard.summary import hparams as hparams_summaries

    record = {"hparams": dict(hparams), "hp_metrics": dict(values)}
    write_json_atomic(Path(run_dir, HPARAMS_FILE), record)
    if log_dir is None:
        return
    _, start, end = hparams_summaries(dict(hparams), dict(values))
    with _replace_events(Path(log_dir)) as writer:
        events = writer._get_file_writer()  # the API writes sessions only through add_hparams
        events.add_summary(start)
        events.add_summary(end)
        for tag, value in values.items():
            writer.add_scalar(tag, value, global_step=step)


def write_sweep_hparams(sweep_dir: str | Path, run_dirs: Iterable[str | Path]) -> Path | None:
    """The experiment summary of a sweep at its root (``sweep_dir``, where ``tensorboard
    --logdir`` points): the keys of every run's ``hparams.json`` among ``run_dirs``, those that
    vary first, and every ``hp/`` metric a run has. ``None`` when no run has finished."""
    records = []
    for run in run_dirs:
        path = Path(run, HPARAMS_FILE)
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    records = [r for r in records if isinstance(r, dict) and isinstance(r.get("hparams"), dict)]
    if not records:
        return None
    metric_names = list(dict.fromkeys(t for r in records for t in (r.get("hp_metrics") or {})))
    summary = _experiment_summary([r["hparams"] for r in records], metric_names)
    root = Path(sweep_dir)
    with _replace_events(root) as writer:
        writer._get_file_writer().add_summary(summary)
    return next(root.glob(f"events.out.tfevents.*{_SUFFIX}"), None)
