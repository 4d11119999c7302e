"""Aggregate the runs of a sweep: mean +/- std over seeds (or folds) per configuration, the
values of each seed, speed on its own, failed runs listed.

A run is a directory holding ``.hydra/overrides.yaml`` (or ``.hydra/config.yaml``) and either
``metrics.json`` (finished) or ``failed.json`` (its error). A configuration is the run's set of
command-line overrides that differ between the runs of the sweep, without the seed keys, so the
seeds of one configuration are pooled; overrides shared by every run are reported once.

Configurations are listed in the order the sweep defines them (``hydra.sweeper.params`` and the
command-line sweep overrides of its ``multirun.yaml``; sorted when that is not known). The
paper's four arms (``experiment=baseline,modified,baseline_pe,modified_pe``) get the paper's
names and a ``paper`` column with the accuracy the paper reports (:data:`PAPER_ARMS`); other
configurations are named by their varying overrides.

Reading the runs (each configuration and seed once, never-started jobs, two sweeps in one
folder) is :mod:`dbm_lightning.analysis.sweep_runs`. :func:`write_report` writes the report
files, :func:`sweep_summary` returns a short console text (for the end of a sweep).

The numbers (configurations, tables, :class:`Report`) are
:mod:`dbm_lightning.analysis.report_data`, the words (Markdown, console summary, figure)
:mod:`dbm_lightning.analysis.report_text`; this module writes them and keeps their names
importable from here.
"""

from __future__ import annotations

from pathlib import Path

from dbm_lightning.analysis.report_data import (
    ACCURACY_METRICS,
    ANCHORS,
    ARM_KEY,
    DEFAULT_METRICS,
    DUPLICATE_COLUMNS,
    FAILED_COLUMNS,
    HELDOUT_METRIC,
    PAPER_ARMS,
    REPLICATE_NAMES,
    SPEED_METRICS,
    Configuration,
    PaperArm,
    Report,
    aggregate,
    annotate,
    best_config,
    build_report,
    configurations,
    duplicates_table,
    failed_table,
    paired_comparison,
    per_seed_table,
    replicate_keys,
    replicate_label,
    shared_overrides,
)
from dbm_lightning.analysis.report_text import (
    METRIC_LABELS,
    PAPER_NOTE,
    RATE_SECTIONS,
    RATES,
    comparison_plot,
    metric_label,
    report_markdown,
    summary_text,
    to_markdown,
)
from dbm_lightning.analysis.sweep_runs import RunRecord, Sweep, read_sweep
from dbm_lightning.atomic import write_atomic, write_text_atomic

__all__ = [
    "ACCURACY_METRICS",
    "ANCHORS",
    "ARM_KEY",
    "DEFAULT_METRICS",
    "DUPLICATE_COLUMNS",
    "FAILED_COLUMNS",
    "HELDOUT_METRIC",
    "METRIC_LABELS",
    "PAPER_ARMS",
    "PAPER_NOTE",
    "RATES",
    "RATE_SECTIONS",
    "REPLICATE_NAMES",
    "REPORT_FILES",
    "SPEED_METRICS",
    "Configuration",
    "PaperArm",
    "Report",
    "RunRecord",
    "Sweep",
    "aggregate",
    "annotate",
    "best_config",
    "build_report",
    "comparison_plot",
    "configurations",
    "duplicates_table",
    "failed_table",
    "metric_label",
    "paired_comparison",
    "per_seed_table",
    "read_sweep",
    "replicate_keys",
    "replicate_label",
    "report_markdown",
    "shared_overrides",
    "summary_text",
    "sweep_summary",
    "to_markdown",
    "write_files",
    "write_report",
]

# --------------------------------------------------------------------------- the files


REPORT_FILES = {
    "csv": "report.csv",
    "markdown": "report.md",
    "per_seed": "per_seed.csv",
    "failed": "failed.csv",
    "duplicates": "duplicates.csv",
    "plot": "comparison.png",
}
"""What :func:`write_report` writes, by kind."""


