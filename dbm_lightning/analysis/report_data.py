"""The numbers of a sweep report: its configurations in the sweep's order, one row per
configuration (mean +/- std over seeds or folds), one row per run, the runs that did not finish
or were left out as duplicates, the comparison with the anchors, and the :class:`Report` that
holds them all.

How these are put into words (Markdown, console text, a figure) is
:mod:`dbm_lightning.analysis.report_text`; :mod:`dbm_lightning.analysis.report` writes the
files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dbm_lightning.analysis.sweep_runs import (
    FINISHED,
    MULTIRUN,
    SEED_KEYS,
    RunRecord,
    Sweep,
    read_sweep,
    varying_keys,
)

ACCURACY_METRICS = (
    "heldout/macro_f1",
    "heldout/balanced_acc",
    "heldout/bout_macro_f1",
    "val_best/acc",
    "val_best/balanced_acc",
    "val_best/macro_f1",
    "val/acc",
    "val/balanced_acc",
    "val/macro_f1",
    "test/acc",
    "test/balanced_acc",
    "test/macro_f1",
)
"""The scores of the main table (rates, shown in %; those a run lacks are left out)."""

SPEED_METRICS = ("train_frames_per_s", "fit_time_s", "wall_time_s", "epochs")
"""What ``metrics.json`` records of a run's speed and length: the report's own section."""

DEFAULT_METRICS = ACCURACY_METRICS + SPEED_METRICS


@dataclass(frozen=True)
class PaperArm:
    """One arm of the paper's ablation, as the paper names and scores it."""

    name: str
    """The paper's wording (its "original"/"DBM model" and "modified DBM model")."""
    acc: float | None
    """The highest validation accuracy the paper reports, in % (``None``: a figure only)."""
    data: str
    """What the paper measured it on."""
    source: str
    """Where in the paper."""

    @property
    def cell(self) -> str:
        """The ``paper`` cell: the number and the data it is on."""
        if self.acc is None:
            return "(figure only)"
        return f"{self.acc:g} ({self.data})"


ARM_KEY = "experiment"
"""The override that selects one of the paper's arms (``conf/experiment/*.yaml``)."""

# Aditya & Moon, "Predicting Mouse Behaviors Using Deep Behavior Mapping" (the paper in
# shared/paper/; it has no results table, its numbers are in the text, quoted in section 1 of
# experiments/README.md). Each is "the highest validation accuracy" of the arm (our
# val_best/acc):
# - original DBM: 67.7 % on their lab data (section 6.1 and the conclusion; section 4.1 says
#   67.77 %);
# - modified DBM: 71.3 % on their lab data with lr 0.004 (section 6.1, Fig. 12b-c; 68.3 % /
#   68.7 % with lr 0.001);
# - positional encoding on the original DBM ("Positional Encoding Only"): 75.42 % on the DBM
#   sample (section 5.3, Fig. 10);
# - positional encoding on the modified DBM: Fig. 11 only, no number in the text (section 5.3).
PAPER_ARMS: dict[str, PaperArm] = {
    "baseline": PaperArm("original DBM", 67.7, "their lab data", "section 6.1"),
    "modified": PaperArm("modified DBM", 71.3, "their lab data", "section 6.1, Fig. 12b"),
    "baseline_pe": PaperArm(
        "original DBM + positional encoding", 75.42, "DBM sample", "section 5.3, Fig. 10"
    ),
    "modified_pe": PaperArm(
        "modified DBM + positional encoding", None, "DBM sample", "section 5.3, Fig. 11"
    ),
}
"""The paper's arms by their ``experiment=`` value: name and reported accuracy."""

REPLICATE_NAMES = {"seed": "seed", "split.fold": "fold"}
"""How a seed key is named in a per-seed column."""


