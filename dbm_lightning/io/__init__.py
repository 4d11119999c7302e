"""Readers: DeepLabCut pose (CSV/H5), the original DBM ``.mat`` file, label CSVs, catalogues.

Every reader raises :class:`~dbm_lightning.errors.DataFormatError` naming the file and the
problem; parsed sessions are cached on disk by :func:`load_sessions` (see
:mod:`dbm_lightning.io.cache`).
"""

from __future__ import annotations

from dbm_lightning.io.cache import (
    READER_VERSION,
    cached_load,
    clear_cache,
    default_cache_dir,
    file_sha256,
)
from dbm_lightning.io.catalogue import (
    LoadResult,
    SessionEntry,
    SkippedSession,
    load_sessions,
    read_manifest,
    scan_folder,
)
from dbm_lightning.io.dbm_mat import load_dbm_mat
from dbm_lightning.io.dlc import load_dlc
from dbm_lightning.io.labels import load_labels

__all__ = [
    "READER_VERSION",
    "LoadResult",
    "SessionEntry",
    "SkippedSession",
    "cached_load",
    "clear_cache",
    "default_cache_dir",
    "file_sha256",
    "load_dbm_mat",
    "load_dlc",
    "load_labels",
    "load_sessions",
    "read_manifest",
    "scan_folder",
]
