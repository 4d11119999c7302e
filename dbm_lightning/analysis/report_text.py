"""The words of a sweep report: its Markdown, its console summary and its comparison figure.

The numbers they show are :mod:`dbm_lightning.analysis.report_data`'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dbm_lightning.analysis.report_data import (
    PAPER_ARMS,
    SPEED_METRICS,
    Configuration,
    Report,
    best_config,
    counted_runs,
    natural_key,
    shared_overrides,
)
from dbm_lightning.analysis.sweep_runs import (
    FAILED,
    FINISHED,
    NEVER_STARTED,
    SEED_KEYS,
    RunRecord,
)
from dbm_lightning.atomic import write_atomic

METRIC_LABELS = {
    "heldout/macro_f1": "held-out macro F1",
    "heldout/balanced_acc": "held-out balanced acc",
    "heldout/bout_macro_f1": "held-out bout macro F1",
    "val_best/acc": "val acc, best epoch",
    "val_best/balanced_acc": "val balanced acc, best epoch",
    "val_best/macro_f1": "val macro F1, best epoch",
    "val/acc": "val acc, last epoch",
    "val/balanced_acc": "val balanced acc, last epoch",
    "val/macro_f1": "val macro F1, last epoch",
    "test/acc": "test acc",
    "test/balanced_acc": "test balanced acc",
    "test/macro_f1": "test macro F1",
    "train_frames_per_s": "train frames/s",
    "fit_time_s": "fit time",
    "wall_time_s": "run time",
    "epochs": "epochs",
}
"""Column headers of the Markdown report (``metrics.json`` names in the CSV files)."""

RATE_SECTIONS = ("val", "val_best", "test", "heldout", "heldout_raw")
"""Metric prefixes of scores in [0, 1] (:func:`_is_rate`)."""

RATES = ("acc", "balanced_acc", "macro_f1", "bout_macro_f1", "acc_best")
"""Metric names (after the prefix) that are rates; so are ``f1/<class>``, ``bout_f1/<class>``."""


def metric_label(name: str) -> str:
    """The header of metric ``name`` in the Markdown report (the name itself if unknown)."""
    return METRIC_LABELS.get(name, name)


PAPER_NOTE = (
    "paper: the highest validation accuracy the paper reports for the arm (compare with val acc, "
    "best epoch): "
    + "; ".join(
        f"{arm.name} {arm.acc:g} ({arm.data}, {arm.source})"
        if arm.acc is not None
        else f"{arm.name}: {arm.source} only, no number"
        for arm in PAPER_ARMS.values()
    )
    + "."
)
"""The line under a table with a ``paper`` column."""


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("" if n == 1 else "s")


# ---------------------------------------------------------------------------- formatting


def _is_rate(name: str) -> bool:
    """Whether metric ``name`` is a score in [0, 1] (not a loss, an epoch, a frame count)."""
    section, _, rest = name.partition("/")
    return section in RATE_SECTIONS and (rest in RATES or rest.startswith(("f1/", "bout_f1/")))


def _fmt(mean: float, std: float) -> str:
    """``mean ± std``: in % for a rate (|mean| <= 1), else with one decimal."""
    if math.isnan(mean):
        return ""
    if abs(mean) <= 1.0:
        return f"{100 * mean:.2f} ± {100 * std:.2f}"
    return f"{mean:.1f} ± {std:.1f}"


def _seconds(mean: float, std: float) -> str:
    """A duration as ``mean ± std`` in s, min or h, whichever reads best."""
    for unit, size in (("h", 3600.0), ("min", 60.0)):
        if mean >= 2 * size:
            return f"{mean / size:.1f} ± {std / size:.1f} {unit}"
    return f"{mean:.1f} ± {std:.1f} s"


def _fmt_metric(name: str, mean: Any, std: Any, n: int | None = None) -> str:
    """One ``mean ± std`` cell of metric ``name`` (rates in %, speed in its unit); the value
    alone when it is of ``n`` = 1 run."""
    mean = float(mean) if mean is not None and not pd.isna(mean) else math.nan
    std = float(std) if std is not None and not pd.isna(std) else 0.0
    if math.isnan(mean):
        return ""
    if n == 1:
        text = _fmt_metric(name, mean, 0.0)
        value, _, rest = text.partition(" ± ")
        unit = rest.partition(" ")[2]
        return f"{value} {unit}".rstrip()
    if _is_rate(name):
        return f"{100 * mean:.2f} ± {100 * std:.2f}"
    if name == "train_frames_per_s":
        return f"{mean:,.0f} ± {std:,.0f}"
    if name.endswith("_time_s"):
        return _seconds(mean, std)
    if name == "epochs":
        return f"{mean:.0f}" if std == 0 else f"{mean:.1f} ± {std:.1f}"
    return _fmt(mean, std)


def _fmt_value(name: str, value: float) -> str:
    """One run's value of metric ``name`` (rates in %)."""
    if math.isnan(value):
        return ""
    return f"{100 * value:.2f}" if _is_rate(name) else f"{value:.4g}"


