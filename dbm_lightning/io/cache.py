"""On-disk cache of parsed sessions (``.npz`` arrays + ``.json`` metadata, no pickle).

An entry is keyed on the sha256 of the source file's bytes (streamed), its file name (the
session name is derived from it), the reader's settings (e.g. individual, fps) and
:data:`READER_VERSION`; editing a file, changing a setting or upgrading the readers therefore
misses the cache. Entries are written atomically (temporary file + rename); an unreadable entry
is ignored and rewritten.

Hashing a file costs about as much as reading its entry, so the hash is remembered: a small
``<stat key>.ref`` file per source, keyed on the file's absolute path, size, modification and
change times (ns), inode and device, holds its sha256. A file whose stat is unchanged is not
hashed again; any change of the stat (an edit, a copy over it, ``touch``) re-hashes it, and the
content hash then decides (same bytes: still a hit). A file modified in the last
:data:`SETTLE_NS` is hashed every time (its timestamps may not yet tell a later edit apart).

Loading an entry reads each array straight into its final buffer at the offset recorded in the
metadata when the entry was written (the ``.npz`` stays a standard, uncompressed NumPy archive
that ``np.load`` reads); an entry whose layout does not match is read with ``np.load``
(``allow_pickle=False``) or, when that fails too, ignored and rewritten.

Cache folder: ``cache_dir`` when given, else ``$DBM_LIGHTNING_CACHE/sessions``, else
``~/.cache/dbm_lightning/sessions``; ``cache_dir=False`` disables caching.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.atomic import write_atomic
from dbm_lightning.session import Session

READER_VERSION = 3
"""Bump when a reader's output changes: old cache entries are then ignored."""

CACHE_ENV = "DBM_LIGHTNING_CACHE"
SETTLE_NS = 2_000_000_000
"""A source modified (or its inode changed) less than this long ago is not remembered by its
stat: file timestamps are coarse (a few ms; 2 s on FAT), so a second edit within the same tick
would keep size and times. Such a file is simply hashed again next time."""

_CHUNK = 1 << 20
_REF_VERSION = 1
_LAYOUT_VERSION = 1
_DTYPE_KINDS = frozenset("biuf")  # plain numbers only: never objects (pickles)
_ALIGN = 64


def cache_root() -> Path:
    """The project's cache folder: ``$DBM_LIGHTNING_CACHE`` or ``~/.cache/dbm_lightning``
    (parsed sessions under ``sessions/``, generated synthetic data under ``synthetic/``)."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dbm_lightning"


def default_cache_dir() -> Path:
    """``$DBM_LIGHTNING_CACHE/sessions`` or ``~/.cache/dbm_lightning/sessions``."""
    return cache_root() / "sessions"


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


def _key_of(sha256: str, file_name: str, settings: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {
            "sha256": sha256,
            "file_name": file_name,
            "settings": dict(settings),
            "reader_version": READER_VERSION,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:40]


def cache_key(path: str | Path, settings: Mapping[str, Any]) -> str:
    """Key of ``path`` read with ``settings``: content hash + file name + settings + version
    (always hashes the file; :func:`cached_load` remembers the hash by the file's stat)."""
    return _key_of(file_sha256(path), Path(path).name, settings)


# ------------------------------------------------------------------------ remembered hashes


def _stat_fields(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _ref_path(directory: str, name: str, fields: list[int]) -> str:
    payload = json.dumps([_REF_VERSION, name, fields])
    return os.path.join(directory, f"{hashlib.sha256(payload.encode()).hexdigest()[:40]}.ref")


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def source_sha256(path: str | Path, directory: str | Path, st: os.stat_result | None = None) -> str:
    """sha256 of ``path``'s bytes, remembered in ``directory`` under the file's stat.

    The file is hashed only when no ``.ref`` of the cache folder has its current absolute
    path, size, mtime/ctime (ns), inode and device (``st``: its ``os.stat``, when known); the
    hash is then recorded (atomically) when the stat did not change while hashing and the file
    is older than :data:`SETTLE_NS`.
    """
    name = os.path.abspath(path)
    fields = _stat_fields(os.stat(name) if st is None else st)
    ref = _ref_path(os.fspath(directory), name, fields)
    try:
        record = json.loads(_read(ref))
        if record["path"] == name and record["stat"] == fields:
            return str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no record (or an unreadable one): hash, then (re)write it
    digest = file_sha256(name)
    after = os.stat(name)
    settled = time.time_ns() - max(after.st_mtime_ns, after.st_ctime_ns) > SETTLE_NS
    if settled and _stat_fields(after) == fields:
        text = json.dumps({"path": name, "stat": fields, "sha256": digest})
        with contextlib.suppress(OSError):  # a read-only or full cache only costs a re-hash
            os.makedirs(directory, exist_ok=True)
            write_atomic(ref, lambda tmp: tmp.write_text(text), fsync=False)
    return digest


# ---------------------------------------------------------------------------------- entries


def _npz_layout(npz: Path) -> dict[str, Any]:
    """Where each array's bytes start in an uncompressed ``.npz`` (for direct reads)."""
    arrays = {}
    with zipfile.ZipFile(npz) as zf, open(npz, "rb") as fh:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                return {}
            fh.seek(info.header_offset)
            local = fh.read(30)
            if local[:4] != b"PK\x03\x04":
                return {}
            start = (
                info.header_offset
                + 30
                + int.from_bytes(local[26:28], "little")
                + int.from_bytes(local[28:30], "little")
            )
            fh.seek(start)
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                return {}
            data = fh.tell()
            if fortran or dtype.kind not in _DTYPE_KINDS or dtype.hasobject:
                return {}
            fh.seek(start)
            header = fh.read(data - start).decode("latin-1")
            arrays[info.filename[: -len(".npy")]] = {
                "offset": start,
                "header": header,
                "dtype": dtype.str,
                "shape": list(shape),
            }
    return {"version": _LAYOUT_VERSION, "size": npz.stat().st_size, "arrays": arrays}


def save_sessions(sessions: list[Session], directory: str | Path, key: str, single: bool) -> bool:
    """Store ``sessions`` under ``key``; ``False`` (nothing written) if metadata is not JSON."""
    directory = Path(directory)
    meta: dict[str, Any] = {"reader_version": READER_VERSION, "single": single, "sessions": []}
    arrays: dict[str, np.ndarray] = {}
    for i, s in enumerate(sessions):
        arrays[f"pose_{i}"] = np.ascontiguousarray(s.pose)
        arrays[f"likelihood_{i}"] = np.ascontiguousarray(s.likelihood)
        if s.labels is not None:
            arrays[f"labels_{i}"] = np.ascontiguousarray(s.labels)
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
                "individuals": list(s.individuals),
            }
        )
    try:
        json.dumps(meta)
    except (TypeError, ValueError):
        return False
    directory.mkdir(parents=True, exist_ok=True)

    def write_npz(tmp: Path) -> None:
        np.savez(tmp, **arrays)
        meta["layout"] = _npz_layout(tmp)

    write_atomic(directory / f"{key}.npz", write_npz, fsync=False)
    text = json.dumps(meta)
    write_atomic(directory / f"{key}.json", lambda tmp: tmp.write_text(text), fsync=False)
    return True


