"""Readable run names: a sweep's run folder is named by the overrides that vary in the sweep
(``3_experiment=baseline_pe,seed=1``), not by every override of the command line.

``conf/train.yaml`` sets ``hydra.sweep.subdir: ${hydra:job.num}_${dbm_run_name:}``; the
``dbm_run_name`` resolver (registered on import) reads the sweep's plan from its
``multirun.yaml`` (:func:`~dbm_lightning.analysis.sweep_runs.planned_jobs`), keeps the keys
whose value differs between its jobs and joins the job's own values of them. A sweep whose plan
cannot be read (another sweeper) falls back to Hydra's ``override_dirname``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from omegaconf import OmegaConf

from dbm_lightning.analysis.sweep_runs import MULTIRUN, planned_jobs

RESOLVER = "dbm_run_name"


def varying_keys(jobs: Sequence[Mapping[str, str]]) -> list[str]:
    """The override keys whose value is not the same in every job (or missing in some), in
    the order they first appear."""
    keys = list(dict.fromkeys(k for job in jobs for k in job))
    return [k for k in keys if len({job.get(k) for job in jobs}) > 1]


def run_name(overrides: Sequence[str], jobs: Sequence[Mapping[str, str]]) -> str:
    """The name of the job with command-line ``overrides`` (``key=value`` strings) in a sweep
    that planned ``jobs``: its ``key=value`` pairs of the varying keys, in the sweep's order,
    joined by commas (``"single"`` when nothing varies: a sweep of one job)."""
    mine = dict(o.split("=", 1) for o in overrides if "=" in o)
    mine = {k.lstrip("+~"): v for k, v in mine.items()}
    parts = [f"{k}={mine[k]}" for k in varying_keys(jobs) if k in mine]
    return ",".join(parts).replace("/", "_") or "single"


def _resolve() -> str:
    from hydra.core.hydra_config import HydraConfig

    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    try:
        jobs = planned_jobs(Path(hydra_cfg.sweep.dir) / MULTIRUN)
    except ValueError:
        return str(hydra_cfg.job.override_dirname)
    return run_name(overrides, jobs)


def register_resolver() -> None:
    """Register ``${dbm_run_name:}`` with OmegaConf (once)."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, _resolve)


register_resolver()
