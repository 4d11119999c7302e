"""Find session files (folder scan or manifest CSV) and load them, skipping corrupted ones.

* :func:`scan_folder` matches file stems against a pattern such as ``"{mouse}_day{day}"``
  (``{day}`` is an integer; other fields are text). The pattern must match a *prefix* of the
  stem followed by the end, ``DLC`` (DeepLabCut appends ``DLC_resnet50...`` to the video
  name) or a non-alphanumeric character, so ``m01_day3DLC_resnet50_x_filtered.h5`` gives
  mouse ``m01``, day 3. Fields other than ``mouse``/``day``/``condition`` go to ``extra``.
* :func:`read_manifest` reads ``path,mouse,day,condition`` (+ optional ``name`` and any extra
  columns, kept in ``extra``); relative paths are resolved against the manifest's folder.
* :func:`load_sessions` reads the entries (through the on-disk cache) into sessions whose
  metadata comes from the entries.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.cache import cached_load
from dbm_lightning.io.compressed import file_stem, kind_suffix
from dbm_lightning.io.dlc import H5_SUFFIXES
from dbm_lightning.io.readers import POSE_SUFFIXES, load_pose, pose_format
from dbm_lightning.io.text_tables import read_text_csv
from dbm_lightning.session import Session

MANIFEST_COLUMNS = ("path", "mouse", "day", "condition")
LABEL_MARKER = ".labels."
"""A file named ``X.labels.<ext>`` holds the labels of ``X.<ext>`` (never read as pose)."""
_COMPANIONS = ("manifest.csv",)
_METADATA_SUFFIXES = (".json", ".yaml", ".yml", ".md")
_LOG = logging.getLogger(__name__)
_PROGRESS_MIN = 4
_MAX_WORKERS = 4
_FIELD = re.compile(r"\{(\w+)\}")


@dataclass
class SessionEntry:
    """One session file and its metadata, before it is read.

    ``name`` (optional, an addition to the contract) is the session name to use; when ``None``
    it is ``{mouse}_day{day}`` when both are known, else the name the reader gives. ``fps``
    (optional) is this recording's frame rate, over the source's.
    """

    path: Path
    mouse: str | None = None
    day: int | None = None
    condition: str | None = None
    extra: dict = field(default_factory=dict)
    name: str | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if self.fps is not None:
            self.fps = float(self.fps)
        if self.day is not None:
            self.day = int(self.day)


@dataclass(frozen=True)
class SkippedSession:
    """A session file that could not be read, and why."""

    path: Path
    reason: str

    def to_dict(self) -> dict[str, str]:
        """``{"path", "reason"}`` as strings (JSON-able)."""
        return {"path": str(self.path), "reason": self.reason}


@dataclass
class LoadResult:
    """Sessions read by :func:`load_sessions` and the files skipped as corrupted."""

    sessions: list[Session]
    skipped: list[SkippedSession] = field(default_factory=list)

    def skipped_table(self) -> list[dict[str, str]]:
        """The skipped files as JSON-able rows ``{"path", "reason"}`` (for run outputs)."""
        return [s.to_dict() for s in self.skipped]

    def __len__(self) -> int:
        return len(self.sessions)


# ------------------------------------------------------------------------- folder scan


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Regex for a file-stem pattern: ``{day}`` -> digits, other ``{field}`` -> text."""
    parts = []
    pos = 0
    seen: set[str] = set()
    for m in _FIELD.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        name = m.group(1)
        if name in seen:
            raise ValueError(f"pattern {pattern!r} uses field {{{name}}} twice")
        seen.add(name)
        parts.append(rf"(?P<{name}>\d+)" if name == "day" else rf"(?P<{name}>.+?)")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(parts) + r"(?=$|DLC|[^A-Za-z0-9])")


def match_fields(match: re.Match[str]) -> dict:
    """``mouse``, ``day`` (an integer), ``condition`` and ``extra`` (the other fields) of a
    :func:`pattern_regex` match, as :class:`SessionEntry` takes them."""
    fields = match.groupdict()
    day = fields.pop("day", None)
    return {
        "mouse": fields.pop("mouse", None),
        "day": int(day) if day is not None else None,
        "condition": fields.pop("condition", None),
        "extra": fields,
    }


