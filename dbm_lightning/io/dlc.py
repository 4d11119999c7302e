"""DeepLabCut pose files (CSV and H5) -> :class:`~dbm_lightning.session.Session`.

DLC writes one column per (body part, coordinate), with 3 header rows ``scorer``,
``bodyparts``, ``coords`` (single animal) or 4 rows ``scorer``, ``individuals``, ``bodyparts``,
``coords`` (multi-animal), then one row per frame whose first cell is the frame index. The H5
file holds the same table (pandas/PyTables, key ``df_with_missing``) with MultiIndex columns.

The CSV header rows are parsed here, not by pandas: ``pd.read_csv(header=[0, 1, 2])`` takes an
all-empty first data row for an index-name row and silently drops a frame.

A well-formed CSV body (every row numbered ``0, 1, 2, ...`` and ending with a newline, the
header's number of cells, plain numbers or empty/NA cells) is parsed in one pass by pyarrow's
CSV reader (about twice as fast as pandas). Anything else goes through the checked path, which
finds and names the offending line and cell; both give the same session or the same error for
every file (``tests/test_io_fast_paths.py``). Both live in :mod:`dbm_lightning.io.dlc_numbers`.
"""

from __future__ import annotations

import csv
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.compressed import file_stem, read_bytes
from dbm_lightning.io.dlc_numbers import (
    body_offset,
    is_number,
    line_bounds,
    parse_body_checked,
    parse_body_fast,
)
from dbm_lightning.session import ANIMAL_SEPARATOR, Session, select_individuals

H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
H5_KEY = "df_with_missing"
_LEVELS_SINGLE = ("scorer", "bodyparts", "coords")
_LEVELS_MULTI = ("scorer", "individuals", "bodyparts", "coords")
_COORDS = ("x", "y", "likelihood")
_H5_LOCK = threading.Lock()  # PyTables is not thread-safe (load_sessions reads in threads)