def _cell(value: Any) -> str:
    """Text for one Markdown table cell (pipes escaped, one line, at most 300 characters)."""
    return str(value).replace("|", "\\|").replace("\n", " ")[:300]


def _display(config: Configuration) -> str:
    """A configuration's name in a Markdown cell (overrides as code)."""
    return config.name if config.arm is not None else f"`{config.name}`"


def _stat(row: pd.Series | None, metric: str) -> str:
    """The ``mean ± std`` cell of ``metric`` in a row of
    :func:`~dbm_lightning.analysis.report_data.aggregate` (blank: none)."""
    if row is None:
        return ""
    n = int(row["n_runs"]) if "n_runs" in row else None
    return _fmt_metric(metric, row.get(f"{metric} mean"), row.get(f"{metric} std"), n)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The lines of a Markdown pipe table of text cells."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _configs_of(
    table: pd.DataFrame, configs: Sequence[Configuration] | None
) -> list[Configuration]:
    """The configurations to list: ``configs`` (every one, finished or not) or the table's."""
    if configs is not None:
        return list(configs)
    keys = list(table["config"]) if "config" in table else []
    return [Configuration(key=str(k), outcomes={FINISHED: 1}) for k in keys]


def _replicate_order(per_seed: pd.DataFrame) -> list[str]:
    """The replicate labels of a per-seed table, in natural order of their seed keys."""
    keys = [k for k in SEED_KEYS if k in per_seed]
    first = per_seed.drop_duplicates("replicate")
    ranks = {
        row["replicate"]: tuple(natural_key(str(row[k])) for k in keys)
        for _, row in first.iterrows()
    }
    return sorted(ranks, key=lambda label: (ranks[label], label))


def _per_seed_cells(
    per_seed: pd.DataFrame, metric: str, replicates: Sequence[str]
) -> dict[str, list[str]]:
    """Per configuration: one cell per replicate (the value, or what became of the run)."""
    cells: dict[str, list[str]] = {}
    for key, group in per_seed.groupby("config", sort=False):
        by_label = {row["replicate"]: row for _, row in group.iterrows()}
        row_cells = []
        for label in replicates:
            row = by_label.get(label)
            if row is None:
                row_cells.append("")
            elif row["status"] != FINISHED:
                row_cells.append(str(row["status"]))
            elif metric in row and not pd.isna(row[metric]):
                row_cells.append(_fmt_value(metric, float(row[metric])))
            else:
                row_cells.append("–")
        cells[str(key)] = row_cells
    return cells


def _replicate_header(replicates: Sequence[str]) -> tuple[str, list[str]]:
    """``("seed", ["0", "1"])`` for labels ``seed 0``, ``seed 1``; the labels themselves when
    they name more than one key."""
    words = {label.split(" ", 1)[0] for label in replicates}
    if len(words) == 1 and all(label.count(" ") == 1 for label in replicates):
        return words.pop(), [label.split(" ", 1)[1] for label in replicates]
    return "replicate", list(replicates)


