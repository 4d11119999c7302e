"""``dbm-summarise`` from Python: a ``dbm-predict`` folder turned into the tables, statistics,
figures and pose snippets a behavioural study compares groups with (:func:`summarise`).

What it writes into the output folder (default ``<predictions>/summary``):

- ``time_budget.csv`` / ``.parquet``: one row per session x behaviour (or microstate) with the
  session's mouse, day, condition and manifest columns (:func:`~dbm_lightning.summarise.budget.
  time_budget`);
- ``transitions.csv`` / ``.parquet``: bout-to-bout transitions per session, and
  ``transition_graph.png``, the graph averaged per condition;
- ``by_day.png``, each behaviour by day, one line per condition (when the sessions have days);
- with two or more conditions of at least two mice and two days: ``within_day_tests.*`` and
  ``mixed_model.*`` (:mod:`~dbm_lightning.summarise.stats`); otherwise the summary says why
  they were not made;
- with ``snippets``: ``snippets/<behaviour>.gif`` (or ``.mp4``) pose-only animations of random
  bouts (:mod:`~dbm_lightning.summarise.snippets`); with ``snippets`` or ``trajectories``:
  ``trajectories.png``, the mean egocentric pose trajectory of every state
  (:mod:`~dbm_lightning.summarise.trajectories`);
- ``summary.md``, the Markdown summary (:mod:`~dbm_lightning.summarise.markdown`), and
  ``summarise.json``: the options, counts and files.

Everything is computed and checked (the reference condition, the snippets' states, ffmpeg, the
pose files) before the first file is written. The folder may hold an earlier summary: its
files (listed in its ``summarise.json``) are replaced, and those this run does not make again
are removed; a file that no summary wrote is never overwritten.
"""

from __future__ import annotations

__all__ = ["SUMMARY_FILE", "summarise"]

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from dbm_lightning.analysis.plots import save_figure
from dbm_lightning.atomic import write_atomic, write_json_atomic, write_text_atomic
from dbm_lightning.errors import DataFormatError
from dbm_lightning.labeling import companion_file
from dbm_lightning.prediction.guards import check_output_dir
from dbm_lightning.summarise.budget import (
    BUDGET_COLUMNS,
    PredictedSessions,
    read_predictions,
    session_metadata,
    time_budget,
    transition_table,
)
from dbm_lightning.summarise.figures import by_day_figure, transition_graph_figure
from dbm_lightning.summarise.markdown import SIGNIFICANCE, summary_markdown
from dbm_lightning.summarise.overlay import labelled_video, video_tools
from dbm_lightning.summarise.snippets import check_snippet_path, write_snippets
from dbm_lightning.summarise.stats import (
    TESTS,
    check_reference,
    mixed_model_tests,
    mouse_day_values,
    untestable_reason,
    within_day_tests,
)
from dbm_lightning.summarise.trajectories import trajectory_plot

SUMMARY_FILE = "summarise.json"
"""The record of a summary: its options and every file it wrote (what a rerun may replace)."""

TABLE_FORMATS = ("csv", "parquet")


class _Outputs:
    """The files of one summary: refuses a path an earlier summary did not write, and removes
    the earlier summary's files this one does not write again."""

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

    def figure(self, fig: Any, name: str) -> list[str]:
        save_figure(fig, self.path(name))
        return [name]

    def begin(self, planned: Sequence[str], options: dict[str, Any]) -> None:
        """Check ``planned`` (:meth:`check`), then record them with the earlier summary's files
        as this folder's, marked incomplete: a run that fails half-way leaves a record, so the
        next run may replace what it wrote."""
        self.check(planned)
        files = sorted(self.ours | set(planned) | {SUMMARY_FILE})
        record = {"status": "incomplete", **options, "files": files}
        write_json_atomic(self.folder / SUMMARY_FILE, record)

    def finish(self, record: dict[str, Any]) -> None:
        """Remove the earlier summary's files not made again, then write ``summarise.json``."""
        stale = sorted(self.ours - set(self.written) - {SUMMARY_FILE})
        root = self.folder.resolve()
        for name in stale:
            path = (self.folder / name).resolve()
            if path.is_relative_to(root) and path != root:  # never outside the folder
                path.unlink(missing_ok=True)
        self.written.append(SUMMARY_FILE)
        record["status"] = "complete"
        record["files"] = self.written
        record["removed"] = stale
        write_json_atomic(self.folder / SUMMARY_FILE, record)


def _file_safe(name: str) -> str:
    """``name`` with characters other than letters, digits and ``.-_`` as ``_``."""
    return re.sub(r"[^\w.-]+", "_", name)


def _refuse_twins(files: Sequence[str], what: str) -> None:
    """Refuse two outputs that would be written to the same file."""
    twins = [f for f in dict.fromkeys(files) if files.count(f) > 1]
    if twins:
        raise ValueError(f"two {what} would both be written to {twins[0]}")


