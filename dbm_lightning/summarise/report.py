"""``dbm-summarise`` from Python: a ``dbm-predict`` folder turned into the tables, statistics,
figures and pose snippets a behavioural study compares groups with (:func:`summarise`).

What it writes into the output folder (default ``<predictions>/summary``):

- ``time_budget.csv`` / ``.parquet``: one row per session x behaviour (or microstate) with the
  session's mouse, day, condition and manifest columns (:func:`~dbm_lightning.analysis.
  time_budget.time_budget`);
- ``transitions.csv`` / ``.parquet``: bout-to-bout transitions per session, and
  ``transition_graph.png``, the graph averaged per condition;
- with two or more conditions of at least two mice: ``within_day_tests.*`` and
  ``mixed_model.*`` (:mod:`~dbm_lightning.summarise.stats`), and ``by_day.png`` (the
  share of each behaviour by day, one line per condition); with one condition, or no days, the
  summary says why they were not made;
- with ``snippets``: ``snippets/<behaviour>.gif`` (or ``.mp4``) pose-only animations of random
  bouts, and ``trajectories.png``, the mean egocentric pose trajectory of every state
  (:mod:`~dbm_lightning.summarise.snippets`, :mod:`~dbm_lightning.summarise.trajectories`);
- ``summary.md``, the Markdown summary, and ``summarise.json``: the options and the files.

The folder may hold an earlier summary (its files are listed in ``summarise.json``, and are
replaced); a file of the same name that no summary wrote is never overwritten.
"""

from __future__ import annotations

__all__ = ["SUMMARY_FILE", "summarise"]

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.analysis.plots import save_figure
from dbm_lightning.atomic import write_atomic, write_json_atomic, write_text_atomic
from dbm_lightning.errors import DataFormatError
from dbm_lightning.prediction.guards import check_output_dir
from dbm_lightning.summarise.budget import (
    PredictedSessions,
    read_predictions,
    session_metadata,
    time_budget,
    transition_table,
)
from dbm_lightning.summarise.figures import NO_CONDITION, by_day_figure, transition_graph_figure
from dbm_lightning.summarise.snippets import write_snippets
from dbm_lightning.summarise.stats import (
    TESTS,
    mixed_model_tests,
    mouse_day_values,
    untestable_reason,
    within_day_tests,
)
from dbm_lightning.summarise.trajectories import trajectory_plot

SUMMARY_FILE = "summarise.json"
"""The record of a summary: its options and every file it wrote (what a rerun may replace)."""

TABLE_FORMATS = ("csv", "parquet")
SIGNIFICANCE = 0.05
"""The level at which ``summary.md`` calls an adjusted p value significant."""


