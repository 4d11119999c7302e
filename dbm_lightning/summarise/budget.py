"""What ``dbm-predict`` wrote, read back as one code per frame, and the per-session tables of
behaviour built from it: time budget, bouts, latency and bout-to-bout transitions.

- :func:`read_predictions` reads a ``dbm-predict`` output folder (its ``summary.json`` and the
  frames tables it names) into :class:`PredictedSessions`: per session one ``(T,)`` array of
  codes into the behaviour names (or microstates), -1 on frames whose pose was invalid.
- :func:`session_metadata` gives each session its mouse, day, condition and any other manifest
  column: from a manifest CSV, the ``manifest.csv`` beside the pose files, or the file names.
- :func:`time_budget` is the tidy table, one row per session x behaviour: % of time, bouts,
  mean and median bout duration, latency to the first bout.
- :func:`transition_table` is the tidy table of bout-to-bout transitions per session.

Invalid frames are left out of every count and break bouts: a bout interrupted by invalid
frames is two bouts, and no transition is counted across the gap.
"""

from __future__ import annotations

__all__ = [
    "PredictedSessions",
    "read_predictions",
    "session_metadata",
    "UNITS",
    "time_budget",
    "transition_matrices",
    "transition_table",
]

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.analysis.summaries import transition_counts
from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.catalogue import SessionEntry, match_fields, pattern_regex, read_manifest
from dbm_lightning.io.compressed import file_stem
from dbm_lightning.prediction.bouts import run_lengths
from dbm_lightning.prediction.outputs import (
    SUMMARY_FILE,
    frames_path,
    read_frames_table,
    read_summary,
    valid_mask,
)

UNITS = ("label", "microstate")
"""What a summary counts: the predicted behaviour of each frame, or its microstate."""

META_COLUMNS = ("session", "mouse", "day", "condition")
"""The metadata columns every table starts with (extra manifest columns follow them)."""

BUDGET_COLUMNS = (
    "behaviour", "frames", "valid_frames", "invalid_frames", "percent_time", "bouts",
    "cut_bouts", "mean_bout_frames", "median_bout_frames", "mean_bout_s", "median_bout_s",
    "latency_frames", "latency_s",
)  # fmt: skip
"""The columns :func:`time_budget` adds to the metadata (the numeric ones are measures)."""

RESERVED_COLUMNS = frozenset(
    {*META_COLUMNS, *BUDGET_COLUMNS, "from", "to", "count", "probability", "fps"}
)
"""Names a manifest column or pattern field may not take (the tables' own columns)."""

DEFAULT_PATTERN = "{mouse}_day{day}"
"""The file-name pattern tried when neither a manifest nor a pattern is given."""


@dataclass
class PredictedSessions:
    """The predicted sessions of one ``dbm-predict`` folder.

    ``codes[i]`` is session ``names[i]``'s ``(T,)`` int64 array of indices into ``states``
    (-1 where the pose was invalid); ``sources[i]`` the pose file it was predicted from;
    ``fps`` the frame rate ``dbm-predict`` used; ``folder`` where it was read from.
    """

    folder: Path
    names: list[str]
    sources: list[Path]
    codes: list[np.ndarray]
    states: list[str]
    fps: float
    details: dict = field(default_factory=dict)
    """What ``dbm-predict`` said about the run: ``checkpoint``, ``smoothing``, ``min_bout``,
    ``skipped`` (the files it could not read)."""

    @property
    def n_frames(self) -> int:
        """Frames of all sessions."""
        return int(sum(c.size for c in self.codes))

    @property
    def n_invalid(self) -> int:
        """Frames left out of every count (pose invalid)."""
        return int(sum(int((c < 0).sum()) for c in self.codes))


