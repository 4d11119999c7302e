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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.catalogue import pattern_regex, read_manifest
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
    unit: str = "label"

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
    for row in summary["sessions"]:
        path = frames_path(row, folder)
        if unit == "microstate":
            table = read_frames_table(path, ["microstate"])
            code = table["microstate"].to_numpy(np.int64)
            bad = (code < -1) | (code >= len(states))
        else:
            table = read_frames_table(path, ["label"])
            lookup = pd.Index(classes)
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
    return PredictedSessions(folder, names, sources, codes, states, frame_rate, unit)


# --------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------


def _match_manifest(pred: PredictedSessions, manifest: Path) -> pd.DataFrame:
    entries = read_manifest(manifest)
    by_path = {e.path.resolve(): e for e in entries}
    by_name = {e.name: e for e in entries if e.name}
    by_stem = {file_stem(e.path): e for e in entries}
    rows, missing = [], []
    for name, source in zip(pred.names, pred.sources, strict=True):
        entry = (
            by_path.get(Path(source).resolve())
            or by_name.get(name)
            or by_stem.get(file_stem(Path(source)))
            or by_stem.get(name)
        )
        if entry is None:
            missing.append(name)
            continue
        rows.append(
            {
                "session": name,
                "mouse": entry.mouse,
                "day": entry.day,
                "condition": entry.condition,
                **entry.extra,
            }
        )
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DataFormatError(manifest, f"has no row for session(s) {', '.join(missing[:3])}{more}")
    return pd.DataFrame(rows)


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
    rows = []
    for name, m in zip(pred.names, matches, strict=True):
        fields = m.groupdict()
        rows.append(
            {
                "session": name,
                "mouse": fields.pop("mouse", None),
                "day": int(fields.pop("day")) if "day" in fields else None,
                "condition": fields.pop("condition", None),
                **fields,
            }
        )
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
    (every session must match); else the ``manifest.csv`` beside the pose files when all of
    them lie in folders that have one; else :data:`DEFAULT_PATTERN` when a session matches it;
    else no metadata (``mouse`` is the session name, ``day`` and ``condition`` empty).

    Returns
    -------
    DataFrame with ``session, mouse, day, condition`` and the extra columns, one row per
    session in ``pred.names`` order; ``day`` is a nullable integer; ``attrs["source"]`` says
    where the metadata came from.

    Raises
    ------
    DataFormatError
        A manifest without a row for a session, or names that do not match ``pattern``.
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
        Frame rate of the durations and latencies in seconds.

    Returns
    -------
    DataFrame: the metadata columns, then ``behaviour``, ``frames`` (in this behaviour),
    ``valid_frames`` and ``invalid_frames`` (of the session), ``percent_time`` (of the valid
    frames), ``bouts``, ``mean_bout_frames``, ``median_bout_frames``, ``mean_bout_s``,
    ``median_bout_s``, ``latency_frames`` and ``latency_s`` (from the session's first frame
    to the first bout's; NaN without a bout, as are the bout durations).
    """
    if len(codes) != len(meta):
        raise ValueError(f"{len(codes)} sessions but {len(meta)} metadata rows")
    k = len(states)
    parts = []
    for name, code in zip(meta["session"], codes, strict=True):
        code = np.asarray(code, dtype=np.int64)
        starts, lengths, values = run_lengths(code)
        frames = np.bincount(code[code >= 0], minlength=k)
        valid = int(frames.sum())
        bouts = np.bincount(values[values >= 0], minlength=k)
        mean_len = np.full(k, np.nan)
        median_len = np.full(k, np.nan)
        latency = np.full(k, np.nan)
        for state in np.flatnonzero(bouts):
            mine = values == state
            mean_len[state] = lengths[mine].mean()
            median_len[state] = np.median(lengths[mine])
            latency[state] = starts[mine][0]
        parts.append(
            pd.DataFrame(
                {
                    "session": name,
                    "behaviour": list(states),
                    "frames": frames,
                    "valid_frames": valid,
                    "invalid_frames": int(code.size - valid),
                    "percent_time": 100.0 * frames / valid if valid else np.full(k, np.nan),
                    "bouts": bouts,
                    "mean_bout_frames": mean_len,
                    "median_bout_frames": median_len,
                    "mean_bout_s": mean_len / fps,
                    "median_bout_s": median_len / fps,
                    "latency_frames": latency,
                    "latency_s": latency / fps,
                }
            )
        )
    return _with_meta(pd.concat(parts, ignore_index=True), meta)


def transition_matrices(codes: Sequence[np.ndarray], k: int) -> np.ndarray:
    """``(sessions, k, k)`` counts of bout-to-bout transitions ``from -> to`` per session
    (runs of one state are one bout, so the diagonal is zero; none across invalid frames)."""
    out = np.zeros((len(codes), k, k), dtype=np.int64)
    for i, code in enumerate(codes):
        _, _, values = run_lengths(np.asarray(code, dtype=np.int64))
        a, b = values[:-1], values[1:]
        keep = (a >= 0) & (b >= 0)
        out[i] = np.bincount(a[keep] * k + b[keep], minlength=k * k).reshape(k, k)
    return out


def transition_table(
    codes: Sequence[np.ndarray], states: Sequence[str], meta: pd.DataFrame
) -> pd.DataFrame:
    """Tidy bout-to-bout transitions: one row per session x (from, to) pair of different
    states, with ``count`` and ``probability`` (of ``to`` given a bout of ``from`` ended into
    another state; NaN when ``from`` never did)."""
    k = len(states)
    counts = transition_matrices(codes, k)
    totals = counts.sum(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
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
