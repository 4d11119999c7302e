"""DeepLabCut pose files (CSV and H5) -> :class:`~dbm_lightning.session.Session`.

DLC writes one column per (body part, coordinate), with 3 header rows ``scorer``,
``bodyparts``, ``coords`` (single animal) or 4 rows ``scorer``, ``individuals``, ``bodyparts``,
``coords`` (multi-animal), then one row per frame whose first cell is the frame index. The H5
file holds the same table (pandas/PyTables, key ``df_with_missing``) with MultiIndex columns.

The CSV header rows are parsed here, not by pandas: ``pd.read_csv(header=[0, 1, 2])`` takes an
all-empty first data row for an index-name row and silently drops a frame.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError
from dbm_lightning.session import Session

H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
H5_KEY = "df_with_missing"
_LEVELS_SINGLE = ("scorer", "bodyparts", "coords")
_LEVELS_MULTI = ("scorer", "individuals", "bodyparts", "coords")
_HEADER_NAMES = frozenset(_LEVELS_MULTI)


def load_dlc(path: str | Path, individual: str | None = None, fps: float | None = None) -> Session:
    """Read one DeepLabCut output file (``.csv`` or ``.h5``) into a :class:`Session`.

    Parameters
    ----------
    path
        The DLC file; ``.h5``/``.hdf5`` are read with pandas/PyTables, anything else as CSV.
    individual
        For multi-animal files, which individual to keep (default: the first one in the file).
        Naming one for a single-animal file is an error.
    fps
        Frame rate to record on the session (DLC files do not store it).

    Returns
    -------
    Session
        ``pose`` (frames, parts, 2) float32 with NaN where DLC wrote no value, ``likelihood``
        (0 where missing, ones when the file has no likelihood column), body parts in file
        order, ``name`` = file stem with the DLC scorer suffix removed, ``source`` = path and
        ``extra`` = ``{"scorer", "individual", "individuals"}``.

    Raises
    ------
    DataFormatError
        Naming the file and the problem (empty, bad header, non-numeric cell, truncated row,
        body part never tracked, unknown individual, unreadable H5, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.suffix.lower() in H5_SUFFIXES:
        header, values = _read_h5(path)
    else:
        header, values = _read_csv(path)
    return _build_session(path, header, values, individual=individual, fps=fps)


# ----------------------------------------------------------------------------------- CSV


def _line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without ``\\r\\n``) byte offsets of every line of ``buf``."""
    newlines = np.flatnonzero(buf == ord("\n"))
    ends = newlines
    if buf.size and (newlines.size == 0 or newlines[-1] != buf.size - 1):
        ends = np.append(newlines, buf.size)
    starts = np.concatenate([[0], newlines + 1])[: ends.size]
    # drop a trailing '\r' (Windows line endings)
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == ord("\r"))
    return starts, ends - has_cr.astype(ends.dtype)


def _read_csv(path: Path) -> tuple[dict[str, list[str]], np.ndarray]:
    """Header levels (name -> one entry per data column) and the (frames, columns) float block."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    if not data.strip():
        raise DataFormatError(path, "file is empty")
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_bounds(buf)

    # --- header rows, parsed explicitly
    n_look = min(5, starts.size)
    head_text = data[: ends[n_look - 1]]
    try:
        head_lines = head_text.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataFormatError(path, "not a text CSV file (cannot decode as UTF-8)") from None
    rows = list(csv.reader(head_lines))
    first = [r[0].strip().lower() if r else "" for r in rows]
    if not first or first[0] != "scorer":
        raise DataFormatError(
            path,
            f"missing DeepLabCut header rows: line 1 starts with {first[0] if first else ''!r}, "
            "expected 'scorer' (DLC CSV has header rows scorer/bodyparts/coords, or "
            "scorer/individuals/bodyparts/coords for multi-animal projects)",
        )
    levels = _LEVELS_MULTI if len(first) > 1 and first[1] == "individuals" else _LEVELS_SINGLE
    for i, name in enumerate(levels):
        if i >= len(first) or first[i] != name:
            found = first[i] if i < len(first) else "end of file"
            raise DataFormatError(
                path,
                f"missing DeepLabCut header row {name!r}: line {i + 1} starts with {found!r} "
                f"(expected header rows {'/'.join(levels)})",
            )
    n_header = len(levels)
    n_cells = len(rows[0])
    for i in range(n_header):
        if len(rows[i]) != n_cells:
            raise DataFormatError(
                path,
                f"header row {levels[i]!r} (line {i + 1}) has {len(rows[i])} cells, "
                f"row 'scorer' has {n_cells}",
            )
    if n_cells < 2:
        raise DataFormatError(path, "header rows name no data columns")
    header = {name: [c.strip() for c in rows[i][1:]] for i, name in enumerate(levels)}
    # pandas writes an index-name row (e.g. 'frame,,,') when the index was named: skip it
    if len(rows) > n_header:
        extra_row = rows[n_header]
        if extra_row and not _is_number(extra_row[0]) and not any(c.strip() for c in extra_row[1:]):
            n_header += 1

    # --- data lines: check cell counts (truncation, blank lines) without a loop per line
    d_starts, d_ends = starts[n_header:], ends[n_header:]
    nonblank = np.flatnonzero(d_ends > d_starts)
    if nonblank.size == 0:
        raise DataFormatError(path, "no data rows after the header")
    last = nonblank[-1]
    d_starts, d_ends = d_starts[: last + 1], d_ends[: last + 1]  # trailing blank lines are fine
    blank = np.flatnonzero(d_ends == d_starts)
    if blank.size:
        raise DataFormatError(
            path, f"line {n_header + blank[0] + 1} is empty (blank line inside the data)"
        )
    commas = np.flatnonzero(buf == ord(","))
    n_fields = np.searchsorted(commas, d_ends) - np.searchsorted(commas, d_starts) + 1
    bad = np.flatnonzero(n_fields != n_cells)
    if bad.size:
        i = int(bad[0])
        what = "fewer" if n_fields[i] < n_cells else "more"
        hint = " (the file looks truncated)" if i == n_fields.size - 1 and what == "fewer" else ""
        raise DataFormatError(
            path,
            f"line {n_header + i + 1} (data row {i}) has {n_fields[i]} cells, {what} than the "
            f"{n_cells} of the header{hint}",
        )
    n_frames = int(n_fields.size)

    # --- numeric block (index column excluded)
    usecols = list(range(1, n_cells))
    try:
        block = pd.read_csv(
            io.BytesIO(data),
            header=None,
            skiprows=n_header,
            usecols=usecols,
            dtype=np.float64,
            skip_blank_lines=True,
            engine="c",
        )
    except (ValueError, TypeError):
        block = None
    except Exception as exc:  # pandas ParserError and friends
        raise DataFormatError(path, f"cannot parse the data rows ({exc})") from None
    if block is None:
        _raise_non_numeric(path, data, n_header, usecols, header)
    values = block.to_numpy(dtype=np.float64)
    if values.shape[0] != n_frames:
        raise DataFormatError(
            path, f"parsed {values.shape[0]} data rows but the file has {n_frames} lines of data"
        )
    return header, values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _raise_non_numeric(
    path: Path, data: bytes, n_header: int, usecols: list[int], header: dict[str, list[str]]
) -> None:
    """Locate the first non-numeric cell and raise a DataFormatError naming its row/column."""
    try:
        text = pd.read_csv(
            io.BytesIO(data),
            header=None,
            skiprows=n_header,
            usecols=usecols,
            dtype=str,
            keep_default_na=False,
            engine="c",
        )
    except Exception as exc:
        raise DataFormatError(path, f"cannot parse the data rows ({exc})") from None
    strings = text.to_numpy(dtype=object)
    numeric = text.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce")).to_numpy()
    empty = np.isin(strings, ["", "nan", "NaN", "NAN", "NA", "null", "None"])
    bad = np.argwhere(np.isnan(numeric.astype(np.float64)) & ~empty)
    if bad.size == 0:  # should not happen: the float parse failed for another reason
        raise DataFormatError(path, "data rows could not be parsed as numbers")
    r, c = (int(v) for v in bad[0])
    col_name = " ".join(header[level][c] for level in header if level != "scorer")
    raise DataFormatError(
        path,
        f"non-numeric value {strings[r, c]!r} at line {n_header + r + 1} (data row {r}), "
        f"column {c + 2} ({col_name})",
    )


