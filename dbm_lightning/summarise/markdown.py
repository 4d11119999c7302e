"""The ``summary.md`` of a behaviour summary: what was read, the time budget per condition,
the mixed model, the within-day tests and the files (:func:`summary_markdown`)."""

from __future__ import annotations

__all__ = ["SIGNIFICANCE", "summary_markdown"]

from math import comb
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.analysis.report_text import markdown_table
from dbm_lightning.summarise.figures import NO_CONDITION

SIGNIFICANCE = 0.05
"""The level at which ``summary.md`` calls an adjusted p value significant."""


def _cell(value: Any, fmt: str = ".3g") -> str:
    if isinstance(value, float | np.floating):
        return "-" if not np.isfinite(value) else format(float(value), fmt)
    return str(value)


def _table(df: pd.DataFrame, fmt: str = ".3g") -> list[str]:
    """A pipe table; ``|`` in a cell (e.g. a condition named ``a|b``) escaped."""

    def text(v: Any) -> str:
        return _cell(v, fmt).replace("|", "\\|")

    rows = ([text(v) for v in row] for row in df.itertuples(index=False))
    return markdown_table([str(c).replace("|", "\\|") for c in df.columns], rows)


def _budget_by_condition(budget: pd.DataFrame, measure: str) -> pd.DataFrame:
    """``measure`` per behaviour and condition: mean ± SD over mice (each mouse the mean of its
    sessions)."""
    data = budget.assign(condition=budget["condition"].fillna(NO_CONDITION))
    per_mouse = data.groupby(["behaviour", "condition", "mouse"], sort=False)[measure].mean()
    summary = per_mouse.groupby(["behaviour", "condition"], sort=False).agg(["mean", "std"])
    text = summary.apply(
        lambda r: (
            f"{r['mean']:.2f} ± {r['std']:.2f}" if np.isfinite(r["std"]) else _cell(r["mean"])
        ),
        axis=1,
    )
    table = text.unstack("condition")
    table = table[sorted(table.columns, key=str)]
    return table.reindex(list(dict.fromkeys(budget["behaviour"]))).reset_index()


