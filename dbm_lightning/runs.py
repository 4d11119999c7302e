"""A run folder as one object: :class:`RunDir` owns its layout and its records.

Every module that reads or writes a run's files (the runner, ``dbm-train``, ``dbm-predict``,
``dbm-plots``, ``dbm-report``) goes through :class:`RunDir`, so the names below are written once::

    RUN/
      config.yaml            the resolved run config (``.hydra/config.yaml`` beside it under Hydra)
      overrides.yaml         Hydra's overrides of the run that made the results (dbm-report)
      data_summary.json      split, sessions, gap fractions (written at set-up)
      metrics.json           written last, by a run that finished
      failed.json            written by a run that raised or was stopped: its error and traceback
      .lock                  held by the live run (run_guard.RunLock)
      checkpoints/best.ckpt  deep models: the best epoch (microstates embedded)
      checkpoints/last.ckpt  deep models: the state after the latest epoch (resume)
      model.joblib           classic models: the fitted estimator (a pickle)
      ensemble_member.joblib a deep run's classic ensemble member (ensemble.classic)
      microstates.npz/.json  k-means microstates of the run's embedding
      tensorboard/           TensorBoard events
      figures/               ``dbm-plots`` output

:func:`load_model` reads a trained model of either family from its file. The module imports
nothing heavy at import time (``dbm-train`` reads it at start-up).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbm_lightning.atomic import write_json_atomic, write_text_atomic
from dbm_lightning.hparams_tab import HPARAMS_FILE

__all__ = ["RunDir", "json_default", "load_model", "with_member"]


def json_default(obj: Any) -> Any:
    """JSON encoder fallback for numpy scalars, arrays and paths."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