def snippet_name(state: str, fmt: str) -> str:
    """``snippets/<state>.<fmt>`` (:func:`_file_safe`)."""
    return f"snippets/{_file_safe(state)}.{fmt}"


def _chosen_snippets(
    snippets: Sequence[str], budget: pd.DataFrame, states: list[str], unit: str, fmt: str
) -> list[str]:
    """The states to animate, checked: known, with a bout, distinct file names, a writer."""
    with_bouts = budget.groupby("behaviour", sort=False)["bouts"].sum()
    chosen = list(snippets)
    if chosen == ["all"]:
        chosen = [s for s in states if with_bouts.get(s, 0) > 0]
    for state in chosen:
        if state not in states:
            raise ValueError(f"unknown {unit} {state!r} for snippets; known: {states}")
        if with_bouts.get(state, 0) == 0:
            raise ValueError(f"no bout of {state!r} in the predictions: nothing to animate")
    files = [snippet_name(s, fmt) for s in chosen]
    _refuse_twins(files, "snippets")
    if chosen:
        check_snippet_path(files[0])  # e.g. mp4 without ffmpeg, named by its first file
    return chosen


def video_name(session: str) -> str:
    """``videos/<session>.labelled.mp4`` (:func:`_file_safe`)."""
    return f"videos/{_file_safe(session)}.labelled.mp4"


def _videos(
    pred: PredictedSessions, meta: pd.DataFrame, pattern: str | None, sessions: Sequence[str]
) -> dict[str, Path]:
    """The recording of every session to overlay, checked: named, found, readable tools."""
    wanted = list(pred.names) if list(sessions) == ["all"] else list(sessions)
    if not wanted:
        return {}
    if pattern is None:
        raise ValueError("labelled videos need the recordings: give the video pattern too")
    unknown = [s for s in wanted if s not in pred.names]
    if unknown:
        raise ValueError(f"unknown session {unknown[0]!r} to overlay; known: {pred.names[:5]}..")
    video_tools()  # the video extra, before anything is written
    _refuse_twins([video_name(n) for n in wanted], "labelled videos")
    rows = meta.set_index("session")
    found = {}
    for name in wanted:
        i = pred.names.index(name)
        row = rows.loc[name]
        day = None if pd.isna(row["day"]) else int(row["day"])
        path = companion_file(
            pattern, pred.sources[i], name, row["mouse"], day, row["condition"], what="video"
        )
        if not path.is_file():
            raise DataFormatError(
                path, f"video of session {name!r} not found (pattern {pattern!r})"
            )
        found[name] = path
    return found


def _load_poses(
    pred: PredictedSessions, individuals: Sequence[str] | None, which: Sequence[str]
) -> dict[str, Any]:
    """The pose of the sessions ``which``, each checked to have the predictions' frames."""
    from dbm_lightning.io.readers import load_pose

    poses = {}
    for name in which:
        i = pred.names.index(name)
        source = pred.sources[i]
        if not Path(source).exists():
            raise DataFormatError(source, f"pose file of session {name!r} not found")
        pose = load_pose(source, individuals=individuals, fps=pred.fps)
        if pose.n_frames != pred.codes[i].size:
            raise DataFormatError(
                source,
                f"has {pose.n_frames} frames, the prediction of session {name!r} "
                f"{pred.codes[i].size}: not the file it was predicted from",
            )
        poses[name] = pose
    return poses


def _statistics(
    budget: pd.DataFrame, measure: str, test: str, reference: str | None
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str | None]:
    """``(within-day tests, mixed model, None)``, or ``(None, None, why not)``."""
    values = mouse_day_values(budget, measure)
    skipped = untestable_reason(values)
    if skipped is None and values["day"].nunique() < 2:
        skipped = "one day only: no trend over days to test"
    if skipped is not None:
        return None, None, skipped
    return (
        within_day_tests(budget, measure, test),
        mixed_model_tests(budget, measure, reference),
        None,
    )


