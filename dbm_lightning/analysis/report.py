"""Aggregate the runs of a sweep: mean +/- std over seeds (or folds) per configuration, failed
runs listed.

A run is a directory holding ``.hydra/overrides.yaml`` (or ``.hydra/config.yaml``) and either
``metrics.json`` (finished) or ``failed.json`` (its error). A configuration is the run's set of
command-line overrides that differ between the runs of the sweep, without the seed keys, so the
seeds of one configuration are pooled; overrides shared by every run are reported once.

Reading the runs (each configuration and seed once, never-started jobs, two sweeps in one
folder) is :mod:`dbm_lightning.analysis.sweep_runs`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dbm_lightning.analysis.sweep_runs import (
    FAILED,
    MULTIRUN,
    SEED_KEYS,
    RunRecord,
    Sweep,
    read_sweep,
    varying_keys,
)
from dbm_lightning.atomic import write_atomic, write_text_atomic

DEFAULT_METRICS = (
    "heldout/macro_f1",
    "heldout/balanced_acc",
    "heldout/bout_macro_f1",
    "val_best/acc",
    "val/acc",
    "val/balanced_acc",
    "val/macro_f1",
    "test/acc",
    "test/balanced_acc",
    "test/macro_f1",
    "train_frames_per_s",
)


def _counted(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The runs not left out as duplicates."""
    return [r for r in runs if r.left_out is None]


def shared_overrides(runs: Sequence[RunRecord]) -> dict[str, str]:
    """Overrides every run of the sweep has with the same value (seed keys excluded)."""
    runs = _counted(runs)
    if not runs:
        return {}
    varying = varying_keys(runs)
    return {
        k: v
        for k, v in sorted(runs[0].overrides.items())
        if k not in varying and k not in SEED_KEYS
    }