def _accuracy_section(
    table: pd.DataFrame,
    configs: Sequence[Configuration],
    metric: str,
    accuracy: Sequence[str],
) -> list[str]:
    best = best_config(table, metric)
    rows_by_key = {str(row["config"]): row for _, row in table.iterrows()}
    show_raw = any(c.name != c.compact for c in configs)
    show_paper = any(c.arm is not None for c in configs)
    show_missing = any(c.not_finished for c in configs)
    columns = list(accuracy)
    paper_at = columns.index("val_best/acc") + 1 if "val_best/acc" in columns else len(columns)
    header = ["configuration", *(["overrides"] if show_raw else []), "runs"]
    for i, name in enumerate(columns):
        if show_paper and i == paper_at:
            header.append("paper")
        header.append(metric_label(name))
    if show_paper and paper_at == len(columns):
        header.append("paper")
    if show_missing:
        header.append("not finished")
    lines = []
    for config in configs:
        row = rows_by_key.get(config.key)
        mark = " **(best)**" if config.key == best else ""
        cells = [_display(config) + mark, *([f"`{config.key}`"] if show_raw else [])]
        cells.append(str(int(row["n_runs"])) if row is not None else "0")
        for i, column in enumerate(columns):
            if show_paper and i == paper_at:
                cells.append(config.paper.cell if config.paper else "")
            cells.append(_stat(row, column))
        if show_paper and paper_at == len(columns):
            cells.append(config.paper.cell if config.paper else "")
        if show_missing:
            cells.append(config.not_finished)
        lines.append(cells)
    paragraphs = [
        "Rates in %, mean ± std over seeds or folds (sample std; each configuration and seed "
        "counted once); configurations in the order of the sweep; best by mean "
        f"`{metric}`.",
    ]
    explained = []
    if any(c.startswith("val_best/") for c in columns):
        explained.append(
            "*best epoch* (`val_best/*`): the validation scores of the epoch kept as best "
            "(highest `val/acc` unless the run's checkpoint monitor says otherwise), what the "
            "paper reports; picked on validation itself, so optimistic"
        )
    if any(c.startswith("val/") for c in columns):
        explained.append(
            "*last epoch* (`val/*`): after the last epoch (a classic model is fitted once: "
            "both are the same)"
        )
    if explained:
        paragraphs.append("; ".join(explained) + ".")
    if any(c.startswith("test/") for c in columns):
        paragraphs.append("`test/*`: the test sessions, scored with the best epoch's checkpoint.")
    if any(c.startswith("heldout/") for c in columns):
        paragraphs.append(
            "`heldout/*`: the test fold of each run (animals or videos never trained on nor "
            "used for a choice), after the post-processing chosen on validation."
        )
    if show_paper:
        paragraphs.append(PAPER_NOTE)
    out = markdown_table(header, lines)
    for paragraph in paragraphs:
        out += ["", paragraph]
    return out


def _per_seed_section(
    per_seed: pd.DataFrame, configs: Sequence[Configuration], metric: str
) -> list[str]:
    if per_seed.empty or metric not in per_seed:
        return []
    replicates = _replicate_order(per_seed)
    if len(replicates) < 2:  # one run per configuration: the main table has its values
        return []
    cells = _per_seed_cells(per_seed, metric, replicates)
    word, labels = _replicate_header(replicates)
    header = ["configuration", *(f"{word} {x}" for x in labels), "mean ± std"]
    rows = []
    for config in configs:
        if config.key not in cells:
            continue
        group = per_seed[(per_seed["config"] == config.key) & (per_seed["status"] == FINISHED)]
        values = group[metric].dropna().astype(float)
        std = values.std(ddof=1) if len(values) > 1 else 0.0
        summary = _fmt_metric(metric, values.mean(), std, len(values)) if len(values) else ""
        rows.append([_display(config), *cells[config.key], summary])
    unit = " (%)" if _is_rate(metric) else ""
    return [
        "",
        f"## Per {word}: {metric_label(metric)}{unit}",
        "",
        *markdown_table(header, rows),
        "",
        f"`{metric}` of each run; a run that did not finish says what became of it.",
    ]