def read_predictions(
    pred_dir: str | Path, unit: str = "label", fps: float | None = None
) -> PredictedSessions:
    """Read a ``dbm-predict`` output folder.

    Parameters
    ----------
    pred_dir
        The folder ``dbm-predict --out`` wrote (with ``summary.json``).
    unit
        ``"label"`` (the predicted behaviour of each frame) or ``"microstate"`` (its k-means
        microstate; refused when the prediction had no microstates).
    fps
        Frame rate for durations in seconds (default: the one ``dbm-predict`` used).

    Raises
    ------
    DataFormatError
        Naming the folder or file: no ``summary.json``, a frames table that is missing or
        lacks a column, a label that is not one of the model's classes, no microstates.
    """
    if unit not in UNITS:
        raise ValueError(f"unit must be one of {list(UNITS)}, got {unit!r}")
    folder = Path(pred_dir)
    summary = read_summary(folder)
    classes = summary["class_names"]
    summary_file = folder / SUMMARY_FILE
    try:
        frame_rate = float(fps or summary["fps"])
    except (KeyError, TypeError, ValueError):
        raise DataFormatError(summary_file, "names no frame rate (fps): give --fps") from None
    if unit == "microstate":
        k = summary.get("microstates")
        if not k:
            raise DataFormatError(
                summary_file,
                "this prediction has no microstates (a classic model, or none fitted): "
                "summarise --unit label",
            )
        width = len(str(int(k) - 1))
        states = [f"ms{i:0{width}d}" for i in range(int(k))]
    else:
        states = classes
    names, sources, codes = [], [], []
    lookup = pd.Index(classes)
    for row in summary["sessions"]:
        path = frames_path(row, folder)
        if unit == "microstate":
            table = read_frames_table(path, ["microstate"])
            code = table["microstate"].to_numpy(np.int64)
            bad = (code < -1) | (code >= len(states))
        else:
            table = read_frames_table(path, ["label"])
            code = lookup.get_indexer(table["label"].astype(str)).astype(np.int64)
            bad = code < 0
        valid = valid_mask(table)
        if bad[valid].any():
            first = table[unit].iloc[np.flatnonzero(bad & valid)[0]]
            raise DataFormatError(
                path, f"{unit} {first!r} is not one of the model's {len(states)}: {states}"
            )
        code = np.where(valid, code, -1)
        names.append(str(row["name"]))
        sources.append(Path(row.get("source") or path))
        codes.append(code)
    details = {key: summary.get(key) for key in ("checkpoint", "smoothing", "min_bout")}
    details["skipped"] = list(summary.get("skipped") or [])
    return PredictedSessions(folder, names, sources, codes, states, frame_rate, details)


# --------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------


def _reserved_columns(extra: Iterable[str], where: object, what: str) -> None:
    """Refuse metadata columns that would take the place of the tables' own columns."""
    clash = sorted(set(extra) & (RESERVED_COLUMNS - {"fps"}))
    if clash:
        raise DataFormatError(
            where, f"{what} {clash[0]!r} is a column of the summary's tables; rename it"
        )


def _match_manifest(pred: PredictedSessions, manifest: Path) -> pd.DataFrame:
    entries = read_manifest(manifest)
    _reserved_columns({k for e in entries for k in e.extra}, manifest, "column")
    by_path = {e.path.resolve(): e for e in entries}
    by_name = {e.name: e for e in entries if e.name}
    by_stem: dict[str, SessionEntry | None] = {}
    for e in entries:  # a stem two rows share cannot tell them apart
        by_stem[file_stem(e.path)] = None if file_stem(e.path) in by_stem else e
    rows, missing, ambiguous = [], [], []
    for name, source in zip(pred.names, pred.sources, strict=True):
        stems = (file_stem(Path(source)), name)
        entry = by_path.get(Path(source).resolve()) or by_name.get(name)
        if entry is None:
            entry = next((by_stem[s] for s in stems if by_stem.get(s) is not None), None)
            if entry is None and any(s in by_stem for s in stems):
                ambiguous.append(name)
                continue
        if entry is None:
            missing.append(name)
            continue
        row = _metadata_row(name, entry.mouse, entry.day, entry.condition, entry.extra)
        if entry.fps is not None:
            row["fps"] = entry.fps
        rows.append(row)
    if ambiguous:
        raise DataFormatError(
            manifest,
            f"several rows have the file name of session {ambiguous[0]!r} and none its path: "
            "give the full paths, or a name column",
        )
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataFormatError(manifest, f"has no row for session(s) {', '.join(missing[:3])}{more}")
    return pd.DataFrame(rows)


def _metadata_row(name: str, mouse: str | None, day: int | None, condition: str | None,
                  extra: dict) -> dict:  # fmt: skip
    """One session's metadata row: its name, mouse, day, condition and extra columns."""
    return {"session": name, "mouse": mouse, "day": day, "condition": condition, **extra}


