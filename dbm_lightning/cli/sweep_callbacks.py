"""Hydra callbacks of ``dbm-train -m``: one line per finished run, and a sweep that ends with its
report.

:class:`SweepProgress` (``hydra.callbacks.sweep_progress`` in ``conf/train.yaml``):

- ``on_job_end`` (in the job's process, whichever launcher): ``[sweep 3 of 15] NAME finished in
  2 min 31 s: held-out macro F1 0.952 ... about 25 min left``, or the failure's first line. The
  count and the estimate come from the sweep folder (runs with ``metrics.json`` or
  ``failed.json`` among the jobs of its ``multirun.yaml``), so parallel and cluster launchers
  count the same way.
- ``on_multirun_end`` (in the launcher's process): writes the report and the HPARAMS experiment
  at the sweep's root and prints the headline table (:func:`finish_sweep`). A sweep that a failed
  job cut short (Hydra skips ``on_multirun_end`` then) gets the same from ``dbm-train``'s
  ``main`` through :func:`finish_unfinished_sweep`.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dbm_lightning.analysis.sweep_runs import MULTIRUN, planned_jobs, read_overrides
from dbm_lightning.cli.results_text import headline
from dbm_lightning.hparams_tab import write_sweep_hparams
from dbm_lightning.runs import RunDir

log = logging.getLogger("dbm-train")

_OPEN_SWEEPS: list[Path] = []
"""Sweeps this process launched whose end was not reported yet."""


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _run_dirs(sweep_dir: Path) -> list[Path]:
    """The sweep's run folders (those with a Hydra or run config)."""
    return sorted(
        d
        for d in sweep_dir.iterdir()
        if d.is_dir() and ((d / ".hydra").is_dir() or RunDir(d).config_file.is_file())
    )


def _outcome(run_dir: Path) -> Path | None:
    """The run's ``metrics.json`` or ``failed.json``, whichever it has (``None``: neither)."""
    run = RunDir(run_dir)
    return next((f for f in (run.metrics_file, run.failed_file) if f.is_file()), None)


def progress_line(sweep_dir: Path, run_dir: Path, now: float | None = None) -> str:
    """``[sweep k of N] RUN ...``: what the run ``run_dir`` of ``sweep_dir`` ended with, how many
    of the sweep's N planned jobs have ended (runs with the overrides of a planned job and an
    outcome file) and the time left: this launch's time per ended run (runs that ended since
    its ``multirun.yaml`` was written) over the jobs still to go."""
    now = time.time() if now is None else now
    plan = sweep_dir / MULTIRUN
    started = plan.stat().st_mtime if plan.is_file() else now
    ended: dict[frozenset, float] = {}
    try:
        planned = {frozenset(job.items()) for job in planned_jobs(plan)}
    except ValueError:
        planned = None
    for folder in _run_dirs(sweep_dir):
        outcome = _outcome(folder)
        try:
            identity = frozenset(read_overrides(folder).items())
        except ValueError:
            continue
        if outcome is not None and (planned is None or identity in planned):
            ended[identity] = max(ended.get(identity, 0.0), outcome.stat().st_mtime)
    total = len(planned) if planned is not None else len(ended)
    done, left = len(ended), max(total - len(ended), 0)
    this_launch = sum(mtime >= started for mtime in ended.values())
    run = RunDir(run_dir)
    if run.metrics_file.is_file():
        metrics = json.loads(run.metrics_file.read_text())
        took = metrics.get("wall_time_s")
        took_text = f" in {_duration(took)}" if isinstance(took, (int, float)) else ""
        outcome_text = f"finished{took_text}: {headline(metrics)}"
    elif run.failed_file.is_file():
        failure = json.loads(run.failed_file.read_text())
        error = str(failure.get("error", "")).strip().splitlines()
        outcome_text = f"FAILED: {error[0] if error else 'see failed.json'} ({run.failed_file})"
    else:
        outcome_text = "ended without metrics.json or failed.json"
    estimate = ""
    if left > 0 and this_launch > 0:
        estimate = f"; about {_duration((now - started) / this_launch * left)} left"
    elif left == 0:
        estimate = f"; all {total} ended"
    return f"[sweep {done} of {total}] {run_dir.name} {outcome_text}{estimate}"


def finish_sweep(sweep_dir: str | Path) -> str:
    """The end of a sweep: the report files and the HPARAMS experiment at ``sweep_dir``, and
    the headline table to print (:func:`~dbm_lightning.analysis.report.sweep_summary`)."""
    from dbm_lightning.analysis.report import sweep_summary

    root = Path(sweep_dir)
    try:
        write_sweep_hparams(root, _run_dirs(root))
    except (OSError, ValueError, TypeError) as exc:  # the report still comes
        log.warning("%s: the HPARAMS experiment could not be written: %s", root, exc)
    return sweep_summary(root)


def finish_unfinished_sweep() -> None:
    """Report the sweeps this process launched whose end Hydra did not report (a failed job
    stops Hydra's sweeper before ``on_multirun_end``). Never raises."""
    while _OPEN_SWEEPS:
        root = _OPEN_SWEEPS.pop()
        try:
            print(finish_sweep(root), flush=True)
        except Exception as exc:  # the sweep's own error is what the user must see
            log.warning("could not write the report of %s: %s", root, exc)


class SweepProgress(Callback):
    """Progress lines and the end-of-sweep report (see the module docstring)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _OPEN_SWEEPS.append(Path(config.hydra.sweep.dir))

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hydra_cfg = HydraConfig.get()
        if hydra_cfg.mode != RunMode.MULTIRUN:
            return
        run_dir = Path(hydra_cfg.runtime.output_dir)
        try:
            line = progress_line(run_dir.parent, run_dir)
        except (OSError, ValueError) as exc:
            line = f"[sweep] {run_dir.name} ended ({exc})"
        print(line, flush=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        print(finish_sweep(root), flush=True)
        if root in _OPEN_SWEEPS:
            _OPEN_SWEEPS.remove(root)