class RunDir:
    """The output folder of one training run (it need not exist yet)."""

    METRICS = "metrics.json"
    FAILED = "failed.json"
    CONFIG = "config.yaml"
    HYDRA_CONFIG = ".hydra/config.yaml"
    OVERRIDES = "overrides.yaml"
    DATA_SUMMARY = "data_summary.json"
    CHECKPOINTS = "checkpoints"
    BEST = "best"
    LAST = "last"
    """The latest epoch's checkpoint stem, and ``ckpt_path=last`` (resume from it)."""
    MODEL = "model.joblib"
    ENSEMBLE_MEMBER = "ensemble_member.joblib"
    """A deep run's classic ensemble member (``ensemble.classic``)."""
    MICROSTATES = "microstates"
    TENSORBOARD = "tensorboard"
    FIGURES = "figures"
    HELDOUT = "heldout"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ------------------------------------------------------------------ paths
    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def failed_file(self) -> Path:
        return self.path / self.FAILED

    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def data_summary_file(self) -> Path:
        return self.path / self.DATA_SUMMARY

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / f"{self.BEST}.ckpt"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / f"{self.LAST}.ckpt"

    @property
    def model_file(self) -> Path:
        return self.path / self.MODEL

    @property
    def ensemble_member_file(self) -> Path:
        return self.path / self.ENSEMBLE_MEMBER

    @property
    def microstates_stem(self) -> Path:
        """``RUN/microstates`` (the ``.npz`` and ``.json`` are written beside each other)."""
        return self.path / self.MICROSTATES

    @property
    def microstates_file(self) -> Path:
        return self.microstates_stem.with_suffix(".npz")

    @property
    def figures_dir(self) -> Path:
        return self.path / self.FIGURES

    @property
    def heldout_dir(self) -> Path:
        """The held-out evaluation: ``evaluation/`` (the dbm-evaluate tables and figure) and
        ``predictions/`` (the test sessions as dbm-predict writes them)."""
        return self.path / self.HELDOUT

    @property
    def tensorboard_dir(self) -> Path:
        """Where the run's TensorBoard events are: as its ``metrics.json`` says, else the run
        folder itself (``RUN/tensorboard`` for a run made before they moved there)."""
        metrics = self.read_metrics()
        if metrics and metrics.get("tensorboard_dir"):
            return Path(metrics["tensorboard_dir"])
        old = self.path / self.TENSORBOARD
        return old if old.is_dir() else self.path

    def event_files(self) -> list[Path]:
        """The TensorBoard event files in the run folder itself."""
        return sorted(self.path.glob("events.out.tfevents.*"))

    # ------------------------------------------------------------------ records
    def is_finished(self) -> bool:
        """Whether the run wrote ``metrics.json`` (written last, atomically)."""
        return self.metrics_file.is_file()

    def read_metrics_or_none(self) -> dict[str, Any] | None:
        """``metrics.json`` when it is complete (a JSON object with the run's results), else
        ``None``: missing, unreadable or cut short."""
        try:
            metrics = self.read_metrics()
        except (OSError, ValueError):
            return None
        return metrics if isinstance(metrics, dict) and "val_best" in metrics else None

    def read_metrics(self) -> dict[str, Any] | None:
        """``metrics.json`` as a dict, or ``None`` when the run did not finish."""
        if not self.metrics_file.is_file():
            return None
        return json.loads(self.metrics_file.read_text())

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        """Write ``metrics.json`` (the run's last act)."""
        return write_json_atomic(self.metrics_file, dict(metrics), default=json_default)

    def read_failure(self) -> dict[str, Any] | None:
        """``failed.json`` as a dict, or ``None`` when there is none."""
        if not self.failed_file.is_file():
            return None
        return json.loads(self.failed_file.read_text())

    def write_failure(self, exc: BaseException) -> Path | None:
        """Record why the run failed in ``failed.json`` beside its config; ``None`` (nothing
        written) when the folder holds a finished run's ``metrics.json``: a run that failed
        before it started over leaves the earlier results as they were. On a full disk the
        record is tried again without its traceback (a few bytes)."""
        if self.read_metrics_or_none() is not None:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        record = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": "".join(traceback.format_exception(exc)),
        }
        try:
            return write_json_atomic(self.failed_file, record)
        except OSError:
            return write_json_atomic(self.failed_file, {"error": record["error"]}, indent=None)

    def clear_outcome(self) -> None:
        """Forget the outcome of an earlier run in the same folder (the new run is about to
        train: see :func:`dbm_lightning.run_guard.start_over`)."""
        self.metrics_file.unlink(missing_ok=True)
        self.failed_file.unlink(missing_ok=True)

    @property
    def overrides_file(self) -> Path:
        """``RUN/overrides.yaml``: the command-line overrides of the run that made the folder's
        results (Hydra's ``.hydra/overrides.yaml`` as it was when the run started training)."""
        return self.path / self.OVERRIDES

    def keep_overrides(self) -> None:
        """Copy Hydra's ``.hydra/overrides.yaml`` to :attr:`overrides_file` (when there is
        one): what ``dbm-report`` reads, which a later refused launch cannot rewrite."""
        hydra_overrides = self.path / ".hydra" / "overrides.yaml"
        if hydra_overrides.is_file():
            write_text_atomic(self.overrides_file, hydra_overrides.read_text())

    def products(self) -> list[Path]:
        """What a run made in this folder besides its config and outcome files: checkpoints,
        model file, microstates, TensorBoard events (in the folder, or in ``tensorboard/`` for
        older runs), held-out tables, figures, data summary (those that exist)."""
        names = [
            self.CHECKPOINTS,
            self.MODEL,
            self.ENSEMBLE_MEMBER,
            f"{self.MICROSTATES}.npz",
            f"{self.MICROSTATES}.json",
            self.TENSORBOARD,
            self.HELDOUT,
            self.FIGURES,
            self.DATA_SUMMARY,
            HPARAMS_FILE,
        ]
        return [self.path / n for n in names if (self.path / n).exists()] + self.event_files()

    def write_config(self, cfg: Mapping[str, Any]) -> Path:
        """Write the resolved run config as ``config.yaml``."""
        import yaml  # PyYAML comes with omegaconf

        return write_text_atomic(self.config_file, yaml.safe_dump(dict(cfg), sort_keys=False))

    def read_config(self, model: Any = None) -> dict[str, Any]:
        """The run's configuration as a plain dict: its own ``config.yaml`` (written once it
        started training), else Hydra's ``.hydra/config.yaml`` (rewritten by every launch
        into the folder, a refused one too), else the ``run_config`` stored in ``model``'s
        hyperparameters."""
        for f in (self.config_file, self.path / self.HYDRA_CONFIG):
            if f.is_file():
                from omegaconf import OmegaConf

                cfg = OmegaConf.load(f)
                try:
                    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
                except Exception:  # noqa: BLE001 - e.g. a Hydra-only resolver; keep it raw
                    return OmegaConf.to_container(cfg, resolve=False)  # type: ignore[return-value]
        run_config = model.hparams.get("run_config") if model is not None else None
        if isinstance(run_config, Mapping) and "data" in run_config:
            return dict(run_config)
        raise FileNotFoundError(
            f"{self.path}: no .hydra/config.yaml or config.yaml, and the checkpoint stores no run "
            "configuration; cannot rebuild the data"
        )

    def write_data_summary(self, summary: Mapping[str, Any]) -> Path:
        """Write ``data_summary.json`` (split, sessions, gap fractions)."""
        return write_json_atomic(self.data_summary_file, dict(summary), default=str)

    # ------------------------------------------------------------------ models
    def resolve_ckpt_path(self, ckpt_path: str | Path | None) -> str | None:
        """``ckpt_path`` as a file path: ``None`` stays ``None``, ``"last"`` is this run's own
        ``checkpoints/last.ckpt``; a missing file raises ``FileNotFoundError`` naming it."""
        if ckpt_path in (None, ""):
            return None
        if str(ckpt_path) == self.LAST:
            path = self.last_checkpoint
            hint = " (ckpt_path=last resumes the run in this output directory)"
        else:
            path, hint = Path(ckpt_path).expanduser(), ""
        if not path.is_file():
            raise FileNotFoundError(f"{path}: checkpoint not found{hint}")
        return str(path)

    def find_checkpoint(self) -> Path:
        """The best checkpoint ``metrics.json`` names (its file in this folder's
        ``checkpoints/``), else ``checkpoints/best.ckpt``, else the last one it names, else
        ``checkpoints/last.ckpt``."""
        metrics = self.read_metrics_or_none() or {}
        # the names metrics.json gives, in this folder (which may have been moved or copied)
        best, last = (self.checkpoint_dir / Path(p).name
                      for p in (metrics.get(k) or f"{k}.ckpt"
                                for k in ("best_checkpoint", "last_checkpoint")))  # fmt: skip
        candidates = [best, self.best_checkpoint, last, self.last_checkpoint]
        for c in candidates:
            if c.is_file():
                return c
        if self.model_file.is_file():
            raise FileNotFoundError(
                f"{self.path}: a classic-arm run ({self.MODEL}): a forest has no checkpoint and "
                "no per-frame embedding, so no microstates or figures; its metrics are in "
                f"{self.METRICS}, and dbm-predict --ckpt RUN/{self.MODEL} labels new sessions"
            )
        raise FileNotFoundError(
            f"{self.path}: no checkpoint (looked for checkpoints/best.ckpt, "
            "checkpoints/last.ckpt and those named in metrics.json); is this a dbm-train run "
            "directory?"
        )

    def load_model(self) -> Any:
        """The run's trained model: the best (else last) checkpoint of a deep run, else the
        ``model.joblib`` of a classic run (see :func:`load_model`)."""
        if self.model_file.is_file() and not self.checkpoint_dir.is_dir():
            return load_model(self.model_file)
        return load_model(self.find_checkpoint())