def _match_pattern(pred: PredictedSessions, pattern: str, required: bool) -> pd.DataFrame | None:
    regex = pattern_regex(pattern)
    matches = [regex.match(name) for name in pred.names]
    if not required and not any(matches):
        return None
    unmatched = [n for n, m in zip(pred.names, matches, strict=True) if m is None]
    if unmatched:
        raise DataFormatError(
            pred.folder,
            f"session name(s) {', '.join(unmatched[:3])} do not match pattern {pattern!r}; "
            "give --pattern or --manifest",
        )
    fields = [match_fields(m) for m in matches]
    _reserved_columns(fields[0]["extra"], pred.folder, f"pattern {pattern!r} has the field")
    rows = [_metadata_row(name, **f) for name, f in zip(pred.names, fields, strict=True)]
    return pd.DataFrame(rows)


def session_metadata(
    pred: PredictedSessions,
    manifest: str | Path | None = None,
    pattern: str | None = None,
) -> pd.DataFrame:
    """Mouse, day, condition (and every other manifest column) of each predicted session.

    In this order: ``manifest`` (``path,mouse,day,condition`` + any columns, as
    :func:`~dbm_lightning.io.catalogue.read_manifest` reads it; rows found by the pose file's
    path, the ``name`` column or the file stem); else ``pattern`` over the session names
    (every session must match); else the ``manifest.csv`` beside the pose files when they all
    lie in one folder that has one; else :data:`DEFAULT_PATTERN` when a session matches it;
    else no metadata (``mouse`` is the session name, ``day`` and ``condition`` empty).

    Returns
    -------
    DataFrame with ``session, mouse, day, condition`` and the extra columns (a manifest's
    ``fps`` column too: that recording's frame rate), one row per session in ``pred.names``
    order; ``day`` is a nullable integer; ``attrs["source"]`` says where the metadata came
    from.

    Raises
    ------
    DataFormatError
        A manifest without a row for a session (or with two rows it cannot tell apart), names
        that do not match ``pattern``, or a column named like one of the tables' own.
    """
    table: pd.DataFrame | None = None
    if manifest is not None:
        table, source = _match_manifest(pred, Path(manifest)), f"manifest {manifest}"
    elif pattern is not None:
        table, source = _match_pattern(pred, pattern, required=True), f"names ({pattern})"
    else:
        beside = {Path(s).parent / "manifest.csv" for s in pred.sources}
        if len(beside) == 1 and all(p.is_file() for p in beside):
            found = beside.pop()
            table, source = _match_manifest(pred, found), f"manifest {found}"
        else:
            table = _match_pattern(pred, DEFAULT_PATTERN, required=False)
            source = f"names ({DEFAULT_PATTERN})"
    if table is None:
        table = pd.DataFrame({"session": pred.names, "mouse": pred.names})
        source = "none: every session is its own animal"
    for column in META_COLUMNS:
        if column not in table:
            table[column] = None
    table["day"] = pd.array([None if pd.isna(d) else int(d) for d in table["day"]], dtype="Int64")
    table["mouse"] = table["mouse"].where(table["mouse"].notna(), table["session"])
    extra = [c for c in table.columns if c not in META_COLUMNS]
    table = table[list(META_COLUMNS) + extra].reset_index(drop=True)
    table.attrs["source"] = source
    return table


# --------------------------------------------------------------------------------------------
# per-session tables
# --------------------------------------------------------------------------------------------


