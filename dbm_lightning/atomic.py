"""Atomic file output: a file is either its old version (or absent) or complete, never half
written, whatever interrupts the process (an exception, Ctrl-C, SIGKILL, a full disk).

Everything the framework writes for later reading (``metrics.json``, prediction tables,
microstate centroids, checkpoints, reports) goes through :func:`atomic_path`: the content is
written to a hidden temporary file in the target's folder, flushed to disk, and renamed onto
the target with :func:`os.replace`, which POSIX and Windows perform atomically within one
file system.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TMP_MARKER = ".tmp-"
"""Part of every temporary name (``.<stem>.tmp-<hex><suffix>``), for clean-up and tests."""


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write instead of ``target``; on a clean exit move it onto
    ``target`` in one step, on any exception remove it and leave ``target`` untouched.

    The temporary name keeps ``target``'s suffix, so writers that infer the format from the
    name (``savefig``, ``to_parquet``, ``np.savez``) behave as for the target.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.stem}{TMP_MARKER}{uuid.uuid4().hex[:12]}{target.suffix}")
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"{tmp}: the writer did not create the temporary file")
        if fsync:
            _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(target: str | Path, write: Callable[[Path], Any], fsync: bool = True) -> Path:
    """Call ``write(tmp_path)`` and move the result onto ``target`` atomically; return it."""
    with atomic_path(target, fsync=fsync) as tmp:
        write(tmp)
    return Path(target)


def write_text_atomic(target: str | Path, text: str) -> Path:
    """``Path.write_text``, atomically."""
    return write_atomic(target, lambda tmp: tmp.write_text(text))


def write_json_atomic(target: str | Path, obj: Any, **dumps_kwargs: Any) -> Path:
    """``json.dumps(obj)`` into ``target`` atomically (``indent=2`` unless given)."""
    dumps_kwargs.setdefault("indent", 2)
    return write_text_atomic(target, json.dumps(obj, **dumps_kwargs))
