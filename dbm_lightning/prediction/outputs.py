"""Reading back what ``dbm-predict`` wrote: its ``summary.json`` and the frames table of each
session (for ``dbm-evaluate`` and ``dbm-summarise``)."""

from __future__ import annotations

__all__ = ["SUMMARY_FILE", "frames_path", "read_frames_table", "read_summary", "valid_mask"]

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError

SUMMARY_FILE = "summary.json"
"""The file ``dbm-predict`` writes beside its tables (the sessions and their sources)."""

NUMBER_NA = ("", "nan", "NaN", "-nan", "NA", "null")
"""What reads as a missing number in a frames table's numeric columns (never in ``label``)."""


def read_summary(pred_dir: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a ``dbm-predict`` folder, checked: it lists at least one
    session and names the model's classes.

    Raises
    ------
    DataFormatError
        Naming the file: missing, not JSON, without ``sessions`` / ``class_names``, or empty.
    """
    path = Path(pred_dir) / SUMMARY_FILE
    if not path.is_file():
        raise DataFormatError(
            path, "not a dbm-predict folder (no summary.json): run dbm-predict first"
        )
    try:
        summary = json.loads(path.read_text())
        summary["sessions"] = list(summary["sessions"])
        summary["class_names"] = [str(c) for c in summary["class_names"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataFormatError(path, f"malformed dbm-predict summary ({exc!r})") from None
    if not summary["sessions"]:
        raise DataFormatError(path, "the prediction folder holds no session")
    for i, entry in enumerate(summary["sessions"]):
        if not isinstance(entry, dict) or not all(k in entry for k in ("name", "frames_file")):
            raise DataFormatError(
                path, f"session entry {i} is not a dbm-predict session (name, frames_file)"
            )
    return summary


def frames_path(entry: dict[str, Any], pred_dir: str | Path) -> Path:
    """The frames table of a ``summary.json`` session entry: where the summary says, or in
    ``pred_dir`` under the same name when the folder was moved."""
    path = Path(entry["frames_file"])
    if not path.is_file():
        path = Path(pred_dir) / path.name
    return path


def read_frames_table(path: Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A frames table (CSV or Parquet), all columns or ``columns``, which must include what
    every reader needs: ``label`` and ``valid``.

    Raises
    ------
    DataFormatError
        Naming the file: missing, unreadable, or without one of the columns.
    """
    if not path.is_file():
        raise DataFormatError(path, "frames table listed in summary.json not found")
    wanted = list(dict.fromkeys(["label", "valid", *(columns or [])]))
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path, columns=None if columns is None else wanted)
        else:  # labels are text as written: a class named "NA", "None" or "01" stays itself
            header = pd.read_csv(path, nrows=0).columns
            keep = header if columns is None else [c for c in header if c in wanted]
            table = pd.read_csv(
                path,
                usecols=list(keep),
                dtype={"label": str},
                keep_default_na=False,
                na_values={c: NUMBER_NA for c in keep if c != "label"},
            )
    except Exception as exc:  # noqa: BLE001 - any parser error becomes one line
        raise DataFormatError(path, f"cannot read the frames table ({exc})") from None
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise DataFormatError(path, f"frames table lacks column(s) {missing}")
    return table


def valid_mask(table: pd.DataFrame) -> np.ndarray:
    """The frames table's ``valid`` column as booleans (``True``/``1`` in any spelling)."""
    column = table["valid"]
    if column.dtype == bool:
        return column.to_numpy()
    return column.astype(str).str.strip().str.lower().isin(["true", "1"]).to_numpy()