def _with_meta(rows: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    return meta.merge(rows, on="session", how="right", validate="one_to_many")


def _session_fps(meta: pd.DataFrame, fps: float) -> np.ndarray:
    """Each session's frame rate: the metadata's ``fps`` column where given, else ``fps``."""
    if "fps" not in meta:
        return np.full(len(meta), float(fps))
    rates = pd.to_numeric(meta["fps"], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(rates) & (rates > 0), rates, float(fps))


def time_budget(
    codes: Sequence[np.ndarray],
    states: Sequence[str],
    meta: pd.DataFrame,
    fps: float,
) -> pd.DataFrame:
    """One row per session x state: how much time, in how many bouts, how soon.

    Parameters
    ----------
    codes
        Per session ``(T,)`` codes into ``states``, -1 = invalid (left out).
    meta
        :func:`session_metadata` (its row ``i`` is session ``i`` of ``codes``).
    fps
        Frame rate of the durations and latencies in seconds (a session's ``fps`` in ``meta``
        comes first).

    Returns
    -------
    DataFrame: the metadata columns, then ``behaviour``, ``frames`` (in this behaviour),
    ``valid_frames`` and ``invalid_frames`` (of the session), ``percent_time`` (of the valid
    frames), ``bouts``, ``cut_bouts`` (of them, those that touch the session's first or last
    frame or an invalid frame: their true length is unknown; they count in the durations),
    ``mean_bout_frames``, ``median_bout_frames``, ``mean_bout_s``, ``median_bout_s``,
    ``latency_frames`` and ``latency_s`` (from the session's first frame to the first bout's;
    NaN without a bout, as are the bout durations).
    """
    if len(codes) != len(meta):
        raise ValueError(f"{len(codes)} sessions but {len(meta)} metadata rows")
    k = len(states)
    runs = []
    for i, code in enumerate(codes):
        starts, lengths, values = run_lengths(np.asarray(code, dtype=np.int64))
        before = np.concatenate([[-1], values[:-1]])[: values.size]  # none for an empty session
        after = np.concatenate([values[1:], [-1]])[: values.size]
        cut = (before < 0) | (after < 0)
        runs.append(pd.DataFrame({"i": i, "state": values, "start": starts,
                                  "length": lengths, "cut": cut}))  # fmt: skip
    runs = pd.concat(runs, ignore_index=True)
    runs = runs[runs["state"] >= 0]
    stats = runs.groupby(["i", "state"]).agg(
        frames=("length", "sum"),
        bouts=("length", "size"),
        cut_bouts=("cut", "sum"),
        mean_bout_frames=("length", "mean"),
        median_bout_frames=("length", "median"),
        latency_frames=("start", "min"),
    )
    grid = pd.MultiIndex.from_product([range(len(codes)), range(k)], names=["i", "state"])
    table = stats.reindex(grid).reset_index()
    for column in ("frames", "bouts", "cut_bouts"):
        table[column] = table[column].fillna(0).astype(np.int64)
    valid = table.groupby("i")["frames"].transform("sum").to_numpy()
    total = np.array([np.asarray(c).size for c in codes])[table["i"]]
    rate = _session_fps(meta, fps)[table["i"]]
    percent = np.where(valid > 0, 100.0 * table["frames"] / np.maximum(valid, 1), np.nan)
    out = pd.DataFrame(
        {
            "session": meta["session"].to_numpy()[table["i"]],
            "behaviour": np.asarray(list(states), dtype=object)[table["state"]],
            "frames": table["frames"],
            "valid_frames": valid,
            "invalid_frames": total - valid,
            "percent_time": percent,
            "bouts": table["bouts"],
            "cut_bouts": table["cut_bouts"],
            "mean_bout_frames": table["mean_bout_frames"],
            "median_bout_frames": table["median_bout_frames"],
            "mean_bout_s": table["mean_bout_frames"] / rate,
            "median_bout_s": table["median_bout_frames"] / rate,
            "latency_frames": table["latency_frames"],
            "latency_s": table["latency_frames"] / rate,
        }
    )
    return _with_meta(out, meta)


def transition_matrices(codes: Sequence[np.ndarray], k: int) -> np.ndarray:
    """``(sessions, k, k)`` counts of bout-to-bout transitions ``from -> to`` per session:
    :func:`~dbm_lightning.analysis.summaries.transition_counts` of the bouts' states (a bout
    is a run of one state, so the diagonal is zero; none across invalid frames)."""
    return (
        np.stack(
            [transition_counts([run_lengths(np.asarray(c, dtype=np.int64))[2]], k) for c in codes]
        )
        if len(codes)
        else np.zeros((0, k, k), dtype=np.int64)
    )


def transition_table(
    codes: Sequence[np.ndarray], states: Sequence[str], meta: pd.DataFrame
) -> pd.DataFrame:
    """Tidy bout-to-bout transitions: one row per session x (from, to) pair of different
    states, with ``count`` and ``probability`` (of ``to`` given a bout of ``from`` ended into
    another state; NaN when ``from`` never did)."""
    k = len(states)
    counts = transition_matrices(codes, k)
    totals = counts.sum(axis=2, keepdims=True)
    prob = np.where(totals > 0, counts / np.maximum(totals, 1), np.nan)
    src, dst = np.nonzero(~np.eye(k, dtype=bool))
    names = np.asarray(list(states), dtype=object)
    rows = pd.DataFrame(
        {
            "session": np.repeat(meta["session"].to_numpy(), src.size),
            "from": np.tile(names[src], len(codes)),
            "to": np.tile(names[dst], len(codes)),
            "count": counts[:, src, dst].ravel(),
            "probability": prob[:, src, dst].ravel(),
        }
    )
    return _with_meta(rows, meta)