def _smallest_u_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact Mann-Whitney U test can give for these group sizes."""
    return min(1.0, 2.0 / comb(n_a + n_b, n_a))


def _inputs(record: dict[str, Any]) -> list[str]:
    invalid = record["invalid_frames"] / max(record["frames"], 1)
    prediction = record.get("prediction") or {}
    lines = [
        "# Behaviour summary",
        "",
        f"- predictions: `{record['predictions']}` ({record['sessions']} sessions, "
        f"{record['frames']:,} frames at {record['fps']:g} fps; {record['invalid_frames']:,} "
        f"frames ({invalid:.1%}) with an invalid pose left out of every count)",
        f"- model: `{prediction.get('checkpoint')}`; post-processing: smoothing "
        f"{prediction.get('smoothing')}, minimum bout {prediction.get('min_bout')} frames",
        f"- unit: {record['unit']} ({len(record['states'])}: {', '.join(record['states'])})",
        f"- mouse, day and condition from: {record['metadata']}",
        f"- mice: {record['mice']}; days: {', '.join(map(str, record['days'])) or 'none'}; "
        "conditions: "
        + (", ".join(f"{c} ({n} mice)" for c, n in record["conditions"].items()) or "none"),
    ]
    skipped = prediction.get("skipped") or []
    if skipped:
        names = ", ".join(f"`{s['path']}`" for s in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        lines.append(f"- **dbm-predict skipped {len(skipped)} file(s)**, not in this summary: "
                     f"{names}{more}")  # fmt: skip
    lines += [
        "- bouts are runs of one predicted state over valid frames: a bout broken by invalid "
        "frames counts twice, so counts can differ from dbm-predict's `*.bouts.*` tables "
        "(which run over every frame); `cut_bouts` counts the bouts that touch a session's "
        "ends or an invalid frame",
        "",
    ]
    return lines


def _mixed_section(record: dict[str, Any], mixed: pd.DataFrame) -> list[str]:
    reference = mixed["reference"].iloc[0]
    prefix = "slope_difference_"
    others = [c.removeprefix(prefix) for c in mixed.columns if c.startswith(prefix)]
    cols = ["behaviour", "slope_reference"]
    for c in others:
        cols += [f"slope_difference_{c}", f"ci_low_{c}", f"ci_high_{c}", f"change_over_days_{c}"]
    cols += ["lr_statistic", "df", "p", "p_bh", "condition_p_bh"]
    found = record["interaction_significant"]
    mice = ", ".join(f"{n} {c}" for c, n in record["conditions"].items())
    lines = [
        "## Condition x day (mixed model)",
        "",
        f"`{record['measure']} ~ condition * day`, a random intercept per mouse (statsmodels "
        "MixedLM, maximum likelihood), day as a number. p: likelihood-ratio test of the "
        "interaction against `condition + day` (do the conditions' trends over days differ?); "
        f"p_bh: Benjamini-Hochberg over the {len(mixed)} behaviours; condition_p_bh: the "
        "condition's main effect (`condition + day` against `day`), corrected the same way. "
        f"Slopes per day, reference condition `{reference}`; the difference's 95 % Wald CI. "
        f"With few mice ({mice}) these tests and intervals are approximate and tend to be too "
        "optimistic: read p values near the threshold with care.",
        "",
        *_table(mixed[cols]),
        "",
        f"Significant interaction (p_bh < {SIGNIFICANCE:g}): "
        + (", ".join(found) if found else "none")
        + ".",
        "",
    ]
    notes = mixed.loc[mixed["note"] != "", ["behaviour", "note"]]
    if len(notes):
        said = "; ".join(f"{b}: {n}" for b, n in notes.itertuples(index=False))
        lines += [f"Fit notes: {said}.", ""]
    return lines


def _within_section(record: dict[str, Any], within: pd.DataFrame) -> list[str]:
    lines = [
        "## Conditions within each day",
        "",
        f"{within['test'].iloc[0]} test per behaviour, day and pair of conditions on the "
        f"mice's values; effect size {within['effect'].iloc[0]} (> 0: condition_a higher); "
        f"Benjamini-Hochberg over the {int(within['p'].notna().sum())} tests made "
        "(`within_day_tests.csv` has every row, effect sizes and group means). p_bh by day:",
        "",
    ]
    grid = within.assign(pair=within["condition_a"] + " vs " + within["condition_b"])
    index = ["behaviour"] if grid["pair"].nunique() == 1 else ["behaviour", "pair"]
    pivot = grid.pivot_table(index=index, columns="day", values="p_bh", aggfunc="first")
    pivot = pivot.reindex(columns=sorted(grid["day"].unique()))
    pivot.columns = [f"day {d}" for d in pivot.columns]
    lines += [*_table(pivot.reset_index(), ".2g"), ""]
    hits = within[within["p_bh"] < SIGNIFICANCE]
    if record["test"] == "mannwhitney":
        tested = within.dropna(subset=["p"])
        if len(tested):
            sizes = zip(tested["n_a"], tested["n_b"], strict=True)
            smallest = min(_smallest_u_p(int(a), int(b)) for a, b in sizes)
            lines += [
                f"With these group sizes the smallest p the exact U test can give is "
                f"{smallest:.3g}, before correction.",
                "",
            ]
    lines.append(
        f"{len(hits)} of the tests significant after correction."
        if len(hits)
        else "None of the tests is significant after correction."
    )
    return [*lines, ""]


def summary_markdown(
    record: dict[str, Any],
    budget: pd.DataFrame,
    within: pd.DataFrame | None,
    mixed: pd.DataFrame | None,
    files: dict[str, list[str]],
) -> str:
    """The ``summary.md`` of :func:`~dbm_lightning.summarise.report.summarise`."""
    measure = record["measure"]
    lines = [
        *_inputs(record),
        f"## {measure.replace('_', ' ').capitalize()} per condition (mean ± SD over mice)",
        "",
        "Each mouse's value is the mean of its sessions.",
        "",
        *_table(_budget_by_condition(budget, measure)),
        "",
    ]
    if mixed is None or within is None:
        lines += ["## Group statistics", "", f"Not computed: {record['statistics_skipped']}.", ""]
    else:
        lines += _mixed_section(record, mixed) + _within_section(record, within)
    if record["snippets"]:
        lines += ["## Pose snippets", ""]
        lines += [
            f"- {r['behaviour']}: `{r['file']}` ({r['bouts']} bouts)" for r in record["snippets"]
        ]
        lines.append("")
    if record.get("videos"):
        lines += ["## Labelled videos", ""]
        for v in record["videos"]:
            ended = "; the video ended before the pose" if v["video_ended"] else ""
            lines.append(f"- {v['session']}: `{v['path']}` ({v['frames']} frames of "
                         f"`{v['video']}`{ended})")  # fmt: skip
        lines.append("")
    lines += ["## Files", ""]
    lines += [f"- {key}: " + ", ".join(f"`{n}`" for n in names) for key, names in files.items()]
    return "\n".join([*lines, ""])