def aggregate(runs: Iterable[RunRecord], metrics: Sequence[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """One row per configuration: ``n_runs`` and mean/std of each metric over its seeds (runs
    left out as duplicates are not pooled)."""
    rows = []
    finished = [r for r in _counted(runs) if r.error is None]
    by_key: dict[str, list[RunRecord]] = {}
    for run in finished:
        by_key.setdefault(run.config_key, []).append(run)
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
        for r in _counted(runs)
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
    if table.empty or column not in table:
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
    finished = [r for r in _counted(runs) if r.error is None and metric in r.metrics]
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


def _fmt(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    if abs(mean) <= 1.0:
        return f"{100 * mean:.2f} ± {100 * std:.2f}"
    return f"{mean:.1f} ± {std:.1f}"


def to_markdown(
    table: pd.DataFrame,
    failed: pd.DataFrame,
    metric: str = "val_best/acc",
    title: str = "",
    shared: dict[str, str] | None = None,
    comparison: Sequence[dict[str, Any]] | None = None,
    compared: str | None = None,
    notes: Sequence[str] | None = None,
    duplicates: pd.DataFrame | None = None,
) -> str:
    """A Markdown report: what does not add up (``notes``, one line each), the table
    (percentages for rates), best marked, failed runs listed, duplicates left out listed."""
    lines = [f"# {title or 'Sweep report'}", ""]
    for note in notes or []:
        lines += [f"**Note:** {note}.", ""]
    if shared:
        lines += ["Every run: `" + " ".join(f"{k}={v}" for k, v in shared.items()) + "`", ""]
    if table.empty:
        lines.append("No run finished.")
    else:
        best = best_config(table, metric)
        names = [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]
        lines.append("| configuration | runs | " + " | ".join(names) + " |")
        lines.append("|---|---|" + "---|" * len(names))
        order = (
            table.sort_values(f"{metric} mean", ascending=False)
            if f"{metric} mean" in table
            else table
        )
        for _, row in order.iterrows():
            cells = [_fmt(row.get(f"{n} mean", math.nan), row.get(f"{n} std", 0.0)) for n in names]
            mark = " **(best)**" if row["config"] == best else ""
            lines.append(
                f"| `{row['config']}`{mark} | {int(row['n_runs'])} | " + " | ".join(cells) + " |"
            )
        lines += [
            "",
            f"Rates in %, mean ± std over seeds or folds (sample std; each configuration and "
            f"seed counted once); best by mean `{metric}`.",
        ]
        if any(n.startswith("heldout/") for n in names):
            lines.append(
                "`heldout/*`: the test fold of each run (animals or videos never trained on nor "
                "used for a choice), after the post-processing chosen on validation; "
                "`val_best/acc`: validation accuracy of the best epoch."
            )
    for row in comparison or []:
        if row is comparison[0]:
            lines += ["", f"## Against the anchors ({compared or metric}, fold by fold)", ""]
            lines += ["| configuration | anchor | ratio of means | better on | per fold |"]
            lines += ["|---|---|---|---|---|"]
        folds = ", ".join(f"{f}: {a:.3f} vs {b:.3f}" for f, (a, b) in row["per_fold"].items())
        lines.append(
            f"| `{row['config']}` | `{row['anchor']}` | {row['ratio']:.3f} | "
            f"{row['better']} of {row['folds']} | {folds} |"
        )
    if not failed.empty:
        lines += [
            "",
            "## Failed runs",
            "",
            "| run | configuration | seed | status | error |",
            "|---|---|---|---|---|",
        ]
        for _, row in failed.iterrows():
            error = _cell(row["error"])
            lines.append(
                f"| `{Path(row['run']).name}` | `{row['config']}` | {row['seed']} | "
                f"{row.get('status', FAILED)} | {error} |"
            )
    if duplicates is not None and not duplicates.empty:
        lines += [
            "",
            "## Left out: duplicates",
            "",
            "Run folders with the same overrides as a counted run (not pooled).",
            "",
            "| run | configuration | seed | status | counted instead | why |",
            "|---|---|---|---|---|---|",
        ]
        for _, row in duplicates.iterrows():
            lines.append(
                f"| `{_cell(row['run'])}` | `{row['config']}` | {row['seed']} | {row['status']} "
                f"| `{_cell(row['kept'])}` | {_cell(row['reason'])} |"
            )
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    """Text for one Markdown table cell (pipes escaped, one line, at most 300 characters)."""
    return str(value).replace("|", "\\|").replace("\n", " ")[:300]


def comparison_plot(
    table: pd.DataFrame, runs: Sequence[RunRecord], metric: str, path: Path
) -> Path:
    """Bar chart of mean +/- std of ``metric`` per configuration, each seed as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = f"{metric} mean"
    order = table.sort_values(column, ascending=True) if column in table else table
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(order), 2) + 1.5))
    y = range(len(order))
    if column in order:
        ax.barh(
            list(y),
            100 * order[column],
            xerr=100 * order[f"{metric} std"],
            color="#8fb3d9",
            edgecolor="#2b5d8a",
            capsize=3,
        )
        for i, key in enumerate(order["config"]):
            values = [
                100 * r.metrics[metric]
                for r in _counted(runs)
                if r.error is None and r.config_key == key and metric in r.metrics
            ]
            ax.scatter(values, [i] * len(values), color="black", s=12, zorder=3)
    ax.set_yticks(list(y))
    ax.set_yticklabels(order["config"], fontsize=8)
    ax.set_xlabel(f"{metric} (%)")
    ax.set_title(f"{metric}: mean ± std over seeds or folds (dots: single runs)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
    return path


def write_report(
    root: str | Path,
    out_dir: str | Path | None = None,
    metric: str | None = None,
    sweep: Sweep | None = None,
) -> dict[str, Path]:
    """Read every run below ``root`` and write ``report.csv``, ``report.md``, ``failed.csv``,
    ``duplicates.csv`` and ``comparison.png`` to ``out_dir`` (default: ``root``). ``metric`` (a
    validation score: ranking by a test score would be a choice made on test) marks the best
    configuration; each configuration is compared fold by fold with the :data:`ANCHORS` on
    ``heldout/macro_f1`` when the runs have held-out test scores (else on ``metric``).
    ``sweep``: what :func:`read_sweep` found below ``root`` (read again when not given).
    Raises ``FileNotFoundError`` when ``root`` is not a folder or holds no run."""
    root = Path(root)
    sweep = sweep or read_sweep(root)
    if not sweep.runs:
        raise FileNotFoundError(f"{root}: no runs below it (no .hydra/config.yaml, no {MULTIRUN})")
    out = Path(out_dir) if out_dir else root
    out.mkdir(parents=True, exist_ok=True)
    runs = sweep.runs
    held = any(HELDOUT_METRIC in r.metrics for r in runs)
    metric = metric or "val_best/acc"
    compared = HELDOUT_METRIC if held else metric
    comparison = [row for a in ANCHORS for row in paired_comparison(runs, compared, a)]
    table = aggregate(runs)
    failed = failed_table(runs)
    duplicates = duplicates_table(sweep.left_out)
    paths = {
        "csv": out / "report.csv",
        "markdown": out / "report.md",
        "failed": out / "failed.csv",
        "duplicates": out / "duplicates.csv",
        "plot": out / "comparison.png",
    }
    best = best_config(table, metric)
    ranked = table.assign(best=table["config"] == best if not table.empty else [])
    write_atomic(paths["csv"], lambda tmp: ranked.to_csv(tmp, index=False))
    write_atomic(paths["failed"], lambda tmp: failed.to_csv(tmp, index=False))
    write_atomic(paths["duplicates"], lambda tmp: duplicates.to_csv(tmp, index=False))
    write_text_atomic(
        paths["markdown"],
        to_markdown(
            table,
            failed,
            metric,
            title=f"Sweep report: {root}",
            shared=shared_overrides(runs),
            comparison=comparison,
            compared=compared,
            notes=sweep.notes,
            duplicates=duplicates,
        ),
    )
    comparison_plot(table, runs, compared, paths["plot"])  # the held-out score when there is one
    return paths