def _speed_section(
    table: pd.DataFrame, configs: Sequence[Configuration], per_seed: pd.DataFrame | None
) -> list[str]:
    speed = [m for m in SPEED_METRICS if f"{m} mean" in table]
    if table.empty or not speed:
        return []
    rows_by_key = {str(row["config"]): row for _, row in table.iterrows()}
    rows = []
    for config in configs:
        row = rows_by_key.get(config.key)
        if row is None:
            continue
        cells = [_stat(row, m) for m in speed]
        rows.append([_display(config), str(int(row["n_runs"])), *cells])
    what = {
        "train_frames_per_s": "*train frames/s*: training frames per second of the training "
        "steps (`train_frames_per_s`)",
        "fit_time_s": "*fit time*: the training (`fit_time_s`)",
        "wall_time_s": "*run time*: the whole run, data loading and evaluation included "
        "(`wall_time_s`)",
        "epochs": "*epochs*: epochs trained",
    }
    out = [
        "",
        "## Speed",
        "",
        *markdown_table(["configuration", "runs", *(metric_label(m) for m in speed)], rows),
        "",
        "Mean ± std over seeds or folds; "
        + "; ".join(what[m] for m in speed)
        + ". Speed depends on the machine and on how many runs shared it.",
    ]
    if per_seed is not None and "wall_time_s" in per_seed:
        times = per_seed["wall_time_s"].dropna().astype(float)
        if len(times):
            total = _fmt_metric("wall_time_s", float(times.sum()), 0.0, n=1)
            out += [
                "",
                f"The {_count(len(times), 'finished run')} took {total} of run time in all.",
            ]
    return out


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
    configs: Sequence[Configuration] | None = None,
    per_seed: pd.DataFrame | None = None,
    headline: Sequence[str] | None = None,
) -> str:
    """A Markdown report: what does not add up (``notes``, one line each), the scores of each
    configuration in the sweep's order (``configs``: every configuration, finished or not;
    default the table's), best marked, the per-seed values of the ``headline`` metrics (default
    ``metric``), speed, the comparison with the anchors, failed runs and duplicates left out."""
    lines = [f"# {title or 'Sweep report'}", ""]
    for note in notes or []:
        lines += [f"**Note:** {note}.", ""]
    if shared:
        lines += ["Every run: `" + " ".join(f"{k}={v}" for k, v in shared.items()) + "`", ""]
    configs = _configs_of(table, configs)
    if table.empty:
        lines.append("No run finished.")
    else:
        names = [c[: -len(" mean")] for c in table.columns if c.endswith(" mean")]
        accuracy = [n for n in names if n not in SPEED_METRICS]
        lines += ["## Scores", ""]
        lines += _accuracy_section(table, configs, metric, accuracy)
        for name in headline or [metric]:
            if per_seed is not None:
                lines += _per_seed_section(per_seed, configs, name)
        lines += _speed_section(table, configs, per_seed)
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