def load_model(path: str | Path) -> Any:
    """A trained model of either family, on the CPU, ready for prediction.

    ``.ckpt``: a ``DBMClassifier`` rebuilt from its hyperparameters (read with
    ``torch.load(weights_only=True)``: no pickled code runs), with its ensemble member when it
    has one (:func:`with_member`; that member is a pickle). ``.joblib``: a classic model
    behind :class:`~dbm_lightning.models.classic.ClassicPredictor` (a pickle: only load your
    own). Both offer ``hparams`` (pipeline state, class names) and
    ``predict_session(features, valid=None) -> (probs, embedding)``.
    """
    path = Path(path)
    if path.suffix == ".joblib":
        from dbm_lightning.errors import DataFormatError
        from dbm_lightning.models.classic import ClassicPredictor, load_classic

        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        try:
            return ClassicPredictor(load_classic(path))
        except (TypeError, ValueError) as exc:
            raise DataFormatError(path, str(exc)) from None
    from dbm_lightning.checkpoints import read_checkpoint
    from dbm_lightning.models.lightning import DBMClassifier

    checkpoint = read_checkpoint(path)
    return with_member(DBMClassifier.from_checkpoint_file(path, checkpoint), checkpoint, path)


def with_member(network: Any, checkpoint: Mapping[str, Any], ckpt_path: str | Path) -> Any:
    """``network`` as its checkpoint stored it: behind an
    :class:`~dbm_lightning.models.ensemble.EnsemblePredictor` when the checkpoint names a
    classic member (``RUN/ensemble_member.joblib``) with a share below 1, else unchanged. A
    missing or unreadable member file raises ``DataFormatError`` naming it. The member is a
    pickle: only load your own runs."""
    from dbm_lightning.errors import DataFormatError
    from dbm_lightning.models.classic import ClassicPredictor, load_classic
    from dbm_lightning.models.ensemble import ENSEMBLE_KEY, EnsemblePredictor

    stored = checkpoint.get(ENSEMBLE_KEY)
    if not stored or float(stored.get("network_weight", 1.0)) >= 1.0:
        return network
    ckpt = Path(ckpt_path)
    if stored.get("file") != RunDir.ENSEMBLE_MEMBER:  # never a path the checkpoint chooses
        raise DataFormatError(ckpt, f"names an unexpected ensemble member {stored.get('file')!r}")
    folder = ckpt.parent.parent if ckpt.parent.name == RunDir.CHECKPOINTS else ckpt.parent
    path = RunDir(folder).ensemble_member_file
    if not path.is_file():
        raise DataFormatError(
            path,
            f"the classic member of {ckpt}'s ensemble is missing (keep the run folder together)",
        )
    try:
        member = ClassicPredictor(load_classic(path))
    except Exception as exc:  # noqa: BLE001 - joblib/pickle raise anything on a foreign file
        raise DataFormatError(path, f"not a classic member ({type(exc).__name__}: {exc})") from None
    return EnsemblePredictor(network, member, float(stored["network_weight"]))
