"""A sweep's runs as they are on disk: each run folder read without raising
(:func:`read_run`), the jobs each ``multirun.yaml`` planned (:func:`planned_jobs`), and every
configuration and seed counted once (:func:`deduplicate`, :func:`read_sweep`).

A run is a directory holding ``.hydra/overrides.yaml`` (or ``.hydra/config.yaml``) and either
``metrics.json`` (finished) or ``failed.json`` (its error). A folder may hold a killed sweep
and its re-run: every configuration and seed (the run's full set of overrides) is counted
once, a finished run before an unfinished one and the newest of several finished ones; the
others are listed as left out. The jobs each ``multirun.yaml`` planned but no run folder holds
are listed as never started, and a folder holding more than one sweep is said so. The order
in which each ``multirun.yaml`` lists the swept values is kept (:attr:`Sweep.value_order`), so
a report lists configurations in the sweep's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dbm_lightning.run_guard import IGNORED_DIFFERENCES
from dbm_lightning.runs import RunDir

SEED_KEYS = ("seed", "split.fold")
"""Overrides that only change the random seed or the cross-validation fold: the replicates of
a configuration, pooled into mean +/- std."""

MULTIRUN = "multirun.yaml"
"""What Hydra writes at the root of a sweep: the sweep's config, its overrides among it."""

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
"""The sweeper whose jobs are known in advance (the product of the swept values)."""

FINISHED, FAILED, UNFINISHED, NEVER_STARTED, UNREADABLE = (
    "finished",
    "failed",
    "unfinished",
    "never started",
    "unreadable",
)
"""What became of a run (:attr:`RunRecord.status`)."""


@dataclass
class RunRecord:
    """One run of a sweep: its overrides, its flat metrics or its error."""

    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    varying: tuple[str, ...] | None = None
    """Override keys that tell this sweep's configurations apart (``None``: all of them)."""
    status: str | None = None
    """:data:`FINISHED`, :data:`FAILED`, :data:`UNFINISHED`, :data:`NEVER_STARTED` or
    :data:`UNREADABLE` (``None``: finished when there is no error, else failed)."""
    mtime: float = 0.0
    """When the run's outcome was written (``metrics.json``, ``failed.json``, else its files)."""
    identity: frozenset[tuple[str, str]] | None = None
    """The run's full set of overrides: runs with the same one are duplicates (``None``:
    unknown, never a duplicate)."""
    left_out: str | None = None
    """Why the run is not counted (a duplicate of :attr:`kept`); ``None``: counted."""
    kept: Path | None = None
    """The run counted instead of this one, when it is left out."""

    @property
    def config_key(self) -> str:
        """The configuration this run belongs to: its varying overrides without the seed keys."""
        items = [
            f"{k}={v}"
            for k, v in sorted(self.overrides.items())
            if k not in SEED_KEYS and (self.varying is None or k in self.varying)
        ]
        return ",".join(items) if items else "(defaults)"

    @property
    def seed(self) -> str | None:
        for key in SEED_KEYS:
            if key in self.overrides:
                return self.overrides[key]
        return None

    @property
    def outcome(self) -> str:
        """:attr:`status`, or what the error says when none was set."""
        return self.status or (FINISHED if self.error is None else FAILED)


@dataclass
class Sweep:
    """Everything below a report's root: each configuration and seed once, and what was not
    counted or cannot be known."""

    root: Path
    runs: list[RunRecord]
    """One record per configuration and seed: run folders and planned jobs never started."""
    left_out: list[RunRecord] = field(default_factory=list)
    """Run folders not counted: duplicates of a run in :attr:`runs`."""
    multiruns: list[Path] = field(default_factory=list)
    """Every ``multirun.yaml`` below the root."""
    notes: list[str] = field(default_factory=list)
    """One line each: two sweeps in one folder, plans that cannot be listed, duplicates."""
    value_order: dict[str, list[str]] = field(default_factory=dict)
    """Each swept key's values in the order the sweep lists them (``hydra.sweeper.params``,
    then the command-line overrides), keys in Hydra's order: how the report orders its
    configurations (:func:`sweep_values`). Empty when no ``multirun.yaml`` could be listed."""


