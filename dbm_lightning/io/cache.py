"""On-disk cache of parsed sessions (``.npz`` arrays + ``.json`` metadata, no pickle).

An entry is keyed on the sha256 of the source file's bytes (streamed), its file name (the
session name is derived from it), the reader's settings (e.g. individual, fps) and
:data:`READER_VERSION`; editing a file, changing a setting or upgrading the readers therefore
misses the cache. Entries are written atomically (temporary file + rename); an unreadable entry
is ignored and rewritten.

Cache folder: ``cache_dir`` when given, else ``$DBM_LIGHTNING_CACHE/sessions``, else
``~/.cache/dbm_lightning/sessions``; ``cache_dir=False`` disables caching.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.session import Session

READER_VERSION = 1
"""Bump when a reader's output changes: old cache entries are then ignored."""

CACHE_ENV = "DBM_LIGHTNING_CACHE"
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """``$DBM_LIGHTNING_CACHE/sessions`` or ``~/.cache/dbm_lightning/sessions``."""
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "dbm_lightning"
    return base / "sessions"


def resolve_cache_dir(cache_dir: str | Path | bool | None) -> Path | None:
    """``None``/``True`` -> the default folder, ``False`` -> ``None`` (disabled), else the path."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    return Path(cache_dir).expanduser()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(path: str | Path, settings: Mapping[str, Any]) -> str:
    """Key of ``path`` read with ``settings``: content hash + file name + settings + version."""
    payload = json.dumps(
        {
            "sha256": file_sha256(path),
            "file_name": Path(path).name,
            "settings": dict(settings),
            "reader_version": READER_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


def _atomic_write(target: Path, write: Callable[[Any], None], mode: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_sessions(sessions: list[Session], directory: str | Path, key: str, single: bool) -> bool:
    """Store ``sessions`` under ``key``; ``False`` (nothing written) if metadata is not JSON."""
    directory = Path(directory)
    meta = {"reader_version": READER_VERSION, "single": single, "sessions": []}
    arrays: dict[str, np.ndarray] = {}
    for i, s in enumerate(sessions):
        arrays[f"pose_{i}"] = s.pose
        arrays[f"likelihood_{i}"] = s.likelihood
        if s.labels is not None:
            arrays[f"labels_{i}"] = s.labels
        meta["sessions"].append(
            {
                "name": s.name,
                "bodyparts": list(s.bodyparts),
                "label_names": list(s.label_names) if s.label_names is not None else None,
                "mouse": s.mouse,
                "day": s.day,
                "condition": s.condition,
                "fps": s.fps,
                "extra": s.extra,
            }
        )
    try:
        text = json.dumps(meta)
    except (TypeError, ValueError):
        return False
    directory.mkdir(parents=True, exist_ok=True)
    _atomic_write(directory / f"{key}.npz", lambda fh: np.savez(fh, **arrays), "wb")
    _atomic_write(directory / f"{key}.json", lambda fh: fh.write(text), "w")
    return True


def load_cached_sessions(
    directory: str | Path, key: str, source: Path | None = None
) -> tuple[list[Session], bool] | None:
    """The sessions stored under ``key`` and whether a single one was cached; ``None`` on a miss."""
    directory = Path(directory)
    meta_path, npz_path = directory / f"{key}.json", directory / f"{key}.npz"
    if not (meta_path.is_file() and npz_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("reader_version") != READER_VERSION:
            return None
        sessions = []
        with np.load(npz_path, allow_pickle=False) as npz:
            for i, m in enumerate(meta["sessions"]):
                labels_key = f"labels_{i}"
                sessions.append(
                    Session(
                        pose=npz[f"pose_{i}"],
                        likelihood=npz[f"likelihood_{i}"],
                        bodyparts=tuple(m["bodyparts"]),
                        name=m["name"],
                        labels=npz[labels_key] if labels_key in npz.files else None,
                        label_names=m["label_names"],
                        mouse=m["mouse"],
                        day=m["day"],
                        condition=m["condition"],
                        fps=m["fps"],
                        source=source,
                        extra=m["extra"],
                    )
                )
        return sessions, bool(meta["single"])
    except (OSError, ValueError, KeyError, TypeError, json.JSONDecodeError):
        return None  # unreadable entry: re-parse and overwrite


def cached_load(
    path: str | Path,
    reader: Callable[[Path], Session | list[Session]],
    settings: Mapping[str, Any],
    cache_dir: str | Path | bool | None = None,
) -> Session | list[Session]:
    """``reader(path)``, served from the cache when this file was read with ``settings`` before.

    Parameters
    ----------
    path
        Source file.
    reader
        Function parsing ``path`` into a session or a list of sessions (e.g. ``load_dlc`` with
        its options bound, or ``load_dbm_mat``). Errors it raises are not cached.
    settings
        Everything that changes the reader's output (reader name, individual, fps, ...).
    cache_dir
        See :func:`resolve_cache_dir`.
    """
    path = Path(path)
    directory = resolve_cache_dir(cache_dir)
    if directory is None or not path.is_file():
        return reader(path)
    key = cache_key(path, settings)
    hit = load_cached_sessions(directory, key, source=path)
    if hit is not None:
        sessions, single = hit
        return sessions[0] if single else sessions
    result = reader(path)
    single = isinstance(result, Session)
    sessions = [result] if single else list(result)
    with contextlib.suppress(OSError):  # a read-only or full cache must not stop the load
        save_sessions(sessions, directory, key, single)
    return result


def clear_cache(cache_dir: str | Path | bool | None = None) -> int:
    """Delete every cache entry in the folder; returns the number of files removed."""
    directory = resolve_cache_dir(cache_dir)
    if directory is None or not directory.is_dir():
        return 0
    n = 0
    for p in directory.iterdir():
        if p.suffix in (".npz", ".json", ".tmp"):
            p.unlink(missing_ok=True)
            n += 1
    return n


__all__ = [
    "READER_VERSION",
    "cache_key",
    "cached_load",
    "clear_cache",
    "default_cache_dir",
    "file_sha256",
    "load_cached_sessions",
    "resolve_cache_dir",
    "save_sessions",
]