def _read_arrays(npz_path: str | Path, layout: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays of an entry read straight into their final buffers (one ``preadv`` each,
    every array of the entry in one allocation), or ``None`` when the file does not have the
    recorded layout (size, npy headers)."""
    if not layout or layout.get("version") != _LAYOUT_VERSION or not hasattr(os, "preadv"):
        return None
    specs = []
    total = 0
    for name, a in layout["arrays"].items():
        dtype = np.dtype(a["dtype"])
        if dtype.kind not in _DTYPE_KINDS or dtype.hasobject:
            return None
        shape = tuple(int(n) for n in a["shape"])
        nbytes = math.prod(shape) * dtype.itemsize
        specs.append((name, dtype, shape, total, nbytes, a["header"].encode("latin-1"), a))
        total += -(-nbytes // _ALIGN) * _ALIGN  # each array at a multiple of 64 bytes
    buffer = np.empty(total, dtype=np.uint8)
    out: dict[str, np.ndarray] = {}
    fd = os.open(npz_path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size != layout["size"]:
            return None
        for name, dtype, shape, start, nbytes, header, a in specs:
            head = bytearray(len(header))
            data = buffer[start : start + nbytes]
            want = len(header) + nbytes
            if os.preadv(fd, [head, data], int(a["offset"])) != want or head != header:
                return None
            out[name] = data.view(dtype).reshape(shape)
    finally:
        os.close(fd)
    return out


def _record_layout(meta_path: str | Path, meta: dict[str, Any], npz_path: str | Path) -> None:
    """Add the layout of a readable ``.npz`` to its metadata (so the next load reads directly)."""
    with contextlib.suppress(OSError, ValueError, zipfile.BadZipFile):
        meta["layout"] = _npz_layout(Path(npz_path))
        text = json.dumps(meta)
        write_atomic(meta_path, lambda tmp: tmp.write_text(text), fsync=False)


def _read_npz(npz_path: str | Path) -> dict[str, np.ndarray]:
    with np.load(npz_path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def load_cached_sessions(
    directory: str | Path, key: str, source: Path | None = None
) -> tuple[list[Session], bool] | None:
    """The sessions stored under ``key`` and whether a single one was cached; ``None`` on a miss."""
    base = os.path.join(directory, key)
    meta_path, npz_path = base + ".json", base + ".npz"
    try:
        meta = json.loads(_read(meta_path))
        if meta.get("reader_version") != READER_VERSION:
            return None
        arrays = _read_arrays(npz_path, meta.get("layout"))
        if arrays is None:  # an entry of an older version, or not the recorded file
            arrays = _read_npz(npz_path)
            _record_layout(meta_path, meta, npz_path)
        sessions = []
        for i, m in enumerate(meta["sessions"]):
            sessions.append(
                Session(
                    pose=arrays[f"pose_{i}"],
                    likelihood=arrays[f"likelihood_{i}"],
                    bodyparts=tuple(m["bodyparts"]),
                    name=m["name"],
                    labels=arrays.get(f"labels_{i}"),
                    label_names=m["label_names"],
                    mouse=m["mouse"],
                    day=m["day"],
                    condition=m["condition"],
                    fps=m["fps"],
                    source=source,
                    extra=m["extra"],
                    individuals=tuple(m["individuals"]),
                )
            )
        return sessions, bool(meta["single"])
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
        return None  # missing or unreadable entry: re-parse and overwrite


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
    path = path if isinstance(path, Path) else Path(path)
    directory = resolve_cache_dir(cache_dir)
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if directory is None or st is None or not stat.S_ISREG(st.st_mode):
        return reader(path)  # the reader reports a missing file its own way
    key = _key_of(source_sha256(path, directory, st), path.name, settings)
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
        if p.suffix in (".npz", ".json", ".ref", ".tmp") or ".tmp-" in p.name:
            p.unlink(missing_ok=True)
            n += 1
    return n


__all__ = [
    "READER_VERSION",
    "SETTLE_NS",
    "cache_key",
    "cached_load",
    "clear_cache",
    "default_cache_dir",
    "file_sha256",
    "load_cached_sessions",
    "resolve_cache_dir",
    "save_sessions",
    "source_sha256",
]