def comparison_plot(
    table: pd.DataFrame, runs: Sequence[RunRecord], metric: str, path: Path
) -> Path:
    """Bar chart of mean +/- std of ``metric`` per configuration, each seed as a dot (and the
    paper's number of its arms for ``val_best/acc``); the configurations top to bottom in the
    table's order (labelled by its ``name`` column)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    column = f"{metric} mean"
    fig, ax = plt.subplots(figsize=(8, 0.45 * max(len(table), 2) + 1.5))
    y = list(range(len(table)))
    labels = list(table["name"] if "name" in table else table.get("config", []))
    if column in table:
        ax.barh(
            y,
            100 * table[column],
            xerr=100 * table[f"{metric} std"],
            color="#8fb3d9",
            edgecolor="#2b5d8a",
            capsize=3,
        )
        for i, key in enumerate(table["config"]):
            values = [
                100 * r.metrics[metric]
                for r in counted_runs(runs)
                if r.error is None and r.config_key == key and metric in r.metrics
            ]
            ax.scatter(values, [i] * len(values), color="black", s=12, zorder=3)
        if "paper" in table and metric == "val_best/acc" and table["paper"].notna().any():
            ax.scatter(
                100 * table["paper"], y, color="#c0392b", marker="D", s=28, zorder=4, label="paper"
            )
            ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()  # the sweep's first configuration on top
    ax.set_xlabel(f"{metric_label(metric)} ({metric}, %)")
    ax.set_title(f"{metric}: mean ± std over seeds or folds (dots: single runs)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
    return path


def report_markdown(report: Report) -> str:
    """The Markdown of ``report`` (:func:`to_markdown` of its tables, titled by its root)."""
    return to_markdown(
        report.table,
        report.failed,
        report.metric,
        title=f"Sweep report: {report.root}",
        shared=shared_overrides(report.sweep.runs),
        comparison=report.comparison,
        compared=report.compared,
        notes=report.sweep.notes,
        duplicates=report.duplicates,
        configs=report.configs,
        per_seed=report.per_seed,
        headline=report.headline,
    )


# ------------------------------------------------------------------------- the console


def summary_text(report: Report) -> list[str]:
    """The headline lines of :func:`~dbm_lightning.analysis.report.sweep_summary`: counts,
    notes, one line per configuration (headline metric mean ± std, per seed, the paper's
    number, runs that did not finish)."""
    runs = counted_runs(report.sweep.runs)
    outcomes: dict[str, int] = {}
    for run in runs:
        outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
    counts = ", ".join(
        f"{outcomes[k]} {k}"
        for k in sorted(outcomes, key=lambda k: (k != FINISHED, k != FAILED, k != NEVER_STARTED))
    )
    lines = [f"Sweep {report.root}: {_count(len(runs), 'run')} ({counts})."]
    lines += [f"Note: {note}." for note in report.sweep.notes]
    metric = report.headline[0]
    per_seed = report.per_seed
    replicates = _replicate_order(per_seed) if metric in per_seed else []
    if len(replicates) < 2:  # one run per configuration: its value says it all
        replicates = []
    cells = _per_seed_cells(per_seed, metric, replicates) if replicates else {}
    unit = ", in %" if _is_rate(metric) else ""
    if replicates:
        word, labels = _replicate_header(replicates)
        what = f"mean ± std, then per {word} ({' / '.join(labels)})"
    else:
        what = "one run per configuration" if metric in per_seed else "mean ± std"
    lines.append(f"{metric_label(metric)} ({metric}{unit}): {what}:")
    rows_by_key = {str(row["config"]): row for _, row in report.table.iterrows()}
    body = []
    for config in report.configs:
        row = rows_by_key.get(config.key)
        short = {NEVER_STARTED: "not run", "": "–"}
        seeds = [short.get(c, c) for c in cells.get(config.key, [])] if config.finished else []
        paper = f"paper {config.paper.cell}" if config.paper is not None else ""
        missing = f"({config.not_finished})" if config.not_finished else ""
        mean_text = _stat(row, metric) or "no run finished"
        body.append((config.name, mean_text, seeds, paper, missing))
    width_seed = [
        max([len(b[2][i]) for b in body if i < len(b[2])] + [1]) for i in range(len(replicates))
    ]
    texts = [
        (
            name,
            mean_text,
            " / ".join(s.rjust(w) for s, w in zip(seeds, width_seed, strict=False)),
            paper,
            missing,
        )
        for name, mean_text, seeds, paper, missing in body
    ]
    widths = [max([len(t[i]) for t in texts] + [0]) for i in range(4)]
    for name, mean_text, seed_text, paper, missing in texts:
        parts = [
            name.ljust(widths[0]),
            mean_text.rjust(widths[1]),
            *([seed_text.ljust(widths[2])] if widths[2] else []),
            *([paper.ljust(widths[3])] if widths[3] else []),
            missing,
        ]
        lines.append(("  " + "   ".join(parts)).rstrip())
    best = report.best
    if best is not None:
        name = next((c.name for c in report.configs if c.key == best), best)
        lines.append(f"Best by mean {report.metric}: {name}.")
    return lines