def write_files(report: Report, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write ``report``'s files (:data:`REPORT_FILES`) to ``out_dir`` (default: its root)."""
    out = Path(out_dir) if out_dir else report.root
    out.mkdir(parents=True, exist_ok=True)
    paths = {kind: out / name for kind, name in REPORT_FILES.items()}
    table = report.table
    best = report.best
    ranked = table.assign(best=table["config"] == best if not table.empty else [])
    write_atomic(paths["csv"], lambda tmp: ranked.to_csv(tmp, index=False))
    write_atomic(paths["per_seed"], lambda tmp: report.per_seed.to_csv(tmp, index=False))
    write_atomic(paths["failed"], lambda tmp: report.failed.to_csv(tmp, index=False))
    write_atomic(paths["duplicates"], lambda tmp: report.duplicates.to_csv(tmp, index=False))
    write_text_atomic(paths["markdown"], report_markdown(report))
    comparison_plot(table, report.sweep.runs, report.compared, paths["plot"])
    return paths


def write_report(
    root: str | Path,
    out_dir: str | Path | None = None,
    metric: str | None = None,
    sweep: Sweep | None = None,
) -> dict[str, Path]:
    """Read every run below ``root`` and write ``report.csv`` (a row per configuration, in the
    sweep's order), ``report.md``, ``per_seed.csv`` (a row per run), ``failed.csv``,
    ``duplicates.csv`` and ``comparison.png`` to ``out_dir`` (default: ``root``). ``metric`` (a
    validation score: ranking by a test score would be a choice made on test) marks the best
    configuration; each configuration is compared fold by fold with the :data:`ANCHORS` on
    ``heldout/macro_f1`` when the runs have held-out test scores (else on ``metric``).
    ``sweep``: what :func:`read_sweep` found below ``root`` (read again when not given).
    Raises ``FileNotFoundError`` when ``root`` is not a folder or holds no run."""
    report = build_report(root, metric, sweep)
    return write_files(report, out_dir)


# ------------------------------------------------------------------------- the console


def sweep_summary(sweep_dir: str | Path, metric: str | None = None, write: bool = True) -> str:
    """A short console text on the sweep below ``sweep_dir``: run counts, notes, each
    configuration in the sweep's order with the headline metric's mean ± std and its value per
    seed (the paper's number for its arms, the runs that did not finish), and where the full
    report is. With ``write`` (the default: a sweep ends with its report) the report files of
    :func:`write_report` are written to ``sweep_dir`` first; ``write=False`` only reads.

    Meant for the end of a sweep (a Hydra ``on_multirun_end`` callback): it never raises. A
    sweep with failed, unfinished or never-started runs is summarised like any other; one that
    cannot be read, or whose report cannot be written, gets a line saying so instead."""
    root = Path(str(sweep_dir))
    again = f"dbm-report {root}"
    try:
        report = build_report(root, metric)
    except FileNotFoundError as exc:
        return f"dbm-report: {exc}\n"
    except Exception as exc:  # the end of a sweep: say it, never raise
        return f"dbm-report: {root}: the sweep could not be read ({type(exc).__name__}: {exc})\n"
    try:
        lines = summary_text(report)
    except Exception as exc:
        lines = [f"Sweep {root}: no summary ({type(exc).__name__}: {exc})."]
    if write:
        try:
            paths = write_files(report, root)
        except Exception as exc:
            lines.append(
                f"The report could not be written to {root} ({type(exc).__name__}: {exc}); "
                f"write it with: {again}"
            )
        else:
            others = ", ".join(p.name for kind, p in paths.items() if kind != "markdown")
            lines.append(
                f"Full report (per seed, speed, failed runs): {paths['markdown']} "
                f"(with {others} beside it); again, or with --metric/--out: {again}"
            )
    else:
        lines.append(f"Full report (per seed, speed, failed runs): {again}")
    return "\n".join(lines) + "\n"