def parse_overrides(items: Iterable[Any]) -> dict[str, str]:
    """``key=value`` strings as a dict (``+``/``~`` prefixes dropped, ``hydra.*`` and the keys
    that only say how a run is run, not what it is, such as ``overwrite``, left out)."""
    out: dict[str, str] = {}
    for item in items:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra.") or key.startswith("hydra/") or key in IGNORED_DIFFERENCES:
            continue
        out[key] = value
    return out


def read_overrides(run_dir: Path) -> dict[str, str]:
    """The ``key=value`` overrides Hydra recorded for a run (without ``hydra.*`` keys); raises
    ``ValueError`` when ``.hydra/overrides.yaml`` is not a YAML list."""
    path = RunDir(run_dir).overrides_file  # the run's own copy: a refused launch left it
    if not path.is_file():
        path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    import yaml  # PyYAML comes with omegaconf

    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: unreadable overrides.yaml ({exc})") from exc
    if not isinstance(items, list):
        raise ValueError(f"{path}: unreadable overrides.yaml (not a list of key=value)")
    return parse_overrides(items)


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``metrics.json`` as one level of ``name -> float`` (``val_best/acc``, ``val/acc``, ...);
    a section that is not a mapping is skipped."""

    def section_items(name: str) -> list[tuple[str, Any]]:
        section = metrics.get(name)
        return list(section.items()) if isinstance(section, dict) else []

    flat: dict[str, float] = {}
    for section in ("val", "test"):
        for key, value in section_items(section):
            if isinstance(value, int | float):
                flat[key if "/" in key else f"{section}/{key}"] = float(value)
    for key, value in section_items("heldout"):
        if isinstance(value, int | float) and key.startswith("heldout"):
            flat[key] = float(value)
    for key, value in section_items("val_best"):
        if isinstance(value, int | float):
            flat[f"val_best/{key}"] = float(value)
    for key in ("train_frames_per_s", "train_frames", "fit_time_s", "wall_time_s", "epochs"):
        if isinstance(metrics.get(key), int | float):
            flat[key] = float(metrics[key])
    return flat


def _read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file that must hold an object; ``ValueError`` (naming the file) otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable {path.name} ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path}: unreadable {path.name} (not a JSON object)")
    return data


def _never_started(run_dir: Path) -> bool:
    """Whether the folder holds only ``.hydra/`` (and empty log files): Hydra made it, the
    run wrote nothing."""
    for entry in run_dir.iterdir():
        if entry.name == ".hydra":
            continue
        if entry.is_file() and entry.suffix == ".log" and entry.stat().st_size == 0:
            continue
        return False
    return True


def _newest_mtime(run_dir: Path) -> float:
    times = [run_dir.stat().st_mtime]
    for entry in run_dir.iterdir():
        try:
            times.append(entry.stat().st_mtime)
        except OSError:  # removed meanwhile
            continue
    return max(times)


def read_run(run_dir: Path) -> RunRecord:
    """One run folder as a record; unreadable files give an error that names them, never an
    exception."""
    record = RunRecord(path=run_dir, overrides={})
    try:
        record.overrides = read_overrides(run_dir)
        if (run_dir / ".hydra" / "overrides.yaml").is_file():
            record.identity = frozenset(record.overrides.items())
    except ValueError as exc:
        record.error, record.status = str(exc), UNREADABLE
        record.mtime = _newest_mtime(run_dir)
        return record
    run = RunDir(run_dir)
    if run.is_finished():
        record.mtime = run.metrics_file.stat().st_mtime
        try:
            record.metrics = flatten_metrics(_read_json_object(run.metrics_file))
            record.status = FINISHED
        except ValueError as exc:
            record.error, record.status = str(exc), UNREADABLE
    elif run.failed_file.is_file():
        record.mtime = run.failed_file.stat().st_mtime
        try:
            failure = _read_json_object(run.failed_file)
            if not isinstance(failure.get("error"), str):
                raise ValueError(
                    f'{run.failed_file}: unreadable {RunDir.FAILED} (no "error" in it)'
                )
            record.error, record.status = failure["error"], FAILED
        except ValueError as exc:
            record.error, record.status = str(exc), UNREADABLE
    elif _never_started(run_dir):
        record.mtime = _newest_mtime(run_dir)
        record.error = "never started (its folder holds only .hydra/)"
        record.status = NEVER_STARTED
    else:
        record.mtime = _newest_mtime(run_dir)
        record.error = f"no {RunDir.METRICS} (the run did not finish)"
        record.status = UNFINISHED
    return record


def planned_jobs(multirun_file: str | Path) -> list[dict[str, str]]:
    """The jobs a sweep's ``multirun.yaml`` planned, in Hydra's order (job ``i`` is Hydra's
    ``job.num``): its ``hydra.sweeper.params`` then its command-line overrides
    (``hydra.overrides.task``), expanded by Hydra's own parser and BasicSweeper. Raises
    ``ValueError`` (one line) when they cannot be listed: another sweeper, a sweep that is not
    a list of values, an unreadable file."""
    import yaml  # PyYAML comes with omegaconf

    path = Path(multirun_file)
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"unreadable ({type(exc).__name__})") from exc
    hydra_cfg = cfg.get("hydra") if isinstance(cfg, dict) else None
    if not isinstance(hydra_cfg, dict):
        raise ValueError("no hydra section in it")
    sweeper = hydra_cfg.get("sweeper") or {}
    target = str(sweeper.get("_target_", BASIC_SWEEPER)) if isinstance(sweeper, dict) else "?"
    if target != BASIC_SWEEPER:
        raise ValueError(f"its sweeper {target.rsplit('.', 1)[-1]} chooses the jobs as it runs")
    params = sweeper.get("params") or {}
    task = (hydra_cfg.get("overrides") or {}).get("task") or []
    if not isinstance(params, dict) or not isinstance(task, list):
        raise ValueError("hydra.sweeper.params or hydra.overrides.task is malformed")
    arguments = [f"{k}={v}" for k, v in params.items()] + [str(t) for t in task]

    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        overrides = OverridesParser.create().parse_overrides(arguments)
        batches = BasicSweeper.split_arguments(overrides, None)
    except HydraException as exc:
        raise ValueError(f"cannot expand its sweep ({str(exc).splitlines()[0]})") from exc
    return [parse_overrides(job) for batch in batches for job in batch]


def sweep_values(
    jobs: Iterable[dict[str, str]], into: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Each key's values in the order they first appear in ``jobs`` (:func:`planned_jobs`: the
    order of the sweep's definition, as Hydra expands it), added to ``into`` when given."""
    order = {} if into is None else into
    for job in jobs:
        for key, value in job.items():
            values = order.setdefault(key, [])
            if value not in values:
                values.append(value)
    return order


