"""``dbm-train``: train a DBM model; a thin Hydra wrapper over
:func:`dbm_lightning.training.run_training`.

Examples::

    dbm-train                                        # baseline on the built-in synthetic data
    dbm-train model=dbm_modified features.pe_L=6     # modified DBM + positional encoding
    dbm-train data=dbm_mat data.path=DBM_sample_data.mat
    dbm-train data=dlc data.path=/path/to/dlc_folder
    dbm-train -m features.pe_L=0,2,4 seed=0,1,2      # a sweep; compare in TensorBoard
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dbm_lightning.analysis.sweep_runs import parse_overrides
from dbm_lightning.cli import run_names  # noqa: F401  (registers ${dbm_run_name:})
from dbm_lightning.cli.config import composition_problems, conf_dir
from dbm_lightning.cli.results_text import explain
from dbm_lightning.cli.sweep_callbacks import finish_unfinished_sweep
from dbm_lightning.console import quiet_third_party
from dbm_lightning.data.splits import SplitLeakError
from dbm_lightning.ddp import is_main_process
from dbm_lightning.errors import ConfigError, DataFormatError, RunFolderError
from dbm_lightning.interrupts import (
    RunInterrupted,
    exit_with_parent,
    ignore_stop_signals,
    stop_on_signals,
)
from dbm_lightning.run_guard import RunLock
from dbm_lightning.runs import RunDir

log = logging.getLogger("dbm-train")

USER_ERRORS = (
    ConfigError,
    DataFormatError,
    MissingMandatoryValue,
    FileNotFoundError,
    RunFolderError,
    SplitLeakError,
)
"""Errors caused by the input or the command line rather than by the code."""

LAUNCHER_PID = "DBM_TRAIN_LAUNCHER_PID"
"""Set by :func:`main` to its process id: a sweep job in another process (joblib, submitit)
stops when its parent dies (:func:`~dbm_lightning.interrupts.exit_with_parent`)."""


def _user_message(exc: BaseException) -> str:
    """What to tell the user about ``exc``, with the fix when it is a missing setting."""
    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", None) or "a required value"
        return f"{key} is required, e.g. dbm-train {key}=... (the config marks it ???)"
    if isinstance(exc, OSError) and exc.filename and not isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _configured_root(key: str) -> str:
    """The fixed start of ``conf/train.yaml``'s ``hydra.run.dir`` / ``hydra.sweep.dir``
    (``outputs/`` of ``outputs/${task_name}/${now:...}``)."""
    import yaml  # PyYAML comes with omegaconf

    hydra_cfg = yaml.safe_load((conf_dir() / "train.yaml").read_text())["hydra"]
    return str(hydra_cfg[key.split(".")[1]]["dir"]).split("${")[0] or "."


def _record_failure(run: RunDir, exc: BaseException) -> Path | None:
    """``failed.json`` for ``exc``, unless another live run holds the folder (its lock) or it
    holds finished results (see :meth:`RunDir.write_failure`); a full disk may refuse it."""
    try:
        with RunLock(run):
            return run.write_failure(exc)
    except RunFolderError:
        return None  # another run's folder: not ours to write in
    except OSError as write_error:
        log.error("could not write %s: %s", run.failed_file, write_error)
        return None


def output_folder_problem(args: list[str]) -> str | None:
    """What stops Hydra from creating the run (or sweep) folder of ``args``, as one
    ``KEY: problem`` line, or ``None`` (:func:`~dbm_lightning.prediction.guards.check_output_dir`:
    Hydra would fail with a traceback before any run starts)."""
    from dbm_lightning.prediction.guards import check_output_dir

    key = "hydra.sweep.dir" if {"-m", "--multirun"} & set(args) else "hydra.run.dir"
    values = [a.split("=", 1)[1] for a in args if a.split("=", 1)[0] == key]
    try:
        check_output_dir(Path(values[-1] if values else _configured_root(key)).absolute())
    except DataFormatError as exc:
        return f"{key}: {exc}"
    return None


def train_from_hydra(cfg: DictConfig) -> float:
    """Run one training job in Hydra's output directory; return the best validation accuracy
    (the value an optimising sweeper maximises).

    A job of a multirun skips a finished run and resumes an interrupted one (a re-launched
    sweep); a job in a worker process stops when the process that launched it dies. A
    failure writes ``failed.json`` (unless the folder holds another run's results, or
    another run holds it); SIGTERM/SIGINT stop the run the same way, exit 128 + signal."""
    from dbm_lightning.training import run_training

    quiet_third_party(bool(cfg.get("verbose", False)))
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    sweep = hydra_cfg.mode == RunMode.MULTIRUN
    if (
        sweep
        and _runs_side_by_side(hydra_cfg)
        and not _set_on_command_line(hydra_cfg, "trainer.enable_progress_bar")
    ):
        cfg.trainer.enable_progress_bar = False  # bars of parallel runs overwrite each other
    if os.environ.get(LAUNCHER_PID, str(os.getpid())) != str(os.getpid()):
        exit_with_parent()
    try:
        with stop_on_signals():
            metrics = run_training(
                cfg, output_dir, sweep=sweep, extra_hparams=_named_by(cfg, hydra_cfg)
            )
    except RunFolderError as exc:  # the folder is another run's: nothing is written there
        print(f"dbm-train: {exc}", file=sys.stderr)
        raise SystemExit(2) from None  # a sweep stops too: it was launched into the wrong folder
    except (Exception, RunInterrupted) as exc:
        # A failed run leaves its reason beside its config; the other runs of a sweep go on.
        if isinstance(exc, RunInterrupted):
            ignore_stop_signals()  # a second Ctrl-C does not cut the record short
            exc.run_dir, exc.sweep = str(output_dir), sweep
        exc.failure_file = _record_failure(RunDir(output_dir), exc)
        if isinstance(exc, RunInterrupted):
            if exc.orphaned:  # no one to report to: the worker ends with its job
                logging.shutdown()
                os._exit(exc.exit_status)
            raise
        if not sweep and isinstance(exc, (*USER_ERRORS, OSError)):
            # bad input, a missing setting, a full or read-only disk: one line, no traceback
            print(f"dbm-train: {_user_message(exc)}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
    if not is_main_process():
        return math.nan  # a DDP process beside the main one, which reports the results
    log.info("metrics: %s", RunDir(output_dir).metrics_file)
    if not sweep and explain(metrics):
        print(explain(metrics))
    if metrics.get("tensorboard_dir") and not sweep:
        print(
            f"TensorBoard logs: {metrics['tensorboard_dir']}\n  tensorboard --logdir {output_dir}"
        )
    return float(metrics["val_best"]["acc"])


def _named_by(cfg: DictConfig, hydra_cfg: DictConfig) -> dict[str, Any]:
    """What names the run beyond its config: the ``experiment=`` file and the command line's
    overrides (a config key's value as the config has it, a group's choice as written)."""
    named: dict[str, Any] = {"experiment": hydra_cfg.runtime.choices.get("experiment")}
    for key, text in parse_overrides(hydra_cfg.overrides.task).items():
        value = OmegaConf.select(cfg, key, default=None)
        named[key] = value if isinstance(value, (bool, int, float, str)) else text
    return named


def _runs_side_by_side(hydra_cfg: DictConfig) -> bool:
    """True when the sweep's launcher runs several jobs at once (joblib with ``n_jobs`` other
    than 1, or a cluster)."""
    launcher = hydra_cfg.launcher
    target = str(launcher.get("_target_", ""))
    if "joblib" in target:
        return launcher.get("n_jobs", -1) != 1
    return "submitit" in target


def _set_on_command_line(hydra_cfg: DictConfig, key: str) -> bool:
    """True when the command line sets ``key``."""
    return any(str(o).lstrip("+~").split("=", 1)[0] == key for o in hydra_cfg.overrides.task)


def _stopped_message(exc: RunInterrupted) -> str:
    """What a stopped run says: where its record is and the command that resumes it."""
    where = getattr(exc, "run_dir", None)
    if where is None:
        return str(exc)
    record = getattr(exc, "failure_file", None)
    said = f"{record} says so" if record else "no failed.json was written"
    key = "hydra.sweep.dir" if getattr(exc, "sweep", False) else "hydra.run.dir"
    folder = Path(where).parent if getattr(exc, "sweep", False) else Path(where)
    return (
        f"{exc}; {said}; the same command with {key}={folder} resumes it "
        "(deep models from their last finished epoch)"
    )


def main() -> None:
    """Console entry point: what Hydra would refuse on the command line (an unknown option or
    key, a wrong type) is reported first, every mistake on one line, exit status 2."""
    problems = composition_problems(sys.argv[1:])
    if problems:
        text = "; ".join(f"{key}: {problem}" for key, problem in problems)
        print(f"dbm-train: {text}", file=sys.stderr)
        raise SystemExit(2)
    problem = output_folder_problem(sys.argv[1:])
    if problem:
        print(f"dbm-train: {problem}", file=sys.stderr)
        raise SystemExit(2)
    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(
        train_from_hydra
    )
    os.environ[LAUNCHER_PID] = str(os.getpid())
    try:
        app()
    except SystemExit as exc:
        if exc.code != 2:  # 2: the sweep was launched into a folder that is not its own
            finish_unfinished_sweep()  # a sweep that a failed job cut short: its report too
        raise
    except RunInterrupted as exc:
        print(f"dbm-train: {_stopped_message(exc)}", file=sys.stderr)
        raise SystemExit(exc.exit_status) from None
    except KeyboardInterrupt:  # Ctrl-C reaching a sweep's launcher (its jobs stop themselves)
        print("dbm-train: stopped by SIGINT", file=sys.stderr)
        raise SystemExit(128 + 2) from None
    except BaseException:  # a job's error re-raised as it is (HYDRA_FULL_ERROR=1)
        finish_unfinished_sweep()
        raise
    finish_unfinished_sweep()


if __name__ == "__main__":
    main()
