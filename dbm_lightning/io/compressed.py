"""Compressed text files (``.gz``, ``.bz2``, ``.xz``) read as if they were plain, and the
suffixes that name what a file holds (``X.csv.xz`` is a CSV file named ``X``)."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zlib
from pathlib import Path

from dbm_lightning.errors import DataFormatError

COMPRESSIONS = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
"""Compression suffix -> the function that restores the file's bytes."""


def kind_suffix(path: str | Path) -> str:
    """The lower-case suffix that says what a file holds, a compression suffix included:
    ``.csv`` for ``X.csv``, ``.csv.xz`` for ``X.csv.xz``, ``.h5`` for ``X.h5``."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if not suffixes:
        return ""
    if suffixes[-1] in COMPRESSIONS and len(suffixes) >= 2:
        return "".join(suffixes[-2:])
    return suffixes[-1]


def file_stem(path: str | Path) -> str:
    """The file name without :func:`kind_suffix` (``X`` for ``X.csv.xz`` and ``X.csv``)."""
    name = Path(path).name
    suffix = kind_suffix(path)
    return name[: len(name) - len(suffix)] if suffix else name


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, decompressed when its name ends in ``.gz``, ``.bz2`` or ``.xz``.

    Raises
    ------
    DataFormatError
        When the file cannot be read or its compressed data is corrupted or truncated.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    decompress = COMPRESSIONS.get(path.suffix.lower())
    if decompress is None:
        return data
    try:
        return decompress(data)
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise DataFormatError(
            path, f"corrupted or truncated {path.suffix.lower()} data ({exc})"
        ) from None