def scan_folder(
    folder: str | Path,
    pattern: str = "{mouse}_day{day}",
    suffixes: Sequence[str] = POSE_SUFFIXES,
) -> list[SessionEntry]:
    """Session files in ``folder`` (not recursive) whose stem matches ``pattern``.

    Pose files are those of the registered formats
    (:data:`~dbm_lightning.io.readers.POSE_SUFFIXES`, ``.csv.xz`` and the other compressed
    CSVs included); the stem is the name without that suffix. ``X.labels.<ext>`` label files,
    ``manifest.csv`` and metadata (``.json``, ``.yaml``, ``.md``) are not pose. When the same
    stem exists with several suffixes (``X.csv`` and ``X.h5``) only one is kept: ``.h5``
    first, then ``suffixes`` order. Every other file -- of another kind, or a pose file whose
    stem does not match ``pattern`` -- is named in one logged warning, never silently left
    out. Entries are sorted by mouse, day and file name.

    Raises
    ------
    DataFormatError
        When the folder does not exist or no file matches.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, "session folder not found")
    regex = pattern_regex(pattern)
    wanted = [s.lower() for s in suffixes]
    rank = {s: i for i, s in enumerate(sorted(wanted, key=lambda s: s not in H5_SUFFIXES))}
    chosen: dict[str, tuple[Path, str]] = {}
    other_kind: list[str] = []
    for p in sorted(folder.iterdir()):
        low = p.name.lower()
        if p.name.startswith(".") or not p.is_file():
            continue
        if LABEL_MARKER in low or low in _COMPANIONS or p.suffix.lower() in _METADATA_SUFFIXES:
            continue
        suffix = kind_suffix(p) if pose_format(p) is not None else ""
        if suffix not in rank:
            other_kind.append(p.name)
            continue
        stem = file_stem(p)
        prev = chosen.get(stem)
        if prev is None or rank[suffix] < rank[prev[1]]:
            chosen[stem] = (p, suffix)
    entries = []
    unmatched = []
    for stem, (p, _suffix) in chosen.items():
        m = regex.match(stem)
        if m is None:
            unmatched.append(p.name)
            continue
        entries.append(SessionEntry(path=p, name=m.group(0), **match_fields(m)))
    if not entries:
        raise DataFormatError(
            folder,
            f"no session file matches pattern {pattern!r} ({len(chosen)} pose file(s) with "
            f"suffixes {list(suffixes)}; {len(other_kind)} other file(s))",
        )
    _log_left_out(folder, other_kind, "not a pose format this project reads")
    _log_left_out(folder, unmatched, f"name does not match pattern {pattern!r}")
    entries.sort(key=lambda e: (e.mouse or "", e.day if e.day is not None else -1, e.path.name))
    return entries


def _log_left_out(folder: Path, names: list[str], why: str, shown: int = 5) -> None:
    """One warning naming the files of ``folder`` a scan leaves out, and why."""
    if not names:
        return
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    _LOG.warning(
        "%s: %d file(s) left out (%s): %s%s",
        folder,
        len(names),
        why,
        ", ".join(names[:shown]),
        more,
    )


# ---------------------------------------------------------------------------- manifest


def read_manifest(csv: str | Path) -> list[SessionEntry]:
    """Entries from a manifest CSV with columns ``path,mouse,day,condition``.

    Optional ``name`` column -> the session name, ``fps`` -> the recording's frame rate
    (recordings made at different rates); other columns -> ``extra``. Empty
    ``mouse``/``condition``/``day``/``fps`` cells give ``None``.
    """
    csv = Path(csv)
    df = read_text_csv(csv, "manifest")
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataFormatError(csv, f"manifest lacks column(s) {missing} (has {list(df.columns)})")
    if df.empty:
        raise DataFormatError(csv, "manifest lists no sessions")
    entries = []
    extra_cols = [c for c in df.columns if c not in (*MANIFEST_COLUMNS, "name", "fps")]
    for i, row in enumerate(df.to_dict("records")):  # one loop per session, not per frame
        text = {k: str(v).strip() for k, v in row.items()}
        if not text["path"]:
            raise DataFormatError(csv, f"row {i + 2}: empty path")
        p = Path(text["path"]).expanduser()
        if not p.is_absolute():
            p = csv.parent / p
        day = text["day"]
        if day and not re.fullmatch(r"-?\d+", day):
            raise DataFormatError(csv, f"row {i + 2}: day {day!r} is not an integer")
        fps = _positive_number(text.get("fps", ""))
        if fps is False:
            raise DataFormatError(csv, f"row {i + 2}: fps {text['fps']!r} is not a positive number")
        entries.append(
            SessionEntry(
                path=p,
                mouse=text["mouse"] or None,
                day=int(day) if day else None,
                condition=text["condition"] or None,
                extra={c: text[c] for c in extra_cols},
                name=text.get("name") or None,
                fps=fps or None,
            )
        )
    return entries


def _positive_number(text: str) -> float | None | bool:
    """``text`` as a positive finite float, ``None`` when empty, ``False`` when not one."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return False
    return value if 0 < value < float("inf") else False


# ------------------------------------------------------------------------------ loading


def _read_entry(
    entry: SessionEntry,
    cache_dir: str | Path | bool | None,
    individuals: Sequence[str] | None,
    fps: float | None,
) -> Session:
    path = entry.path
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    fmt = pose_format(path)
    settings = {
        "reader": fmt.name if fmt is not None else None,
        "individuals": list(individuals) if individuals else None,
        "fps": fps,
    }
    try:
        session = cached_load(
            path, lambda p: load_pose(p, individuals=individuals, fps=fps), settings, cache_dir
        )
    except DataFormatError:
        raise
    except (OSError, ValueError) as exc:  # anything else a reader lets through
        raise DataFormatError(path, f"{type(exc).__name__}: {exc}") from None
    return session


