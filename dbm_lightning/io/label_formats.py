"""Per-frame labels from the files of the field's annotation tools: :func:`read_label_file`.

Formats (``format=``; ``"auto"`` tells them apart by content, never by the file's suffix):

* ``"csv"`` -- the plain layouts of :func:`~dbm_lightning.io.labels.load_labels` (``frame,label``
  or one 0/1 column per behaviour). Classes: names alphabetical, integer codes by value, 0/1
  columns in file order; with ``label_names``, integer codes index into it.
* ``"caltech"`` -- Caltech Behavior Annotator ``.txt`` (CalMS21, MARS, Bento): a
  ``Configuration file:`` block, then streams ``S1:``, ``S2:`` ... of 1-based inclusive
  ``start end type`` intervals; annotation frame f is pose row f-1. ``stream`` picks one
  (default ``"S1"``; ``"2"`` means ``"S2"``). Frames no interval covers are unlabelled; two
  overlapping intervals (even of one type) are an error. Classes: the stream's types,
  alphabetical (types missing from the configuration block are accepted).
* ``"boris"`` -- BORIS tabular exports: "events" (optional metadata block, then ``Time, ...,
  FPS, Subject, Behavior, ..., Status`` rows START/STOP/POINT; newer versions name the status
  column ``Behavior type``) and "aggregated events" (``..., Subject, Behavior, ..., Behavior
  type, Start (s), Stop (s), ...``). Frame = round((time - time offset) x FPS), halves to even
  as Python's ``round``; FPS from the file's ``FPS`` / ``FPS (frame/s)`` column (``fps`` only
  when the file has none); the offset from a ``Time offset (s)`` metadata row or column (else
  0). A state event covers frames round(start) .. round(stop)-1 (none when both round alike),
  a POINT event one frame. ``subject`` picks the subject when the file has several. Frames in
  no event are the class ``background`` (``None``: unlabelled). Two events of different kept
  behaviours on one frame are an error naming both -- a POINT event inside a state event too
  (``ignore`` one of them). Classes: the chosen subject's behaviours and ``background``,
  alphabetical. A file holding several observations is an error.
* ``"simba"`` -- SimBA ``targets_inserted`` CSV: frame index, pose and feature columns, then
  one 0/1 column per behaviour. The behaviour columns are ``label_names`` when given, else the
  trailing run of columns holding only 0/1 values (a 0/1 feature column just before them would
  be taken for a behaviour: pass ``label_names`` then). A frame with no behaviour at 1 is
  ``not_<name>`` with a single behaviour column, else the class ``background`` (``None``:
  unlabelled). Classes: that class first, then the behaviour columns in file order.
* ``"deepethogram"`` -- DeepEthogram label CSV: unnamed index, ``background``, one 0/1 column
  per behaviour; ``background`` is an ordinary class. A row holding -1 (DeepEthogram's "not
  labelled yet") or no 1 is unlabelled. Classes: the columns in file order.

Names, in every format:

* Names are compared without case or surrounding spaces (``"Social "`` is ``"social"``).
  Without ``label_names`` the class names returned are in that canonical form (stripped,
  lower case) so that files typed differently agree; with it they are ``label_names`` as
  given, in its order, and a name of the file (or the absence class) not in it is an error.
* ``rename`` maps a file's names to the names used, before ``label_names`` and ``ignore``;
  names renamed alike are one class (so their events may overlap).
* Names in ``ignore`` are not classes: their frames are unlabelled (-1) unless a kept
  behaviour covers them, and they take no part in overlap checks -- except in Caltech streams,
  where overlapping intervals are always an error. ``background`` may be ignored too. A name
  both in ``label_names`` and in ``ignore`` is a ValueError.

Lengths: 0/1-column files must have exactly ``n_frames`` rows (a frame index column must list
0 .. n_frames-1 once). Interval formats (Caltech, BORIS) may run past ``n_frames`` by at most
max(30, n_frames // 100) frames, which are dropped with one warning naming the file; more is a
:class:`~dbm_lightning.errors.DataFormatError` (probably the wrong label file). Options meant
for another format (``stream`` for a BORIS file ...) are ignored.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.labels import (
    FRAME_COLUMNS,
    LABEL_COLUMNS,
    NameRules,
    dedupe,
    frame_index_text,
    ints_at_lines,
    load_labels_with_rules,
    name_key,
    order_by_frame,
)
from dbm_lightning.session import UNLABELLED

LABEL_FORMATS = ("csv", "caltech", "boris", "simba", "deepethogram")

_FORMAT_HELP = (
    "csv ('frame,label' or one 0/1 column per behaviour), caltech (Caltech Behavior Annotator "
    "'.txt' with 'S1: start end type' tables), boris (BORIS events or aggregated-events "
    "export), simba (targets_inserted CSV: pose/feature columns, then 0/1 behaviour columns), "
    "deepethogram (index, background, one 0/1 column per behaviour)"
)
_STREAM_RE = re.compile(r"^(S\d+)\s*:\s*start\s+end\s+type$", re.IGNORECASE)
_MISSING = ("", "na", "nan", "n/a", "none")


def read_label_file(
    path: str | Path,
    n_frames: int,
    *,
    format: str = "auto",
    label_names: Sequence[str] | None = None,
    stream: str | None = None,
    subject: str | None = None,
    rename: Mapping[str, str] | None = None,
    ignore: Sequence[str] = (),
    background: str | None = "other",
    fps: float | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read the per-frame labels of a session of ``n_frames`` frames (see the module doc).

    Returns ``(labels, names)``: ``(n_frames,)`` int64 indices into ``names``, ``UNLABELLED``
    (-1) for no label. A malformed file raises :class:`DataFormatError` naming it (and the
    line or row); a bad argument raises ValueError.
    """
    path = Path(path)
    if format != "auto" and format not in LABEL_FORMATS:
        raise ValueError(f"format {format!r} is not 'auto' or one of {list(LABEL_FORMATS)}")
    if isinstance(n_frames, bool) or int(n_frames) != n_frames or n_frames < 0:
        raise ValueError(f"n_frames must be a non-negative integer, got {n_frames!r}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    rules = NameRules(label_names, rename, ignore)
    src = _Source(path)
    fmt = _detect(src) if format == "auto" else format
    n = int(n_frames)
    try:
        if fmt == "csv":
            return load_labels_with_rules(path, n, rules)
        if fmt == "caltech":
            return _read_caltech(src, n, rules, stream)
        if fmt == "boris":
            return _read_boris(src, n, rules, subject, background, fps)
        return _read_columns(src, n, rules, fmt, background)
    except DataFormatError as exc:  # one line, even where a parser's message spans several
        if "\n" not in exc.problem:
            raise
        raise DataFormatError(exc.path, " ".join(exc.problem.split())) from None


# ----------------------------------------------------------------------------- the file


class _Source:
    """The file's text (read once), its delimiter, and its table (parsed on demand)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.is_file():
            raise DataFormatError(path, "label file not found")
        data = path.read_bytes()
        if b"\x00" in data[:4096]:
            raise DataFormatError(path, f"label file is binary; expected {_FORMAT_HELP}")
        try:
            self.text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.text = data.decode("latin-1")
        if not self.text.strip():
            raise DataFormatError(path, "label file is empty")
        head = itertools.islice(io.StringIO(self.text), 400)
        self.head = [line.rstrip("\r\n") for line in head]
        sample = [line for line in self.head if line.strip()][:50]
        tabs = sum(line.count("\t") for line in sample)
        self.delimiter = "\t" if tabs > sum(line.count(",") for line in sample) else ","
        self._table: pd.DataFrame | None = None

    def rows(self, head_only: bool = False) -> list[tuple[int, list[str]]]:
        """``(line number, stripped cells)`` of each CSV row."""
        lines = self.head if head_only else io.StringIO(self.text)
        reader = csv.reader(lines, delimiter=self.delimiter)
        try:
            return [(reader.line_num, [c.strip() for c in row]) for row in reader]
        except csv.Error as exc:
            problem = f"cannot parse CSV line {reader.line_num}: {exc}"
            raise DataFormatError(self.path, problem) from None

    def table(self) -> pd.DataFrame:
        if self._table is None:
            try:
                df = pd.read_csv(
                    io.StringIO(self.text), sep=self.delimiter, skipinitialspace=True,
                    low_memory=False,
                )  # fmt: skip
            except Exception as exc:  # pandas' messages may span lines: keep one
                problem = f"cannot parse label CSV ({' '.join(str(exc).split())})"
                raise DataFormatError(self.path, problem) from None
            df.columns = [str(c).strip() for c in df.columns]
            self._table = df
        return self._table


def _is_frame_header(name: str) -> bool:
    low = name.strip().lower()
    return low in FRAME_COLUMNS or low.startswith("unnamed: 0")


def _numbers(col: pd.Series) -> np.ndarray:
    """A column as float64, NaN where a cell is not a number."""
    return pd.to_numeric(col, errors="coerce").to_numpy(np.float64)


def _binary(col: pd.Series, allow_missing: bool = False) -> bool:
    v = _numbers(col)
    ok = (v == 0) | (v == 1)
    return bool((ok | (col.isna().to_numpy() & allow_missing)).all())


def _trailing_binary(df: pd.DataFrame, columns: list[str]) -> list[str]:
    """The trailing run of ``columns`` holding only 0/1 values."""
    run: list[str] = []
    for c in reversed(columns):  # one vectorised check per column
        if not len(df) or not _binary(df[c]):
            break
        run.insert(0, c)
    return run


def _boris_kind(cells: list[str]) -> str | None:
    """``"events"`` or ``"aggregated"`` when ``cells`` is the header row of a BORIS export."""
    keys = {name_key(c) for c in cells}
    if "behavior" not in keys:
        return None
    if {"start (s)", "stop (s)"} <= keys:
        return "aggregated"
    return "events" if "time" in keys and keys & {"status", "behavior type"} else None


def _detect(src: _Source) -> str:
    first = next((line.strip() for line in src.head if line.strip()), "")
    if first.lower().startswith("caltech behavior annotator") or any(
        _STREAM_RE.match(line.strip()) for line in src.head
    ):
        return "caltech"
    rows = src.rows(head_only=True)
    if any(_boris_kind(cells) for _, cells in rows):
        return "boris"
    header = [name_key(c) for c in rows[0][1]] if rows else []
    if len(header) >= 2 and _is_frame_header(header[0]) and header[1] == "background":
        return "deepethogram"
    if any(h in LABEL_COLUMNS for h in header):
        return "csv"
    df = src.table()
    cols = list(df.columns)
    data = cols[1:] if cols and _is_frame_header(cols[0]) else cols
    if data and len(df) and all(_binary(df[c], allow_missing=True) for c in data):
        return "csv"
    run = _trailing_binary(df, data)
    if run and len(run) < len(data):
        return "simba"
    raise DataFormatError(
        src.path, f"cannot tell the label format from the content; expected one of {_FORMAT_HELP}"
    )


# ----------------------------------------------------------------------------- intervals


def _fit_to_session(path: Path, ends: np.ndarray, n_frames: int, what: str) -> None:
    """Annotations past the session's end: dropped with a warning, or an error when too many."""
    extra = int(ends.max()) - n_frames if ends.size else 0
    tolerated = max(30, n_frames // 100)
    if extra > tolerated:
        raise DataFormatError(
            path,
            f"the {what} run to frame {int(ends.max())}, {extra} frames past the session's "
            f"{n_frames} frames (more than the {tolerated} tolerated): probably the wrong "
            "label file for this session",
        )
    if extra > 0:
        warnings.warn(
            f"{path}: the {what} run {extra} frame(s) past the session's {n_frames} frames; "
            "the extra frames were dropped",
            stacklevel=4,
        )


def _overlap(starts: np.ndarray, ends: np.ndarray, groups: np.ndarray | None):
    """Indices of two events ``[start, end)`` sharing a frame (of different ``groups`` when
    given), or None."""
    if starts.size < 2:
        return None
    rows = np.zeros(starts.size, np.int64)
    if groups is not None:
        rows = np.unique(groups, return_inverse=True)[1].ravel()
    diff = np.zeros((int(rows.max()) + 1, int(ends.max()) + 2), np.int64)
    np.add.at(diff, (rows, starts), 1)
    np.add.at(diff, (rows, ends), -1)
    cover = np.cumsum(diff, axis=1)
    busy = cover.sum(axis=0) if groups is None else (cover > 0).sum(axis=0)
    if not (busy > 1).any():
        return None
    f = int(np.argmax(busy > 1))
    on = np.flatnonzero((starts <= f) & (ends > f))
    i = int(on[0])
    return i, next(int(k) for k in on[1:] if groups is None or groups[k] != groups[i])


def _paint(n_frames: int, starts, ends, classes: np.ndarray, fill: int) -> np.ndarray:
    """Per-frame labels, one slice per event; ignored events (class -1) first, so that kept
    events cover them."""
    labels = np.full(n_frames, fill, np.int64)
    for i in np.argsort(classes != UNLABELLED, kind="stable").tolist():
        labels[starts[i] : min(int(ends[i]), n_frames)] = classes[i]
    return labels


def _floats(path: Path, cells: list[str], lines: list[int], what: str) -> np.ndarray:
    out = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(out)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(path, f"line {lines[r]}: {what} {cells[r]!r} is not a number")
    return out


# ----------------------------------------------------------------------------- caltech


def _read_caltech(src: _Source, n_frames: int, rules: NameRules, stream: str | None):
    path = src.path
    streams: dict[str, list[tuple[int, list[str]]]] = {}
    current, in_config = None, False
    for no, raw in enumerate(src.text.splitlines(), 1):  # one line per interval
        line = raw.strip()
        low = line.lower()
        match = _STREAM_RE.match(line)
        if not line:
            in_config = False
        elif match:
            current, in_config = match.group(1).upper(), False
            if current in streams:
                raise DataFormatError(path, f"line {no}: stream {current} appears twice")
            streams[current] = []
        elif low.startswith("caltech behavior annotator") or set(line) <= {"-"} or in_config:
            continue  # title, table rule, "behaviour key" rows of the configuration
        elif low.startswith("configuration file"):
            current, in_config = None, True
        elif current is None:
            raise DataFormatError(path, f"line {no}: unexpected text {line[:60]!r}")
        elif len(parts := line.split(None, 2)) < 3:
            raise DataFormatError(path, f"line {no}: expected 'start end type', got {line!r}")
        else:
            streams[current].append((no, parts))
    if not streams:
        raise DataFormatError(
            path, "no annotation stream (a line 'S1: start end type'): not a Caltech file"
        )
    want = str(stream if stream is not None else "S1").strip().upper()
    want = f"S{want}" if want.isdigit() else want
    if want not in streams:
        raise DataFormatError(
            path, f"stream {stream!r} is not in the file; its streams are {list(streams)}"
        )
    rows = streams[want]
    lines = [no for no, _ in rows]
    first = ints_at_lines(path, [p[0] for _, p in rows], lines, "start frame")
    last = ints_at_lines(path, [p[1] for _, p in rows], lines, "end frame")
    types = [p[2].strip() for _, p in rows]
    bad = np.flatnonzero((first < 1) | (last < first))
    if bad.size:
        r = int(bad[0])
        raise DataFormatError(
            path, f"line {lines[r]}: interval {first[r]}-{last[r]} is not 1-based start <= end"
        )
    starts, ends = first - 1, last  # 0-based, end exclusive
    _fit_to_session(path, ends, n_frames, f"stream {want} intervals")
    pair = _overlap(starts, ends, None)
    if pair:
        a, b = (f"line {lines[i]} ({first[i]}-{last[i]} {types[i]})" for i in pair)
        raise DataFormatError(path, f"overlapping intervals in stream {want}: {a} and {b}")
    present = [(rules.target(t), rules.what(t)) for t in types]
    out, index = rules.classes(path, [p for p in present if p[0]], alphabetical=True)
    return _paint(n_frames, starts, ends, rules.lookup(index, types), UNLABELLED), out


# ----------------------------------------------------------------------------- boris


def _one_value(path, cells, lines, what, meta=None) -> float | None:
    """The single value of a per-row numeric column (FPS, time offset) or of a ``(value,
    line)`` metadata row; None when absent."""
    pairs = zip(cells, lines, strict=True) if cells else ()
    given = [(c, no) for c, no in pairs if c.lower() not in _MISSING]
    if meta is not None and meta[0].lower() not in _MISSING:
        given.append(meta)
    if not given:
        return None
    values = _floats(path, [c for c, _ in given], [no for _, no in given], what)
    if not np.allclose(values, values[0], rtol=1e-6, atol=1e-9):
        raise DataFormatError(path, f"several {what} values {sorted(set(values.tolist()))}")
    return float(values[0])


def _read_boris(src, n_frames, rules: NameRules, subject, background, fps_arg):
    path = src.path
    rows = src.rows()
    at = next((i for i, (_, cells) in enumerate(rows) if _boris_kind(cells)), None)
    if at is None:
        raise DataFormatError(path, "no BORIS header row (with Behavior and Time or Start (s))")
    header = rows[at][1]
    keys = [name_key(h) for h in header]
    aggregated = _boris_kind(header) == "aggregated"
    meta = {name_key(c[0]): (c[1], no) for no, c in rows[:at] if len(c) >= 2}
    data = [(no, c + [""] * (len(header) - len(c))) for no, c in rows[at + 1 :] if any(c)]
    lines = [no for no, _ in data]

    def column(*names: str) -> list[str] | None:
        j = next((keys.index(n) for n in names if n in keys), None)
        return None if j is None else [c[j] for _, c in data]

    obs = dedupe([o for o in column("observation id") or [] if o])
    if len(obs) > 1:
        raise DataFormatError(path, f"several observations {obs}: export one per file")
    fps = _one_value(path, column("fps", "fps (frame/s)"), lines, "FPS")
    if fps is not None and not fps > 0:
        raise DataFormatError(path, f"FPS {fps} is not positive")
    fps = fps if fps is not None else fps_arg
    if fps is None:
        raise DataFormatError(path, "no FPS in the file: pass fps= to turn seconds into frames")
    offset = _one_value(
        path, column("time offset (s)"), lines, "offset", meta.get("time offset (s)")
    )

    subjects = column("subject")
    if subjects is None and subject is not None:
        raise DataFormatError(path, f"subject {subject!r} given but the file has no Subject")
    found = dedupe(subjects or [])
    if subject is None and len(found) > 1:
        raise DataFormatError(path, f"several subjects {found}: choose one with subject=")
    chosen = name_key(subject if subject is not None else found[0] if found else "")
    if found and chosen not in {name_key(s) for s in found}:
        raise DataFormatError(
            path, f"subject {subject!r} is not in the file; its subjects are {found}"
        )
    idx = [i for i, s in enumerate(subjects or [""] * len(data)) if name_key(s) == chosen]

    def pick(cells: list | None) -> list:
        return [cells[i] for i in idx] if cells is not None else [""] * len(idx)

    beh, lines = pick(column("behavior")), pick(lines)
    status = column("behavior type") if aggregated else column("status", "behavior type")
    kinds = [k.upper() for k in pick(status)]

    if aggregated:
        start_s = _floats(path, pick(column("start (s)")), lines, "start")
        stop_txt = pick(column("stop (s)"))
        for r, k in enumerate(kinds):  # one check per event
            if k and "POINT" not in k and "STATE" not in k:
                raise DataFormatError(path, f"line {lines[r]}: behavior type {k!r} not STATE/POINT")
        point = np.array([k.lower() in _MISSING for k in stop_txt], bool)
        point = np.where([bool(k) for k in kinds], ["POINT" in k for k in kinds], point)
        stop_s = start_s.copy()
        state = np.flatnonzero(~point)
        stop_s[state] = _floats(path, [stop_txt[i] for i in state], _pick_at(lines, state), "stop")
        back = np.flatnonzero(stop_s < start_s)
        if back.size:
            raise DataFormatError(path, f"line {lines[back[0]]}: stop before start")
    else:
        times = _floats(path, pick(column("time")), lines, "time")
        start_s, stop_s, point, beh, lines = _pair_events(path, times, kinds, beh, lines)

    def frame(seconds: np.ndarray) -> np.ndarray:  # halves to even, as Python's round()
        return np.rint((seconds - (offset or 0.0)) * fps).astype(np.int64)

    starts = frame(start_s)
    ends = np.where(point, starts + 1, frame(stop_s))
    if (starts < 0).any():
        r = int(np.argmax(starts < 0))
        raise DataFormatError(path, f"line {lines[r]}: event at {start_s[r]} s is before frame 0")
    _fit_to_session(path, ends, n_frames, "events")

    bg = rules.plain(background)
    present = [(rules.target(b), rules.what(b, "behaviour")) for b in beh]
    present = [p for p in present if p[0]]
    if bg is not None:
        present.append((bg, f"background class {background!r} (or pass background=None)"))
    out, index = rules.classes(path, present, alphabetical=True)
    classes = rules.lookup(index, beh)
    kept = np.flatnonzero(classes != UNLABELLED)
    pair = _overlap(starts[kept], ends[kept], classes[kept])
    if pair:
        a, b = (
            f"{beh[k]!r} {start_s[k]:g}-{stop_s[k]:g} s (line {lines[k]})" for k in kept[list(pair)]
        )
        raise DataFormatError(path, f"overlapping events {a} and {b}")
    fill = index[bg] if bg is not None else UNLABELLED
    return _paint(n_frames, starts, ends, classes, fill), out


def _pick_at(items: list, where: np.ndarray) -> list:
    return [items[i] for i in where.tolist()]


def _pair_events(path, times, kinds, beh, lines):
    """START/STOP rows -> state events, POINT rows -> one-frame events (a loop per event)."""
    open_: dict[str, int] = {}
    events: list[tuple[int, int]] = []  # (start row, stop row); a POINT stops at itself
    for r in np.argsort(times, kind="stable").tolist():
        k, b = kinds[r], name_key(beh[r])
        if k == "POINT":
            events.append((r, r))
        elif k == "START" and b in open_:
            raise DataFormatError(
                path,
                f"line {lines[open_[b]]}: START of {beh[r]!r} without STOP (next START at line "
                f"{lines[r]})",
            )
        elif k == "START":
            open_[b] = r
        elif k == "STOP" and b not in open_:
            raise DataFormatError(path, f"line {lines[r]}: STOP of {beh[r]!r} without START")
        elif k == "STOP":
            events.append((open_.pop(b), r))
        else:
            raise DataFormatError(
                path, f"line {lines[r]}: status {kinds[r]!r} is not START, STOP or POINT"
            )
    if open_:
        r = min(open_.values(), key=lambda i: lines[i])
        raise DataFormatError(path, f"line {lines[r]}: START of {beh[r]!r} without STOP")
    events.sort()
    first = np.array([s for s, _ in events], np.int64)
    last = np.array([e for _, e in events], np.int64)
    point = np.array([kinds[s] == "POINT" for s in first.tolist()], bool)
    return times[first], times[last], point, _pick_at(beh, first), _pick_at(lines, first)


# ----------------------------------------------------------------------------- 0/1 columns


def _read_columns(src: _Source, n_frames: int, rules: NameRules, fmt: str, background):
    path = src.path
    df = src.table()
    cols = list(df.columns)
    frame_col = cols[0] if cols and _is_frame_header(cols[0]) else None
    data = [c for c in cols if c != frame_col]
    if fmt == "simba" and rules.fixed is not None:
        use = [c for c in data if rules.renamed(c) in {*rules.index, *rules.ignore}]
    elif fmt == "simba":
        use = _trailing_binary(df, data)
    else:
        use = data
    if not use and not (fmt == "simba" and rules.fixed is not None):
        raise DataFormatError(path, "no 0/1 behaviour columns")
    values = np.column_stack([_numbers(df[c]) for c in use]) if use else np.zeros((len(df), 0))
    ok = (values == 0) | (values == 1) | ((values == -1) & (fmt == "deepethogram"))
    if not ok.all():
        r, c = (int(v) for v in np.argwhere(~ok)[0])
        cell = df[use[c]].iloc[r]
        cell = "an empty cell" if pd.isna(cell) else f"value {cell!r}"
        raise DataFormatError(path, f"row {r + 1}, column {use[c]!r}: {cell} is not 0/1")
    keys = [rules.target(c) for c in use]
    kept = dedupe([k for k in keys if k])
    absent = None
    if fmt == "simba":
        absent = f"not_{kept[0]}" if len(kept) == 1 else rules.plain(background)
        missing = [n for n in rules.fixed or () if name_key(n) not in {*kept, absent}]
        if missing:
            raise DataFormatError(
                path,
                f"label_names {missing} are not columns of the file; its trailing 0/1 columns "
                f"are {_trailing_binary(df, data)}",
            )
    present = [(absent, _absent_what(absent, kept, background))] if absent else []
    present += [(k, rules.what(c, "column")) for k, c in zip(keys, use, strict=True) if k]
    out, index = rules.classes(path, present, alphabetical=False)

    hot = values == 1
    cls_hot = np.zeros((len(df), len(out)), bool)
    for j, k in enumerate(keys):  # one pass per column
        if k:
            cls_hot[:, index[k]] |= hot[:, j]
    n_hot = cls_hot.sum(axis=1)
    if (n_hot > 1).any():
        r = int(np.argmax(n_hot > 1))
        which = [use[j] for j in np.flatnonzero(hot[r]) if keys[j]]
        frame = df[frame_col].iloc[r] if frame_col is not None else r
        raise DataFormatError(
            path, f"frame {frame} (row {r + 1}) has several behaviours set to 1: {which}"
        )
    ignored_hot = hot[:, [j for j, k in enumerate(keys) if not k]].any(axis=1)
    fill = UNLABELLED if absent is None else index[absent]
    labels = np.where(n_hot == 1, cls_hot.argmax(axis=1) if len(out) else 0, fill)
    labels[(ignored_hot & (n_hot == 0)) | (values == -1).any(axis=1)] = UNLABELLED
    if frame_col is not None:
        labels = order_by_frame(path, frame_index_text(path, df[frame_col]), labels)
    if labels.shape[0] != n_frames:
        raise DataFormatError(
            path, f"{labels.shape[0]} labelled frames but the session has {n_frames} frames"
        )
    return labels.astype(np.int64), out


def _absent_what(absent: str, kept: list[str], background) -> str:
    if len(kept) == 1 and absent == f"not_{kept[0]}":
        return f"class {absent!r} (the frames where {kept[0]!r} is 0)"
    return f"background class {background!r} (or pass background=None)"
