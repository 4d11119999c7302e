"""Aggregate the runs of a sweep: mean +/- std over seeds (or folds) per configuration, failed
runs listed.

A run is a directory holding ``.hydra/overrides.yaml`` (or ``.hydra/config.yaml``) and either
``metrics.json`` (finished) or ``failed.json`` (its error). A configuration is the run's set of
command-line overrides that differ between the runs of the sweep, without the seed keys, so the
seeds of one configuration are pooled; overrides shared by every run are reported once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dbm_lightning.atomic import write_atomic, write_text_atomic
from dbm_lightning.runs import RunDir

SEED_KEYS = ("seed", "split.fold")
"""Overrides that only change the random seed or the cross-validation fold: the replicates of
a configuration, pooled into mean +/- std."""

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


@dataclass
class RunRecord:
    """One run of a sweep: its overrides, its flat metrics or its error."""

    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    varying: tuple[str, ...] | None = None
    """Override keys that tell this sweep's configurations apart (``None``: all of them)."""

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


def _read_overrides(run_dir: Path) -> dict[str, str]:
    """The ``key=value`` overrides Hydra recorded for a run (without ``hydra.*`` keys)."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return {}
    import yaml  # PyYAML comes with omegaconf

    items = yaml.safe_load(path.read_text()) or []
    out: dict[str, str] = {}
    for item in items:
        key, _, value = str(item).partition("=")
        key = key.lstrip("+~")
        if key.startswith("hydra.") or key.startswith("hydra/"):
            continue
        out[key] = value
    return out


def flatten_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """``metrics.json`` as one level of ``name -> float`` (``val_best/acc``, ``val/acc``, ...)."""
    flat: dict[str, float] = {}
    for section in ("val", "test"):
        for key, value in (metrics.get(section) or {}).items():
            if isinstance(value, int | float):
                flat[key if "/" in key else f"{section}/{key}"] = float(value)
    for key, value in (metrics.get("heldout") or {}).items():
        if isinstance(value, int | float) and key.startswith("heldout"):
            flat[key] = float(value)
    for key, value in (metrics.get("val_best") or {}).items():
        if isinstance(value, int | float):
            flat[f"val_best/{key}"] = float(value)
    for key in ("train_frames_per_s", "wall_time_s", "epochs"):
        if isinstance(metrics.get(key), int | float):
            flat[key] = float(metrics[key])
    return flat


def find_runs(root: str | Path) -> list[RunRecord]:
    """Every run below ``root`` (a multirun directory, or a folder of them)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    run_dirs = sorted({p.parent.parent for p in root.rglob(".hydra/config.yaml")})
    runs: list[RunRecord] = []
    for run_dir in run_dirs:
        record = RunRecord(path=run_dir, overrides=_read_overrides(run_dir))
        run = RunDir(run_dir)
        if run.is_finished():
            try:
                record.metrics = flatten_metrics(run.read_metrics())
            except json.JSONDecodeError as exc:
                record.error = f"{run.metrics_file}: unreadable {RunDir.METRICS} ({exc})"
        elif run.failed_file.is_file():
            record.error = run.read_failure().get("error", "unknown error")
        else:
            record.error = f"no {RunDir.METRICS} (the run did not finish)"
        runs.append(record)
    varying = tuple(sorted(varying_keys(runs)))
    for record in runs:
        record.varying = varying
    return runs


def varying_keys(runs: Sequence[RunRecord]) -> set[str]:
    """Override keys whose value is not the same in every run (a key some runs lack varies)."""
    keys = {k for r in runs for k in r.overrides}
    return {k for k in keys if len({r.overrides.get(k) for r in runs}) > 1}


def shared_overrides(runs: Sequence[RunRecord]) -> dict[str, str]:
    """Overrides every run of the sweep has with the same value (seed keys excluded)."""
    if not runs:
        return {}
    varying = varying_keys(runs)
    return {
        k: v
        for k, v in sorted(runs[0].overrides.items())
        if k not in varying and k not in SEED_KEYS
    }


def aggregate(runs: Iterable[RunRecord], metrics: Sequence[str] = DEFAULT_METRICS) -> pd.DataFrame:
    """One row per configuration: ``n_runs`` and mean/std of each metric over its seeds."""
    rows = []
    finished = [r for r in runs if r.error is None]
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


def failed_table(runs: Iterable[RunRecord]) -> pd.DataFrame:
    """The runs that did not finish, with their overrides and error."""
    rows = [
        {"run": str(r.path), "config": r.config_key, "seed": r.seed, "error": r.error}
        for r in runs
        if r.error is not None
    ]
    return pd.DataFrame(rows, columns=["run", "config", "seed", "error"])


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
    finished = [r for r in runs if r.error is None and metric in r.metrics]
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
) -> str:
    """A Markdown report: the table (percentages for rates), best marked, failed runs listed."""
    lines = [f"# {title or 'Sweep report'}", ""]
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
            f"Rates in %, mean ± std over seeds or folds (sample std); best by mean `{metric}`.",
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
            "| run | configuration | seed | error |",
            "|---|---|---|---|",
        ]
        for _, row in failed.iterrows():
            error = str(row["error"]).replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(
                f"| `{Path(row['run']).name}` | `{row['config']}` | {row['seed']} | {error} |"
            )
    return "\n".join(lines) + "\n"


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
                for r in runs
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
    root: str | Path, out_dir: str | Path | None = None, metric: str | None = None
) -> dict[str, Path]:
    """Read every run below ``root`` and write ``report.csv``, ``report.md``, ``failed.csv`` and
    ``comparison.png`` to ``out_dir`` (default: ``root``). ``metric`` (a validation score:
    ranking by a test score would be a choice made on test) marks the best configuration;
    each configuration is compared fold by fold with the :data:`ANCHORS` on
    ``heldout/macro_f1`` when the runs have held-out test scores (else on ``metric``)."""
    root = Path(root)
    out = Path(out_dir) if out_dir else root
    out.mkdir(parents=True, exist_ok=True)
    runs = find_runs(root)
    held = any(HELDOUT_METRIC in r.metrics for r in runs)
    metric = metric or "val_best/acc"
    compared = HELDOUT_METRIC if held else metric
    comparison = [row for a in ANCHORS for row in paired_comparison(runs, compared, a)]
    table = aggregate(runs)
    failed = failed_table(runs)
    paths = {
        "csv": out / "report.csv",
        "markdown": out / "report.md",
        "failed": out / "failed.csv",
        "plot": out / "comparison.png",
    }
    best = best_config(table, metric)
    ranked = table.assign(best=table["config"] == best if not table.empty else [])
    write_atomic(paths["csv"], lambda tmp: ranked.to_csv(tmp, index=False))
    write_atomic(paths["failed"], lambda tmp: failed.to_csv(tmp, index=False))
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
        ),
    )
    comparison_plot(table, runs, compared, paths["plot"])  # the held-out score when there is one
    return paths