def _rank(run: RunRecord) -> tuple[bool, float, str]:
    """Which of several runs of the same overrides counts: a finished one, then the newest."""
    return (run.outcome == FINISHED, run.mtime, str(run.path))


def _when(mtime: float) -> str:
    return datetime.fromtimestamp(mtime).isoformat(sep=" ", timespec="seconds")


def deduplicate(runs: Iterable[RunRecord]) -> tuple[list[RunRecord], list[RunRecord]]:
    """The runs with each set of overrides once (a finished run over a failed or unfinished
    one, the newest of several finished ones), and the others with why they were left out."""
    runs = list(runs)
    groups: dict[Any, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.identity if run.identity is not None else id(run), []).append(run)
    kept: list[RunRecord] = []
    left: list[RunRecord] = []
    for group in groups.values():
        best = max(group, key=_rank)
        kept.append(best)
        for run in group:
            if run is best:
                continue
            what = f"{run.outcome} ({run.error})" if run.error else run.outcome
            if best.outcome == FINISHED and run.outcome != FINISHED:
                why = f"{what}; the same overrides finished in the run kept"
            elif best.outcome == FINISHED:
                why = (
                    f"finished too; the run kept finished later ({_when(best.mtime)} against "
                    f"{_when(run.mtime)})"
                )
            else:
                why = f"{what}; the run kept is a newer attempt ({best.outcome})"
            run.left_out, run.kept = f"duplicate: {why}", best.path
            left.append(run)
    order = {id(r): i for i, r in enumerate(runs)}
    kept.sort(key=lambda r: order[id(r)])
    return kept, left


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