# ------------------------------------------------------------------------------------ H5


def _read_h5(path: Path) -> tuple[dict[str, list[str]], np.ndarray]:
    try:
        with pd.HDFStore(path, mode="r") as store:
            keys = [k.lstrip("/") for k in store]
            if H5_KEY in keys:
                key = H5_KEY
            elif len(keys) == 1:
                key = keys[0]
            elif not keys:
                raise DataFormatError(path, "HDF5 file holds no pandas table")
            else:
                raise DataFormatError(
                    path, f"HDF5 file has several tables {keys} and none is {H5_KEY!r}"
                )
            df = store[key]
    except DataFormatError:
        raise
    except Exception as exc:  # tables.HDF5ExtError, OSError, KeyError, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataFormatError(
            path, f"cannot read as a DeepLabCut H5 file ({type(exc).__name__}: {msg})"
        ) from None
    if not isinstance(df, pd.DataFrame):
        raise DataFormatError(path, f"table {key!r} is a {type(df).__name__}, not a DataFrame")
    cols = df.columns
    if not isinstance(cols, pd.MultiIndex) or cols.nlevels not in (3, 4):
        raise DataFormatError(
            path,
            "table columns are not DeepLabCut's MultiIndex (scorer/bodyparts/coords or "
            f"scorer/individuals/bodyparts/coords); got {cols.nlevels} level(s)",
        )
    names = [str(n).lower() if n is not None else None for n in cols.names]
    levels = _LEVELS_MULTI if cols.nlevels == 4 else _LEVELS_SINGLE
    if all(n is not None for n in names) and tuple(names) != levels:
        raise DataFormatError(path, f"column levels {names} are not DeepLabCut's {list(levels)}")
    header = {name: [str(v) for v in cols.get_level_values(i)] for i, name in enumerate(levels)}
    try:
        values = df.to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise DataFormatError(path, f"table holds non-numeric values ({exc})") from None
    if values.shape[0] == 0:
        raise DataFormatError(path, "table has no rows")
    return header, values