def counted_runs(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The runs not left out as duplicates."""
    return [r for r in runs if r.left_out is None]


def shared_overrides(runs: Sequence[RunRecord]) -> dict[str, str]:
    """Overrides every run of the sweep has with the same value (seed keys excluded)."""
    runs = counted_runs(runs)
    if not runs:
        return {}
    varying = varying_keys(runs)
    return {
        k: v
        for k, v in sorted(runs[0].overrides.items())
        if k not in varying and k not in SEED_KEYS
    }


# ------------------------------------------------------------------ configurations, in order


def natural_key(value: str) -> tuple[int, float, str]:
    """Numbers by value, then text: the fallback order of values the sweep does not list."""
    try:
        number = float(value)
    except ValueError:
        return (1, 0.0, value)
    return (0, number, "") if not math.isnan(number) else (1, 0.0, value)


def _value_rank(key: str, value: str | None, value_order: Mapping[str, Sequence[str]]) -> tuple:
    """Where ``value`` of ``key`` comes in the sweep: its place in the sweep's list, else after
    the listed values in natural order, a missing value last."""
    if value is None:
        return (3,)
    listed = [str(v).lower() for v in value_order.get(key, ())]
    if value.lower() in listed:
        return (0, listed.index(value.lower()))
    return (1, *natural_key(value))


def _config_overrides(run: RunRecord) -> dict[str, str]:
    """The overrides that make the run's configuration (:attr:`RunRecord.config_key`)."""
    return {
        k: v
        for k, v in run.overrides.items()
        if k not in SEED_KEYS and (run.varying is None or k in run.varying)
    }


@dataclass
class Configuration:
    """One configuration of a sweep: its overrides, its name, what became of its runs."""

    key: str
    """:attr:`RunRecord.config_key` (``report.csv``'s ``config``)."""
    overrides: dict[str, str] = field(default_factory=dict)
    """The varying overrides but the seed keys, in the sweep's key order."""
    arm: str | None = None
    """The paper arm (:data:`PAPER_ARMS` key) when the sweep varies ``experiment``."""
    outcomes: dict[str, int] = field(default_factory=dict)
    """How many of its counted runs ended how (``finished``, ``failed``, ``never started``...)."""

    @property
    def compact(self) -> str:
        """The varying overrides, ``key=value, key=value`` (the key when there are none)."""
        return ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or self.key

    @property
    def name(self) -> str:
        """The paper's name for an arm (with any other varying override), else :attr:`compact`."""
        if self.arm is None:
            return self.compact
        rest = ", ".join(f"{k}={v}" for k, v in self.overrides.items() if k != ARM_KEY)
        return PAPER_ARMS[self.arm].name + (f", {rest}" if rest else "")

    @property
    def paper(self) -> PaperArm | None:
        return PAPER_ARMS[self.arm] if self.arm is not None else None

    @property
    def finished(self) -> int:
        return self.outcomes.get(FINISHED, 0)

    @property
    def not_finished(self) -> str:
        """``1 failed, 2 never started`` (empty when every run finished)."""
        return ", ".join(f"{n} {what}" for what, n in self.outcomes.items() if what != FINISHED)


def configurations(
    runs: Sequence[RunRecord], value_order: Mapping[str, Sequence[str]] | None = None
) -> list[Configuration]:
    """Every configuration of the counted runs (finished or not) in the sweep's order: by the
    place of each value in ``value_order`` (:attr:`Sweep.value_order`), keys in the sweep's
    order; values and keys it does not list after, sorted."""
    order = value_order or {}
    groups: dict[str, list[RunRecord]] = {}
    for run in counted_runs(runs):
        groups.setdefault(run.config_key, []).append(run)
    keys = {k for group in groups.values() for k in _config_overrides(group[0])}
    key_order = [k for k in order if k in keys] + sorted(keys - set(order))
    configs = []
    for key, group in groups.items():
        overrides = _config_overrides(group[0])
        ordered = {k: overrides[k] for k in key_order if k in overrides}
        arm = ordered.get(ARM_KEY)
        outcomes: dict[str, int] = {}
        for run in group:
            outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
        configs.append(
            Configuration(
                key=key,
                overrides=ordered,
                arm=arm if arm in PAPER_ARMS else None,
                outcomes=dict(sorted(outcomes.items(), key=lambda kv: kv[0] != FINISHED)),
            )
        )

    def rank(config: Configuration) -> tuple:
        values = tuple(_value_rank(k, config.overrides.get(k), order) for k in key_order)
        return (*values, config.key)

    return sorted(configs, key=rank)


# ------------------------------------------------------------------------------ the tables


def aggregate(
    runs: Iterable[RunRecord],
    metrics: Sequence[str] = DEFAULT_METRICS,
    order: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per configuration: ``n_runs`` and mean/std of each metric over its seeds (runs
    left out as duplicates are not pooled); rows in ``order`` (configuration keys) when given,
    else in the order of the runs."""
    rows = []
    finished = [r for r in counted_runs(runs) if r.error is None]
    by_key: dict[str, list[RunRecord]] = {}
    for run in finished:
        by_key.setdefault(run.config_key, []).append(run)
    if order is not None:
        place = {key: i for i, key in enumerate(order)}
        by_key = dict(sorted(by_key.items(), key=lambda kv: place.get(kv[0], len(place))))
    for key, group in by_key.items():
        row: dict[str, Any] = {"config": key, "n_runs": len(group)}
        for name in metrics:
            values = [r.metrics[name] for r in group if name in r.metrics]
            if not values:
                continue
            series = pd.Series(values, dtype=float)
            row[f"{name} mean"] = series.mean()
            row[f"{name} std"] = series.std(ddof=1) if len(values) > 1 else 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def annotate(table: pd.DataFrame, configs: Sequence[Configuration]) -> pd.DataFrame:
    """``table`` with each configuration's ``name`` (after ``config``) and, when some are the
    paper's arms, the ``paper`` accuracy (a rate, blank where the paper gives none)."""
    if table.empty:
        return table
    by_key = {c.key: c for c in configs}
    out = table.copy()
    out.insert(1, "name", [by_key[k].name if k in by_key else k for k in out["config"]])
    if any(c.arm is not None for c in configs):
        papers = [by_key[k].paper if k in by_key else None for k in out["config"]]
        out["paper"] = [p.acc / 100 if p and p.acc is not None else math.nan for p in papers]
    return out


def replicate_keys(runs: Sequence[RunRecord]) -> list[str]:
    """The seed keys that tell a configuration's runs apart (those that vary; else those the
    runs have)."""
    counted = counted_runs(runs)
    varying = varying_keys(counted)
    keys = [k for k in SEED_KEYS if k in varying]
    return keys or [k for k in SEED_KEYS if any(k in r.overrides for r in counted)]


def replicate_label(run: RunRecord, keys: Sequence[str]) -> str:
    """``seed 0``, ``fold 2``, ``seed 0, fold 2`` (``run`` when the runs have no seed key)."""
    if not keys:
        return "run"
    return ", ".join(f"{REPLICATE_NAMES.get(k, k)} {run.overrides.get(k, '?')}" for k in keys)


def per_seed_table(
    runs: Sequence[RunRecord],
    metrics: Sequence[str] = DEFAULT_METRICS,
    value_order: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """One row per counted run: its configuration, replicate (``seed 0``...), its seed keys'
    values, status, folder and metrics; configurations in the sweep's order, replicates in
    natural order."""
    configs = configurations(runs, value_order)
    place = {c.key: i for i, c in enumerate(configs)}
    keys = replicate_keys(runs)
    present = [m for m in metrics if any(m in r.metrics for r in runs)]
    rows = []
    for i, run in enumerate(counted_runs(runs)):
        row: dict[str, Any] = {
            "config": run.config_key,
            "replicate": replicate_label(run, keys),
            **{k: run.overrides.get(k) for k in keys},
            "status": run.outcome,
            "run": str(run.path),
        }
        row.update({m: run.metrics[m] for m in present if m in run.metrics})
        rank = tuple(natural_key(str(run.overrides.get(k, ""))) for k in keys)
        rows.append((place[run.config_key], rank, i, row))
    rows.sort(key=lambda item: item[:3])
    columns = ["config", "replicate", *keys, "status", "run", *present]
    return pd.DataFrame([row for *_, row in rows], columns=columns)


FAILED_COLUMNS = ["run", "config", "seed", "status", "error", "overrides"]
DUPLICATE_COLUMNS = ["run", "config", "seed", "status", "kept", "reason"]


def _overrides_text(run: RunRecord) -> str:
    return " ".join(f"{k}={v}" for k, v in run.overrides.items())


def failed_table(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """The runs that did not finish (failed, unfinished, unreadable, never started), with
    their overrides and error (``run``: the sweep's folder for a job that has none)."""
    rows = [
        {
            "run": str(r.path),
            "config": r.config_key,
            "seed": r.seed,
            "status": r.outcome,
            "error": r.error,
            "overrides": _overrides_text(r),
        }
        for r in counted_runs(runs)
        if r.error is not None
    ]
    return pd.DataFrame(rows, columns=FAILED_COLUMNS)


def duplicates_table(left_out: Iterable[RunRecord]) -> pd.DataFrame:
    """The run folders left out as duplicates: which run was counted instead, and why."""
    rows = [
        {
            "run": str(r.path),
            "config": r.config_key,
            "seed": r.seed,
            "status": r.outcome,
            "kept": str(r.kept),
            "reason": r.left_out,
        }
        for r in left_out
        if r.left_out is not None
    ]
    return pd.DataFrame(rows, columns=DUPLICATE_COLUMNS)


def best_config(table: pd.DataFrame, metric: str = "val_best/acc") -> str | None:
    """The configuration with the highest mean ``metric``."""
    column = f"{metric} mean"
    if table.empty or column not in table or table[column].isna().all():
        return None
    return str(table.loc[table[column].idxmax(), "config"])


ANCHORS = ("model=random_forest", "model=majority")
"""Configurations every other one is compared with, fold by fold (``sweep=heldout`` runs them)."""

HELDOUT_METRIC = "heldout/macro_f1"
"""What the report compares with the anchors when the runs hold held-out test scores."""


def _replicate(run: RunRecord) -> tuple[str | None, ...]:
    """Which replicate a run is: its value of every seed key (seed and fold)."""
    return tuple(run.overrides.get(k) for k in SEED_KEYS)


def _without_model(run: RunRecord) -> tuple[tuple[str, str], ...]:
    """The run's varying overrides but the model and the seed keys (what pairs it with an
    anchor run of the same data, features and split)."""
    return tuple(
        (k, v)
        for k, v in sorted(run.overrides.items())
        if k not in SEED_KEYS and k != "model" and (run.varying is None or k in run.varying)
    )


def paired_comparison(runs: Sequence[RunRecord], metric: str, anchor: str) -> list[dict[str, Any]]:
    """Every configuration but the anchors against the anchor (``model=...``) run of the same
    other overrides and the same replicate (fold and seed): the replicates both have, on how
    many the configuration scores higher, and the ratio of the means over those replicates."""
    finished = [r for r in counted_runs(runs) if r.error is None and metric in r.metrics]
    anchors = {
        (_without_model(r), _replicate(r)): r.metrics[metric]
        for r in finished
        if anchor in r.config_key
    }
    if not anchors:
        return []
    rows = []
    others = {r.config_key for r in finished if not any(a in r.config_key for a in ANCHORS)}
    for key in sorted(others):
        pairs = {}
        for r in finished:
            match = anchors.get((_without_model(r), _replicate(r)))
            if r.config_key == key and match is not None:
                pairs["/".join(v for v in _replicate(r) if v is not None)] = (
                    r.metrics[metric],
                    match,
                )
        if not pairs:
            continue
        ours = [a for a, _ in pairs.values()]
        theirs = [b for _, b in pairs.values()]
        mean_theirs = sum(theirs) / len(theirs)
        rows.append(
            {
                "config": key,
                "anchor": anchor,
                "folds": len(pairs),
                "better": sum(a > b for a, b in zip(ours, theirs, strict=True)),
                "ratio": (sum(ours) / len(ours)) / mean_theirs if mean_theirs else math.nan,
                "per_fold": dict(sorted(pairs.items())),
            }
        )
    return rows


# --------------------------------------------------------------------------- the report


@dataclass
class Report:
    """Everything a report says about a sweep, before it is written."""

    root: Path
    sweep: Sweep
    metric: str
    """What marks the best configuration (a validation score)."""
    compared: str
    """What the anchors are compared on (the held-out score when there is one) and the plot."""
    configs: list[Configuration]
    """Every configuration, in the sweep's order."""
    table: pd.DataFrame
    """:func:`aggregate` in the sweep's order, with ``name`` (and ``paper``) columns."""
    per_seed: pd.DataFrame
    failed: pd.DataFrame
    duplicates: pd.DataFrame
    comparison: list[dict[str, Any]]

    @property
    def headline(self) -> list[str]:
        """The metrics whose per-seed values are shown: the compared one, then ``metric``."""
        return list(dict.fromkeys([self.compared, self.metric]))

    @property
    def best(self) -> str | None:
        return best_config(self.table, self.metric)


def build_report(root: str | Path, metric: str | None = None, sweep: Sweep | None = None) -> Report:
    """Read every run below ``root`` (``sweep``: what :func:`read_sweep` found there, read
    again when not given) into a :class:`Report`. Raises ``FileNotFoundError`` when ``root``
    is not a folder or holds no run."""
    root = Path(root)
    sweep = sweep or read_sweep(root)
    if not sweep.runs:
        raise FileNotFoundError(f"{root}: no runs below it (no .hydra/config.yaml, no {MULTIRUN})")
    runs = sweep.runs
    held = any(HELDOUT_METRIC in r.metrics for r in runs)
    metric = metric or "val_best/acc"
    compared = HELDOUT_METRIC if held else metric
    configs = configurations(runs, sweep.value_order)
    table = annotate(aggregate(runs, order=[c.key for c in configs]), configs)
    return Report(
        root=root,
        sweep=sweep,
        metric=metric,
        compared=compared,
        configs=configs,
        table=table,
        per_seed=per_seed_table(runs, value_order=sweep.value_order),
        failed=failed_table(runs),
        duplicates=duplicates_table(sweep.left_out),
        comparison=[row for a in ANCHORS for row in paired_comparison(runs, compared, a)],
    )