def _has_days(budget: pd.DataFrame) -> bool:
    return bool(budget["day"].notna().any())


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
    trajectories: bool = False,
    video: str | None = None,
    overlay: Sequence[str] = (),
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
    trajectories
        Draw ``trajectories.png`` (always drawn with ``snippets``); needs the pose files.
    video, overlay
        Labelled videos (:func:`~dbm_lightning.summarise.overlay.labelled_video`) of the
        sessions named in ``overlay`` (``["all"]``: every one), written to
        ``videos/<session>.labelled.mp4``; ``video`` finds each recording beside its pose file,
        a pattern as for label files (``{stem}``, ``{base}``, ``{name}``, wildcards: e.g.
        ``"{base}.mp4"`` or ``"../videos/{base}*.avi"``). Needs the ``video`` extra.
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
        An unknown unit, measure, test, reference condition, snippet format or behaviour, or
        a behaviour to animate that has no bout.
    RuntimeError
        MP4 snippets without ffmpeg, labelled videos without ``imageio-ffmpeg``.
    """
    started = time.perf_counter()
    if test not in TESTS:
        raise ValueError(f"test must be one of {list(TESTS)}, got {test!r}")
    if snippet_format not in ("gif", "mp4"):
        raise ValueError(f"snippet format must be gif or mp4, got {snippet_format!r}")
    pred_dir = Path(pred_dir)
    out = check_output_dir(out_dir if out_dir is not None else pred_dir / "summary")
    # everything computed and checked first: a mistake writes nothing
    pred = read_predictions(pred_dir, unit=unit, fps=fps)
    meta = session_metadata(pred, manifest=manifest, pattern=pattern)
    budget = time_budget(pred.codes, pred.states, meta, pred.fps)
    measures = [c for c in BUDGET_COLUMNS if c != "behaviour"]
    if measure not in measures:
        raise ValueError(f"measure must be one of {measures}, got {measure!r}")
    chosen = _chosen_snippets(snippets, budget, pred.states, unit, snippet_format)
    within, mixed, skipped = _statistics(budget, measure, test, reference)
    transitions = transition_table(pred.codes, pred.states, meta)
    if reference is not None:  # named even when the statistics are skipped
        check_reference(reference, sorted(meta["condition"].dropna().unique(), key=str))
    videos = _videos(pred, meta, video, overlay)
    drawn = bool(chosen) or trajectories  # every session's pose
    poses = _load_poses(pred, individuals, pred.names if drawn else list(videos))
    planned = [f"{t}.{f}" for t in ("time_budget", "transitions") for f in TABLE_FORMATS]
    if mixed is not None:
        planned += [f"{t}.{f}" for t in ("within_day_tests", "mixed_model") for f in TABLE_FORMATS]
    planned += ["transition_graph.png", "summary.md", SUMMARY_FILE]
    planned += ["by_day.png"] * _has_days(budget) + ["trajectories.png"] * drawn
    planned += [snippet_name(s, snippet_format) for s in chosen]
    planned += [video_name(n) for n in videos]

    out.mkdir(parents=True, exist_ok=True)
    outputs = _Outputs(out)
    outputs.begin(planned, {"predictions": str(pred_dir), "unit": unit})
    files: dict[str, list[str]] = {
        "time_budget": outputs.table(budget, "time_budget"),
        "transitions": outputs.table(transitions, "transitions"),
        "transition_graph": outputs.figure(
            transition_graph_figure(transitions, budget, pred.states), "transition_graph.png"
        ),
    }
    if mixed is not None and within is not None:
        files["within_day_tests"] = outputs.table(within, "within_day_tests")
        files["mixed_model"] = outputs.table(mixed, "mixed_model")
    if _has_days(budget):
        fig = by_day_figure(budget, measure, pred.states, mixed)
        files["by_day"] = outputs.figure(fig, "by_day.png")
    every = [poses[n] for n in pred.names] if drawn else []
    snippet_rows = []
    for state in chosen:
        name = snippet_name(state, snippet_format)
        bouts = write_snippets(
            every, pred.codes, pred.states, state, outputs.path(name),
            n_bouts=snippet_bouts, fps=pred.fps, seed=seed,
        )  # fmt: skip
        snippet_rows.append({"behaviour": state, "file": name, "bouts": len(bouts)})
    if snippet_rows:
        files["snippets"] = [r["file"] for r in snippet_rows]
    if drawn:
        trajectory_plot(every, pred.codes, pred.states, outputs.path("trajectories.png"), seed=seed)
        files["trajectories"] = ["trajectories.png"]
    video_rows = []
    for name, path in videos.items():
        i = pred.names.index(name)
        info = labelled_video(
            path, poses[name], pred.codes[i], pred.states, outputs.path(video_name(name))
        )
        video_rows.append({"session": name, "video": str(path), **info})
    if video_rows:
        files["videos"] = [video_name(n) for n in videos]
    record: dict[str, Any] = {
        "predictions": str(pred_dir),
        "prediction": pred.details,
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
        "videos": video_rows,
    }
    if mixed is not None:
        record["interaction_significant"] = sorted(
            mixed.loc[mixed["p_bh"] < SIGNIFICANCE, "behaviour"].tolist()
        )
    files["summary"] = ["summary.md", SUMMARY_FILE]
    text = summary_markdown(record, budget, within, mixed, files)
    write_text_atomic(outputs.path("summary.md"), text)
    record["seconds"] = round(time.perf_counter() - started, 2)
    outputs.finish(record)
    record["out_dir"] = str(out)
    return record
