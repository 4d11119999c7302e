"""Readable run names: a sweep's run folder is named by the overrides that vary in the sweep
(``3_experiment=baseline_pe,seed=1``), not by every override of the command line.

``conf/train.yaml`` sets ``hydra.sweep.subdir: ${dbm_run_name:}``; the resolver (registered on
import) gives a job the folder of the sweep that already holds a run with its overrides (a
relaunched or extended sweep finds its finished runs, whatever their names), else
``JOBNUM_NAME``: NAME joins the job's values of the keys that differ between the jobs of the
sweep's plan (its ``multirun.yaml``, :func:`~dbm_lightning.analysis.sweep_runs.planned_jobs`).
A sweep whose plan cannot be read (another sweeper) falls back to Hydra's ``override_dirname``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from dbm_lightning.analysis.sweep_runs import (
    MULTIRUN,
    parse_overrides,
    planned_jobs,
    read_overrides,
    varying_override_keys,
)
from dbm_lightning.runs import RunDir

RESOLVER = "dbm_run_name"


def run_name(overrides: Sequence[str], jobs: Sequence[Mapping[str, str]]) -> str:
    """The name of the job with command-line ``overrides`` (``key=value`` strings) in a sweep
    that planned ``jobs``: its ``key=value`` pairs of the varying keys, in the sweep's order,
    joined by commas (``"single"`` when nothing varies: a sweep of one job)."""
    mine = parse_overrides(overrides)
    parts = [f"{k}={mine[k]}" for k in varying_override_keys(jobs) if k in mine]
    return ",".join(parts).replace("/", "_") or "single"


def existing_folder(sweep_dir: Path, overrides: Sequence[str]) -> str | None:
    """The name of the folder of ``sweep_dir`` that holds a run with these ``overrides`` (one
    with results first), or ``None``."""
    if not sweep_dir.is_dir():
        return None
    wanted = parse_overrides(overrides)
    matches = []
    for folder in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        try:
            theirs = read_overrides(folder)
        except ValueError:
            continue
        if theirs and theirs == wanted:
            matches.append(folder)
    finished = [f for f in matches if (f / RunDir.METRICS).is_file()]
    return (finished or matches)[0].name if matches else None


def _resolve() -> str:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    sweep_dir = Path(hydra_cfg.sweep.dir)
    found = existing_folder(sweep_dir, overrides)
    if found:
        return found
    try:
        name = run_name(overrides, planned_jobs(sweep_dir / MULTIRUN))
    except ValueError:
        name = str(hydra_cfg.job.override_dirname)
    return f"{hydra_cfg.job.num}_{name}"


def register_resolver() -> None:
    """Register ``${dbm_run_name:}`` with OmegaConf (once)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve)


register_resolver()