# ------------------------------------------------------------------------------ builder


def _build_session(
    path: Path,
    header: dict[str, list[str]],
    values: np.ndarray,
    individual: str | None,
    fps: float | None,
) -> Session:
    coords = [c.lower() for c in header["coords"]]
    if not {"x", "y"} & set(coords):
        raise DataFormatError(
            path,
            f"no x/y/likelihood coords in header row 'coords' (found {sorted(set(coords))[:6]})",
        )
    keep = np.ones(len(coords), dtype=bool)
    individuals: list[str] = []
    if "individuals" in header:
        individuals = list(dict.fromkeys(header["individuals"]))
        if individual is None:
            individual = individuals[0]
        elif individual not in individuals:
            raise DataFormatError(
                path, f"unknown individual {individual!r}; this file has {individuals}"
            )
        keep = np.asarray(header["individuals"]) == individual
    elif individual is not None:
        raise DataFormatError(
            path, f"individual {individual!r} requested but this is a single-animal file"
        )
    col_idx = np.flatnonzero(keep)
    parts_all = [header["bodyparts"][i] for i in col_idx]
    bodyparts = list(dict.fromkeys(parts_all))
    lookup: dict[tuple[str, str], int] = {}
    for i in col_idx:
        key = (header["bodyparts"][i], coords[i])
        if key in lookup:
            raise DataFormatError(path, f"column {key[0]} {key[1]} appears twice")
        lookup[key] = int(i)
    x_cols, y_cols, l_cols = [], [], []
    for part in bodyparts:
        for coord, dest in (("x", x_cols), ("y", y_cols)):
            if (part, coord) not in lookup:
                raise DataFormatError(path, f"body part {part!r} has no {coord!r} column")
            dest.append(lookup[(part, coord)])
        l_cols.append(lookup.get((part, "likelihood"), -1))

    pose = np.stack([values[:, x_cols], values[:, y_cols]], axis=-1)
    never = np.flatnonzero(np.all(np.isnan(pose), axis=0).any(axis=1))
    if never.size:
        names = [bodyparts[i] for i in never]
        raise DataFormatError(
            path,
            f"body part(s) {names} have no value in any of the {pose.shape[0]} frames "
            "(NaN-only column: never tracked)",
        )
    l_cols_arr = np.asarray(l_cols)
    likelihood = np.ones(pose.shape[:2], dtype=np.float64)
    has_l = l_cols_arr >= 0
    if has_l.any():
        likelihood[:, has_l] = values[:, l_cols_arr[has_l]]
    likelihood = np.nan_to_num(likelihood, nan=0.0)

    scorer = header["scorer"][int(col_idx[0])]
    stem = path.stem
    name = stem.replace(scorer, "") if scorer and scorer in stem else stem
    return Session(
        pose=pose.astype(np.float32),
        likelihood=likelihood.astype(np.float32),
        bodyparts=tuple(bodyparts),
        name=name or stem,
        fps=float(fps) if fps is not None else None,
        source=path,
        extra={
            "scorer": scorer,
            "individual": individual,
            "individuals": individuals,
        },
    )
