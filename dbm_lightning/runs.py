"""The files a training run leaves in its output directory, shared by the runner, the
``dbm-train`` app and ``dbm-report`` (kept free of heavy imports)."""

from __future__ import annotations

import traceback
from pathlib import Path

from dbm_lightning.atomic import write_json_atomic

METRICS_FILE = "metrics.json"
"""Written by a run that finished: validation/test metrics, sessions, timings."""

FAILED_FILE = "failed.json"
"""Written by a run that raised: its error and traceback."""


def write_failure(output_dir: str | Path, exc: BaseException) -> Path:
    """Record why a run failed in ``failed.json`` beside its config (and drop a
    ``metrics.json`` that an earlier run left in the same folder: it no longer applies)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / METRICS_FILE).unlink(missing_ok=True)
    record = {
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": "".join(traceback.format_exception(exc)),
    }
    return write_json_atomic(output_dir / FAILED_FILE, record)


def clear_outcome(output_dir: str | Path) -> None:
    """Forget the outcome of an earlier run in the same folder (before a new one starts)."""
    for name in (METRICS_FILE, FAILED_FILE):
        (Path(output_dir) / name).unlink(missing_ok=True)