def default_workers() -> int:
    """Reader threads of :func:`load_sessions`: the usable CPU cores, at most 4."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(_MAX_WORKERS, cores))


def _settle(fn: Callable[[SessionEntry], Session], entry: SessionEntry) -> Future:
    """``fn(entry)`` as a completed future (its result or its exception)."""
    future: Future = Future()
    try:
        future.set_result(fn(entry))
    except Exception as exc:  # noqa: BLE001 - handed to the caller, as from a thread
        future.set_exception(exc)
    return future


def _in_order(
    fn: Callable[[SessionEntry], Session], entries: list[SessionEntry], workers: int
) -> Iterator[Future]:
    """``fn(entry)`` of every entry as completed futures, in the entries' order.

    With ``workers > 1`` a pool of threads reads ahead, a few consecutive entries per task (so
    that short reads do not spend their time handing over the GIL), at most ``2 * workers``
    tasks ahead of the caller: one that stops early leaves only those to finish.
    """
    if workers <= 1 or len(entries) <= 1:
        for entry in entries:
            yield _settle(fn, entry)
        return
    per_task = max(1, min(8, len(entries) // (4 * workers)))
    batches = (entries[i : i + per_task] for i in range(0, len(entries), per_task))

    def run(batch: list[SessionEntry]) -> list[Future]:
        return [_settle(fn, e) for e in batch]

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dbm-load") as pool:
        window: deque[Future] = deque(
            pool.submit(run, b) for b in itertools.islice(batches, 2 * workers)
        )
        try:
            while window:
                task = window.popleft()
                nxt = next(batches, None)
                if nxt is not None:
                    window.append(pool.submit(run, nxt))
                yield from task.result()
        finally:
            for task in window:
                task.cancel()


def _session_name(entry: SessionEntry, session: Session) -> str:
    if entry.name:
        return entry.name
    if entry.mouse is not None and entry.day is not None:
        return f"{entry.mouse}_day{entry.day}"
    return session.name


def load_sessions(
    entries: Iterable[SessionEntry],
    skip_corrupted: bool = False,
    cache_dir: str | Path | bool | None = None,
    individuals: Sequence[str] | None = None,
    fps: float | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> LoadResult:
    """Read pose session files (any registered format); mouse/day/condition/name come from
    the entries.

    Parameters
    ----------
    entries
        From :func:`scan_folder` or :func:`read_manifest`.
    skip_corrupted
        When true, a file that cannot be read is skipped with a ``warnings.warn`` naming it and
        the reason, and listed in ``LoadResult.skipped``; otherwise its
        :class:`DataFormatError` is raised.
    cache_dir
        On-disk cache folder (see :mod:`dbm_lightning.io.cache`); ``False`` disables it.
    individuals, fps
        Passed to :func:`~dbm_lightning.io.readers.load_pose` (an entry's own ``fps``, from a
        manifest column, wins over ``fps``).
    progress
        Show a tqdm bar when there are more than a few entries.
    workers
        Files read at once by a pool of threads (the parsers and file reads release the GIL);
        default :func:`default_workers`, ``1`` reads one after the other. The result, the
        warnings and the error raised (the first bad entry's) do not depend on it.

    Session names are made unique: a name already taken falls back to the file stem.
    """
    entries = list(entries)
    bar = None
    if progress and len(entries) >= _PROGRESS_MIN:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(entries), desc="loading sessions", unit="file")
    sessions: list[Session] = []
    skipped: list[SkippedSession] = []
    names: set[str] = set()
    n_workers = default_workers() if workers is None else max(1, int(workers))
    results = _in_order(
        lambda e: _read_entry(e, cache_dir, individuals, e.fps or fps), entries, n_workers
    )
    with contextlib.closing(results), contextlib.ExitStack() as stack:
        if bar is not None:
            stack.callback(bar.close)
        for entry, future in zip(entries, results, strict=True):
            if bar is not None:
                bar.update()
            try:
                session = future.result()
            except DataFormatError as exc:
                if not skip_corrupted:
                    raise
                reason = exc.problem
                warnings.warn(f"skipping {entry.path}: {reason}", stacklevel=2)
                skipped.append(SkippedSession(entry.path, reason))
                continue
            name = _session_name(entry, session)
            if name in names:
                stem = file_stem(entry.path)
                name, k = stem, 2
                while name in names:
                    name, k = f"{stem}_{k}", k + 1
            names.add(name)
            extra = {**session.extra, **entry.extra}
            sessions.append(
                replace(
                    session,
                    name=name,
                    mouse=entry.mouse,
                    day=entry.day,
                    condition=entry.condition,
                    extra=extra,
                    source=entry.path,
                )
            )
    return LoadResult(sessions=sessions, skipped=skipped)