class _Outputs:
    """The files of one summary: refuses a path an earlier summary did not write."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[str] = []
        record = folder / SUMMARY_FILE
        self.ours: set[str] = set()
        if record.is_file():
            try:
                self.ours = set(json.loads(record.read_text())["files"])
            except (ValueError, KeyError, TypeError):
                raise DataFormatError(record, "is not a dbm-summarise record") from None

    def check(self, names: Sequence[str]) -> None:
        """Refuse, before anything is written, names that exist and are not ours."""
        foreign = [n for n in names if (self.folder / n).exists() and n not in self.ours]
        if foreign:
            raise DataFormatError(
                self.folder / foreign[0],
                "exists and was not written by dbm-summarise: give another --out "
                "(nothing was written)",
            )

    def path(self, name: str) -> Path:
        self.check([name])
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(name)
        return path

    def table(self, df: pd.DataFrame, stem: str) -> list[str]:
        """``stem.csv`` and ``stem.parquet``."""
        names = []
        for fmt in TABLE_FORMATS:
            path = self.path(f"{stem}.{fmt}")
            if fmt == "csv":
                write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))
            else:
                frame = df.copy()
                for column in frame.columns:  # e.g. a manifest column of numbers and text
                    if pd.api.types.infer_dtype(frame[column], skipna=True).startswith("mixed"):
                        frame[column] = frame[column].map(lambda v: None if v is None else str(v))
                write_atomic(path, lambda tmp, frame=frame: frame.to_parquet(tmp, index=False))
            names.append(path.name)
        return names

    def figure(self, fig: Any, name: str) -> str:
        save_figure(fig, self.path(name))
        return name


def snippet_name(state: str, fmt: str) -> str:
    """``snippets/<state>.<fmt>``, characters other than letters, digits, ``.-_`` as ``_``."""
    safe = re.sub(r"[^\w.-]+", "_", state)
    return f"snippets/{safe}.{fmt}"


def _planned_names(stats: bool, snippets: Sequence[str], fmt: str) -> list[str]:
    tables = ["time_budget", "transitions"] + (["within_day_tests", "mixed_model"] if stats else [])
    names = [f"{t}.{f}" for t in tables for f in TABLE_FORMATS]
    names += ["transition_graph.png", "summary.md", SUMMARY_FILE]
    names += ["by_day.png"] if stats else []
    names += [snippet_name(s, fmt) for s in snippets] + (["trajectories.png"] if snippets else [])
    return names


def _load_poses(pred: PredictedSessions, individuals: Sequence[str] | None) -> list:
    from dbm_lightning.io.readers import load_pose

    poses = []
    for name, source in zip(pred.names, pred.sources, strict=True):
        if not Path(source).exists():
            raise DataFormatError(
                source, f"pose file of session {name!r} not found: snippets need the pose"
            )
        poses.append(load_pose(source, individuals=individuals, fps=pred.fps))
    return poses


def summarise(
    pred_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    unit: str = "label",
    manifest: str | Path | None = None,
    pattern: str | None = None,
    fps: float | None = None,
    measure: str = "percent_time",
    test: str = "mannwhitney",
    reference: str | None = None,
    snippets: Sequence[str] = (),
    snippet_format: str = "gif",
    snippet_bouts: int = 9,
    individuals: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Summarise a ``dbm-predict`` folder (see the module docstring for what is written).

    Parameters
    ----------
    pred_dir
        ``dbm-predict --out`` folder.
    out_dir
        Where to write (default ``<pred_dir>/summary``).
    unit
        ``"label"`` (predicted behaviours) or ``"microstate"``.
    manifest, pattern
        Where mouse, day and condition come from
        (:func:`~dbm_lightning.summarise.budget.session_metadata`).
    measure
        The :func:`~dbm_lightning.summarise.budget.time_budget` column the statistics and
        the by-day figure use (``percent_time``, ``bouts``, ``mean_bout_s``, ``latency_s``..).
    test, reference
        :func:`~dbm_lightning.summarise.stats.within_day_tests`' test and
        :func:`~dbm_lightning.summarise.stats.mixed_model_tests`' reference condition.
    snippets
        Behaviours (or microstates, e.g. ``ms07``) to animate; ``["all"]``: every one that has
        a bout. Needs the pose files the predictions were made from.
    snippet_format
        ``"gif"`` (no extra software) or ``"mp4"`` (needs ffmpeg).
    individuals
        Multi-animal pose files: the individuals to draw (default all).

    Returns
    -------
    The record written to ``summarise.json``: options, counts, what the statistics found or
    why they were skipped, and the files.

    Raises
    ------
    DataFormatError
        Bad input, naming the file: no ``dbm-predict`` folder, a manifest without a session, an
        output file that an earlier summary did not write, a missing pose file for snippets.
    ValueError
        An unknown unit, measure, test, snippet format or behaviour.
    """
    started = time.perf_counter()
    if test not in TESTS:
        raise ValueError(f"test must be one of {list(TESTS)}, got {test!r}")
    if snippet_format not in ("gif", "mp4"):
        raise ValueError(f"snippet format must be gif or mp4, got {snippet_format!r}")
    pred_dir = Path(pred_dir)
    out = check_output_dir(out_dir if out_dir is not None else pred_dir / "summary")
    pred = read_predictions(pred_dir, unit=unit, fps=fps)
    meta = session_metadata(pred, manifest=manifest, pattern=pattern)
    budget = time_budget(pred.codes, pred.states, meta, pred.fps)
    if measure not in budget.columns or measure in meta.columns or measure == "behaviour":
        numeric = [c for c in budget.columns if c not in meta.columns and c != "behaviour"]
        raise ValueError(f"measure must be one of {numeric}, got {measure!r}")
    chosen = list(snippets)
    if chosen == ["all"]:
        chosen = list(budget.loc[budget["bouts"] > 0, "behaviour"].unique())
    unknown = [s for s in chosen if s not in pred.states]
    if unknown:
        raise ValueError(f"unknown {unit} {unknown[0]!r} for snippets; known: {pred.states}")
    values = mouse_day_values(budget, measure)
    skipped = untestable_reason(values)
    if skipped is None and values["day"].nunique() < 2:
        skipped = "one day only: no trend over days to test"
    stats_made = skipped is None

    out.mkdir(parents=True, exist_ok=True)
    outputs = _Outputs(out)
    outputs.check(_planned_names(stats_made, chosen, snippet_format))
    files: dict[str, list[str]] = {}
    files["time_budget"] = outputs.table(budget, "time_budget")
    transitions = transition_table(pred.codes, pred.states, meta)
    files["transitions"] = outputs.table(transitions, "transitions")
    files["transition_graph"] = [
        outputs.figure(
            transition_graph_figure(transitions, budget, pred.states), "transition_graph.png"
        )
    ]
    within = mixed = None
    if stats_made:
        within = within_day_tests(budget, measure, test)
        mixed = mixed_model_tests(budget, measure, reference)
        files["within_day_tests"] = outputs.table(within, "within_day_tests")
        files["mixed_model"] = outputs.table(mixed, "mixed_model")
        files["by_day"] = [
            outputs.figure(by_day_figure(budget, measure, pred.states, mixed), "by_day.png")
        ]
    snippet_rows = []
    if chosen:
        poses = _load_poses(pred, individuals)
        for state in chosen:
            name = snippet_name(state, snippet_format)
            bouts = write_snippets(
                poses,
                pred.codes,
                pred.states,
                state,
                outputs.path(name),
                n_bouts=snippet_bouts,
                fps=pred.fps,
                seed=seed,
            )
            snippet_rows.append({"behaviour": state, "file": name, "bouts": len(bouts)})
        files["snippets"] = [r["file"] for r in snippet_rows]
        trajectory_plot(poses, pred.codes, pred.states, outputs.path("trajectories.png"), seed=seed)
        files["trajectories"] = ["trajectories.png"]
    record: dict[str, Any] = {
        "predictions": str(pred_dir),
        "unit": unit,
        "states": pred.states,
        "fps": pred.fps,
        "sessions": len(pred.names),
        "frames": pred.n_frames,
        "invalid_frames": pred.n_invalid,
        "metadata": meta.attrs.get("source", ""),
        "mice": int(meta["mouse"].nunique()),
        "days": sorted(int(d) for d in meta["day"].dropna().unique()),
        "conditions": {
            str(c): int(n) for c, n in meta.groupby("condition")["mouse"].nunique().items()
        },
        "measure": measure,
        "test": test,
        "statistics_skipped": skipped,
        "snippets": snippet_rows,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if mixed is not None:
        record["interaction_significant"] = sorted(
            mixed.loc[mixed["p_bh"] < SIGNIFICANCE, "behaviour"].tolist()
        )
    text = summary_markdown(record, budget, within, mixed, files)
    files["summary"] = [outputs.path("summary.md").name]
    write_text_atomic(out / "summary.md", text)
    outputs.written.append(SUMMARY_FILE)
    record["files"] = outputs.written
    write_json_atomic(out / SUMMARY_FILE, record)
    record["out_dir"] = str(out)
    return record


# --------------------------------------------------------------------------------------------
# the Markdown summary
# --------------------------------------------------------------------------------------------


def _markdown_table(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    """A pipe table (no tabulate dependency); floats with ``floatfmt``, NaN as ``-``."""

    def cell(v: Any) -> str:
        if isinstance(v, float | np.floating):
            return "-" if not np.isfinite(v) else format(float(v), floatfmt)
        return str(v)

    header = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _budget_by_condition(budget: pd.DataFrame, measure: str) -> pd.DataFrame:
    data = budget.assign(condition=budget["condition"].fillna(NO_CONDITION))
    per_mouse = data.groupby(["behaviour", "condition", "mouse"], sort=False)[measure].mean()
    stats_ = per_mouse.groupby(["behaviour", "condition"], sort=False).agg(["mean", "std"])
    text = stats_.apply(
        lambda r: (
            f"{r['mean']:.2f} ± {r['std']:.2f}" if np.isfinite(r["std"]) else f"{r['mean']:.2f}"
        ),
        axis=1,
    )
    table = text.unstack("condition")
    table = table[sorted(table.columns, key=str)]
    order = list(dict.fromkeys(budget["behaviour"]))
    return table.reindex(order).reset_index()


def _smallest_u_p(n_a: int, n_b: int) -> float:
    """The smallest two-sided p an exact Mann-Whitney U test can give for these group sizes."""
    from math import comb

    return min(1.0, 2.0 / comb(n_a + n_b, n_a))


def summary_markdown(
    record: dict[str, Any],
    budget: pd.DataFrame,
    within: pd.DataFrame | None,
    mixed: pd.DataFrame | None,
    files: dict[str, list[str]],
) -> str:
    """The ``summary.md`` of :func:`summarise`."""
    measure = record["measure"]
    invalid = record["invalid_frames"] / max(record["frames"], 1)
    lines = [
        "# Behaviour summary",
        "",
        f"- predictions: `{record['predictions']}` ({record['sessions']} sessions, "
        f"{record['frames']:,} frames at {record['fps']:g} fps; {record['invalid_frames']:,} "
        f"frames ({invalid:.1%}) with an invalid pose left out of every count)",
        f"- unit: {record['unit']} ({len(record['states'])}: {', '.join(record['states'])})",
        f"- mouse, day and condition from: {record['metadata']}",
        f"- mice: {record['mice']}; days: {', '.join(map(str, record['days'])) or 'none'}; "
        "conditions: "
        + (", ".join(f"{c} ({n} mice)" for c, n in record["conditions"].items()) or "none"),
        "",
        f"## {measure.replace('_', ' ').capitalize()} per condition (mean ± SD over mice)",
        "",
        "Each mouse's value is the mean of its sessions.",
        "",
        _markdown_table(_budget_by_condition(budget, measure)),
        "",
    ]
    if mixed is None:
        lines += ["## Group statistics", "", f"Not computed: {record['statistics_skipped']}.", ""]
    else:
        others = [c for c in record["conditions"] if c != mixed["reference"].iloc[0]]
        cols = ["behaviour", "slope_reference"]
        for c in others:
            cols += [
                f"slope_difference_{c}",
                f"ci_low_{c}",
                f"ci_high_{c}",
                f"change_over_days_{c}",
            ]
        cols += ["lr_statistic", "p", "p_bh"]
        found = record["interaction_significant"]
        lines += [
            "## Condition x day (mixed model)",
            "",
            f"`{measure} ~ condition * day`, a random intercept per mouse (statsmodels MixedLM, "
            "maximum likelihood), day as a number. p: likelihood-ratio test of the interaction "
            f"against `condition + day`; p_bh: Benjamini-Hochberg over the "
            f"{len(mixed)} behaviours. Slopes per day, reference condition "
            f"`{mixed['reference'].iloc[0]}`; the difference's 95 % CI.",
            "",
            _markdown_table(mixed[cols]),
            "",
            f"Significant interaction (p_bh < {SIGNIFICANCE:g}): "
            + (", ".join(found) if found else "none")
            + ".",
            "",
        ]
        notes = mixed.loc[mixed["note"] != "", ["behaviour", "note"]]
        if len(notes):
            lines += [
                "Fit notes: " + "; ".join(f"{b}: {n}" for b, n in notes.itertuples(index=False)),
                "",
            ]
        assert within is not None
        hits = within[within["p_bh"] < SIGNIFICANCE]
        lines += [
            "## Conditions within each day",
            "",
            f"{within['test'].iloc[0]} test per behaviour, day and pair of conditions on the "
            f"mice's values; effect size {within['effect'].iloc[0]} (> 0: condition_a higher); "
            f"Benjamini-Hochberg over all {len(within)} tests "
            "(`within_day_tests.csv` has every row).",
            "",
        ]
        if record["test"] == "mannwhitney":
            tested = within.dropna(subset=["p"])
            if len(tested):
                smallest = min(
                    _smallest_u_p(int(a), int(b))
                    for a, b in zip(tested["n_a"], tested["n_b"], strict=True)
                )
                lines += [
                    f"With these group sizes the smallest p the exact U test can give is "
                    f"{smallest:.3g}, before correction.",
                    "",
                ]
        if len(hits):
            show = hits[
                [
                    "behaviour",
                    "day",
                    "condition_a",
                    "condition_b",
                    "mean_a",
                    "mean_b",
                    "p",
                    "p_bh",
                    "effect_size",
                ]
            ]
            lines += [f"{len(hits)} of {len(within)} significant:", "", _markdown_table(show), ""]
        else:
            lines += [f"None of the {len(within)} tests is significant after correction.", ""]
    if record["snippets"]:
        lines += ["## Pose snippets", ""]
        lines += [
            f"- {r['behaviour']}: `{r['file']}` ({r['bouts']} bouts)" for r in record["snippets"]
        ]
        lines += ["- mean egocentric trajectories: `trajectories.png`", ""]
    lines += ["## Files", ""]
    lines += [f"- {key}: " + ", ".join(f"`{n}`" for n in names) for key, names in files.items()]
    lines += ["- summary: `summary.md`, `summarise.json`", ""]
    return "\n".join(lines)