def _below(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) if path != root else "."
    except ValueError:
        return str(path)


def read_sweep(root: str | Path) -> Sweep:
    """Every run below ``root`` (a multirun directory, or a folder of them), each configuration
    and seed once, the planned jobs without a run folder as never started, and notes on what
    does not add up (two sweeps, plans that cannot be listed, duplicates left out)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such directory")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    run_dirs = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")})
    found = [read_run(d) for d in run_dirs]
    multiruns = sorted(root.rglob(MULTIRUN))
    notes: list[str] = []
    if len(multiruns) > 1:
        names = ", ".join(_rel(m.parent, root) for m in multiruns[:5])
        more = f" and {len(multiruns) - 5} more" if len(multiruns) > 5 else ""
        notes.append(
            f"this folder holds {len(multiruns)} sweeps ({MULTIRUN} in {names}{more}); "
            "each configuration and seed is counted once"
        )
    identities = {r.identity for r in found if r.identity is not None}
    never: dict[frozenset[tuple[str, str]], RunRecord] = {}
    value_order: dict[str, list[str]] = {}
    for multirun in multiruns:
        sweep_dir = multirun.parent
        try:
            jobs = planned_jobs(multirun)
        except ValueError as exc:
            notes.append(f"{_rel(multirun, root)}: its planned jobs cannot be listed ({exc})")
            continue
        sweep_values(jobs, into=value_order)
        plan = [frozenset(job.items()) for job in jobs]
        planned = set(plan)
        below = [r for r in found if _below(r.path, sweep_dir) and r.identity is not None]
        strangers = [r for r in below if r.identity not in planned]
        if strangers:
            notes.append(
                f"{_rel(multirun, root)} describes another sweep than {len(strangers)} of the "
                f"{len(below)} runs below it (a sweep re-launched there with other overrides?)"
            )
        for num, (job, key) in enumerate(zip(jobs, plan, strict=True)):
            if key in identities or key in never:
                continue
            never[key] = RunRecord(
                path=sweep_dir,
                overrides=job,
                error=f"never started: job {num} of {multirun} has no run folder",
                status=NEVER_STARTED,
                identity=key,
            )
    if multiruns:
        loose = [r for r in found if not any(_below(r.path, m.parent) for m in multiruns)]
        if loose:
            notes.append(
                f"{_count(len(loose), 'run folder')} in no sweep folder (no {MULTIRUN} above)"
            )
    runs, left_out = deduplicate(found)
    runs += list(never.values())
    if left_out:
        notes.append(
            f"{_count(len(left_out), 'run folder')} left out: duplicates of a counted run with "
            "the same overrides (see the duplicates)"
        )
    never_started = sum(r.outcome == NEVER_STARTED for r in runs)
    if never_started:
        notes.append(f"{_count(never_started, 'planned job')} never started (see the failed runs)")
    varying = tuple(sorted(varying_keys(runs)))
    for record in [*runs, *left_out]:
        record.varying = varying
    return Sweep(
        root=root,
        runs=runs,
        left_out=left_out,
        multiruns=multiruns,
        notes=notes,
        value_order=value_order,
    )


def find_runs(root: str | Path) -> list[RunRecord]:
    """Every run below ``root`` (a multirun directory, or a folder of them), each configuration
    and seed once (duplicates left out, see :func:`read_sweep`), with the jobs its sweeps
    planned that never started."""
    return read_sweep(root).runs


def varying_override_keys(jobs: Sequence[Mapping[str, str]]) -> list[str]:
    """The keys of ``jobs`` (each a run's or planned job's overrides) whose value is not the
    same in every one (a key some lack varies), in the order they first appear."""
    keys = list(dict.fromkeys(k for job in jobs for k in job))
    return [k for k in keys if len({job.get(k) for job in jobs}) > 1]


def varying_keys(runs: Sequence[RunRecord]) -> set[str]:
    """Override keys whose value is not the same in every run (a key some runs lack varies)."""
    return set(varying_override_keys([r.overrides for r in runs]))