def load_dlc(
    path: str | Path, individuals: Sequence[str] | None = None, fps: float | None = None
) -> Session:
    """Read one DeepLabCut output file (``.csv`` or ``.h5``) into a :class:`Session`.

    Parameters
    ----------
    path
        The DLC file; ``.h5``/``.hdf5``/``.hdf`` are read with pandas/PyTables, anything else
        as CSV (``.csv.gz``, ``.csv.bz2`` and ``.csv.xz`` decompressed on the way).
    individuals
        For multi-animal files, which individuals to keep, in this order (default: every
        individual with the animals' common skeleton; maDLC's ``single`` individual of
        unique body parts, which has another skeleton, is left out with a warning naming it).
        Two or more give a multi-animal session (body parts ``"<individual>/<part>"``, see
        :class:`~dbm_lightning.session.Session`); one gives a single-animal session with the
        plain part names. Naming individuals for a single-animal file is an error.
    fps
        Frame rate to record on the session (DLC files do not store it).

    Returns
    -------
    Session
        ``pose`` (frames, parts, 2) float32 with NaN where DLC wrote no value, ``likelihood``
        (0 where missing, ones when the file has no likelihood column), body parts in file
        order, ``name`` = file stem with the DLC scorer suffix removed, ``source`` = path and
        ``extra`` = ``{"scorer", "individuals", "file_individuals"}`` (the individuals kept,
        and all of the file's).

    Raises
    ------
    DataFormatError
        Naming the file and the problem (empty, bad header, non-numeric cell, truncated row or
        no final newline, repeated/missing/out-of-order frame rows, coords other than
        x/y/likelihood, likelihood outside [0, 1], infinite value, body part never tracked,
        unknown individual, unreadable H5, corrupted compressed data, ...). Tolerated: empty
        cells (NaN), a pandas index-name row, trailing blank lines, Windows line endings, no
        likelihood columns, and a non-integer index column (e.g. image names; an integer one
        must be 0, 1, 2 ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.suffix.lower() in H5_SUFFIXES:
        header, columns = _read_h5(path)
    else:
        header, columns = _read_csv(path)
    return _build_session(path, header, columns, individuals=individuals, fps=fps)


# ----------------------------------------------------------------------------------- CSV


def _read_csv(path: Path) -> tuple[dict[str, list[str]], list[np.ndarray]]:
    """Header levels (name -> one entry per data column) and the data columns (float64, one
    ``(frames,)`` array per column after the index).

    A well-formed file (frame index ``0, 1, 2, ...``, plain numbers, one row per line) is
    parsed in one pass by :func:`parse_body_fast`; anything else, and every error, goes
    through the fully checked path (:func:`parse_body_checked`), which names the offending
    line and cell.
    """
    data = read_bytes(path)
    if not data or data.isspace():
        raise DataFormatError(path, "file is empty")
    # the first lines only: the header rows (and a possible index-name row)
    cut = -1
    for _ in range(5):
        cut = data.find(b"\n", cut + 1)
        if cut < 0:
            break
    head_buf = np.frombuffer(data if cut < 0 else data[: cut + 1], dtype=np.uint8)
    head_starts, head_ends = line_bounds(head_buf)
    header, n_header, n_cells = _parse_header(path, data, head_starts, head_ends)

    body = body_offset(data, n_header)
    columns = parse_body_fast(data, body, n_cells) if body is not None else None
    if columns is not None:
        return header, columns
    return header, list(parse_body_checked(path, data, header, n_header, n_cells).T)


def _parse_header(
    path: Path, data: bytes, starts: np.ndarray, ends: np.ndarray
) -> tuple[dict[str, list[str]], int, int]:
    """The header levels, the number of lines before the data and the cells per row."""
    n_look = min(5, starts.size)
    head_text = data[: ends[n_look - 1]]
    try:
        # split on '\n' only, like the byte-level line bounds (str.splitlines also splits on
        # '\r', '\x0c', '\x85', ... and would shift every header row after such a byte)
        head_lines = [ln.removesuffix("\r") for ln in head_text.decode("utf-8-sig").split("\n")]
        rows = list(csv.reader(head_lines))
    except UnicodeDecodeError:
        raise DataFormatError(path, "not a text CSV file (cannot decode as UTF-8)") from None
    except csv.Error as exc:
        raise DataFormatError(path, f"cannot parse the header rows ({exc})") from None
    first = [r[0].strip().lower() if r else "" for r in rows]
    if not first or first[0] != "scorer":
        line1 = head_lines[0] if head_lines else ""
        seps = [sep for sep in (";", "\t", "|") if sep in line1 and "," not in line1]
        hint = (
            f"; the file seems to use {seps[0]!r} as separator, DeepLabCut uses ','" if seps else ""
        )
        raise DataFormatError(
            path,
            f"missing DeepLabCut header rows: line 1 starts with {line1.split(',')[0][:40]!r}, "
            "expected 'scorer' (DLC CSV has header rows scorer/bodyparts/coords, or "
            f"scorer/individuals/bodyparts/coords for multi-animal projects){hint}",
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
    # (only that exact shape: a full-width row, a name, every other cell empty)
    if len(rows) > n_header:
        extra = rows[n_header]
        if (
            len(extra) == n_cells
            and extra[0].strip()
            and not is_number(extra[0])
            and not any(c.strip() for c in extra[1:])
        ):
            n_header += 1

    return header, n_header, n_cells


# ------------------------------------------------------------------------------------ H5


def _read_h5(path: Path) -> tuple[dict[str, list[str]], list[np.ndarray]]:
    import h5py

    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    if not is_hdf5:
        raise DataFormatError(
            path, "cannot read as a DeepLabCut H5 file: not an HDF5 file (no HDF5 signature)"
        )
    try:
        with _H5_LOCK, pd.HDFStore(path, mode="r") as store:
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
    index = df.index.to_numpy()
    if index.dtype.kind in "iu":  # frame numbers: 0, 1, 2, ... as in the CSV
        if index[0] != 0:
            raise DataFormatError(
                path, f"frame index starts at {index[0]}, not 0: rows missing at the start"
            )
        bad = np.flatnonzero(np.diff(index.astype(np.int64)) != 1)
        if bad.size:
            i = int(bad[0])
            raise DataFormatError(
                path,
                f"frame index is not consecutive: row {i} is frame {index[i]}, row {i + 1} is "
                f"frame {index[i + 1]} (repeated, missing or out-of-order rows)",
            )
    return header, list(values.T)


# ------------------------------------------------------------------------------ builder


def _build_session(
    path: Path,
    header: dict[str, list[str]],
    columns: list[np.ndarray],
    individuals: Sequence[str] | None,
    fps: float | None,
) -> Session:
    coords = [c.lower() for c in header["coords"]]
    if not {"x", "y"} & set(coords):
        raise DataFormatError(
            path,
            f"no x/y/likelihood coords in header row 'coords' (found {sorted(set(coords))[:6]})",
        )
    unknown = sorted(set(coords) - set(_COORDS))
    if unknown:
        col = coords.index(unknown[0]) + 2
        raise DataFormatError(
            path,
            f"unknown coord(s) {unknown} in header row 'coords' (first at column {col}); "
            f"DeepLabCut writes {list(_COORDS)}: a mislabelled column would be ignored",
        )
    kept, file_individuals = _choose_individuals(path, header, individuals)
    ind_of = header.get("individuals", [""] * len(coords))
    lookup: dict[tuple[str, str, str], int] = {}
    for i, (ind, part, coord) in enumerate(zip(ind_of, header["bodyparts"], coords, strict=True)):
        key = (ind, part, coord)
        if key in lookup:
            who = f"{ind} " if ind else ""
            raise DataFormatError(path, f"column {who}{part} {coord} appears twice")
        lookup[key] = i
    columns_of = {ind: [p for (i, p, _c) in lookup if i == ind] for ind in (kept or [""])}
    skeleton = list(dict.fromkeys(columns_of[kept[0] if kept else ""]))
    for ind in kept[1:]:
        if list(dict.fromkeys(columns_of[ind])) != skeleton:
            raise DataFormatError(
                path,
                f"individuals {kept[0]!r} and {ind!r} have different body parts "
                f"({skeleton} vs {list(dict.fromkeys(columns_of[ind]))}); choose individuals "
                "with one skeleton (data.individuals)",
            )
    groups = kept if kept else [""]
    bodyparts = [
        f"{ind}{ANIMAL_SEPARATOR}{part}" if len(groups) > 1 else part
        for ind in groups
        for part in skeleton
    ]
    keys = [(ind, part) for ind in groups for part in skeleton]
    x_cols, y_cols, l_cols = [], [], []
    for (ind, part), name in zip(keys, bodyparts, strict=True):
        for coord, dest in (("x", x_cols), ("y", y_cols)):
            if (ind, part, coord) not in lookup:
                raise DataFormatError(path, f"body part {name!r} has no {coord!r} column")
            dest.append(lookup[(ind, part, coord)])
        l_cols.append(lookup.get((ind, part, "likelihood"), -1))

    # float32 pose and likelihood straight from the float64 columns (no float64 copies)
    n_frames, n_parts = columns[0].shape[0], len(bodyparts)
    pose32 = np.empty((n_frames, n_parts, 2), dtype=np.float32)
    with np.errstate(over="ignore"):
        for p, cols in enumerate(zip(x_cols, y_cols, strict=True)):
            for c, col in enumerate(cols):
                pose32[:, p, c] = columns[col]
    finite = np.isfinite(pose32)
    if not finite.all():
        inf = np.isinf(pose32)
        if inf.any():  # inf in the file, or beyond float32 (a corrupted number)
            t, p, c = (int(v) for v in np.argwhere(inf)[0])
            col = (x_cols, y_cols)[c][p]
            raise DataFormatError(
                path,
                f"infinite or out-of-range value {float(columns[col][t])!r} in column "
                f"{bodyparts[p]} {'xy'[c]} at data row {t}",
            )
        never = np.flatnonzero(~finite.any(axis=0).all(axis=1))  # x or y all NaN
        if never.size:
            names = [bodyparts[i] for i in never]
            raise DataFormatError(
                path,
                f"body part(s) {names} have no value in any of the {n_frames} frames "
                "(NaN-only column: never tracked)",
            )
    likelihood = np.ones((n_frames, n_parts), dtype=np.float32)
    for p, col in enumerate(l_cols):
        if col >= 0:
            v = columns[col]
            if ((v < 0) | (v > 1)).any():  # on the float64 values (NaN compares False)
                _raise_likelihood_outside(path, columns, l_cols, bodyparts)
            np.fmax(v, 0.0, out=likelihood[:, p])  # NaN (no value) -> 0, [0, 1] unchanged

    scorer = header["scorer"][x_cols[0]]
    stem = file_stem(path)
    name = stem.replace(scorer, "") if scorer and scorer in stem else stem
    return Session(
        pose=pose32,
        likelihood=likelihood,
        bodyparts=tuple(bodyparts),
        name=name or stem,
        fps=float(fps) if fps is not None else None,
        source=path,
        individuals=tuple(kept) if len(kept) > 1 else (),
        extra={
            "scorer": scorer,
            "individuals": list(kept),
            "file_individuals": file_individuals,
        },
    )


def _choose_individuals(
    path: Path, header: dict[str, list[str]], wanted: Sequence[str] | None
) -> tuple[list[str], list[str]]:
    """The individuals to keep (``[]`` for a single-animal file) and all of the file's."""
    if "individuals" not in header:
        if wanted:
            raise DataFormatError(
                path, f"individuals {list(wanted)} requested but this is a single-animal file"
            )
        return [], []
    in_file = list(dict.fromkeys(header["individuals"]))
    if wanted:
        wanted = select_individuals(path, wanted, in_file)
        return list(wanted), in_file
    parts_of = {
        ind: tuple(
            dict.fromkeys(
                p
                for i, p in zip(header["individuals"], header["bodyparts"], strict=True)
                if i == ind
            )
        )
        for ind in in_file
    }
    skeletons = list(parts_of.values())
    common = max(skeletons, key=lambda sk: (skeletons.count(sk), -skeletons.index(sk)))
    kept = [ind for ind in in_file if parts_of[ind] == common]
    left = [ind for ind in in_file if ind not in kept]
    if left:
        warnings.warn(
            f"{path}: individual(s) {left} left out: their body parts "
            f"{[list(parts_of[i]) for i in left]} differ from the animals' {list(common)} "
            "(DeepLabCut's unique body parts); name them in data.individuals to keep them",
            stacklevel=4,
        )
    return kept, in_file


def _raise_likelihood_outside(
    path: Path, columns: list[np.ndarray], l_cols: list[int], bodyparts: list[str]
) -> None:
    """Raise naming the first (row, then body part) likelihood outside [0, 1]."""
    likelihood = np.ones((columns[0].shape[0], len(l_cols)), dtype=np.float64)
    for p, col in enumerate(l_cols):
        if col >= 0:
            likelihood[:, p] = columns[col]
    t, p = (int(v) for v in np.argwhere((likelihood < 0) | (likelihood > 1))[0])
    raise DataFormatError(
        path,
        f"likelihood {float(likelihood[t, p])!r} of body part {bodyparts[p]!r} at data row "
        f"{t} is outside [0, 1] (a mislabelled or shifted column?)",
    )
