"""DeepLabCut pose files (CSV and H5) -> :class:`~dbm_lightning.session.Session`.

DLC writes one column per (body part, coordinate), with 3 header rows ``scorer``,
``bodyparts``, ``coords`` (single animal) or 4 rows ``scorer``, ``individuals``, ``bodyparts``,
``coords`` (multi-animal), then one row per frame whose first cell is the frame index. The H5
file holds the same table (pandas/PyTables, key ``df_with_missing``) with MultiIndex columns.

The CSV header rows are parsed here, not by pandas: ``pd.read_csv(header=[0, 1, 2])`` takes an
all-empty first data row for an index-name row and silently drops a frame.

A well-formed CSV body (every row numbered ``0, 1, 2, ...`` and ending with a newline, the
header's number of cells, plain numbers or empty/NA cells) is parsed in one pass: pyarrow's CSV
reader when installed (about twice as fast as pandas), else one pandas C-engine call. Anything
else goes through the checked path, which finds and names the offending line and cell; both
give the same session or the same error for every file (``tests/test_io_fast_paths.py``).
"""

from __future__ import annotations

import csv
import io
import threading
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
_COORDS = ("x", "y", "likelihood")
_H5_LOCK = threading.Lock()  # PyTables is not thread-safe (load_sessions reads in threads)


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
        Naming the file and the problem (empty, bad header, non-numeric cell, truncated row or
        no final newline, repeated/missing/out-of-order frame rows, coords other than
        x/y/likelihood, likelihood outside [0, 1], infinite value, body part never tracked,
        unknown individual, unreadable H5, ...). Tolerated: empty cells (NaN), a pandas
        index-name row, trailing blank lines, Windows line endings, no likelihood columns,
        and a non-integer index column (e.g. image names; an integer one must be 0, 1, 2 ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.suffix.lower() in H5_SUFFIXES:
        header, columns = _read_h5(path)
    else:
        header, columns = _read_csv(path)
    return _build_session(path, header, columns, individual=individual, fps=fps)


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


def _read_csv(path: Path) -> tuple[dict[str, list[str]], list[np.ndarray]]:
    """Header levels (name -> one entry per data column) and the data columns (float64, one
    ``(frames,)`` array per column after the index).

    A well-formed file (frame index ``0, 1, 2, ...``, plain numbers, one row per line) is
    parsed in one pass by :func:`_parse_body_fast`; anything else, and every error, goes
    through the fully checked path below, which names the offending line and cell.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    if not data or data.isspace():
        raise DataFormatError(path, "file is empty")
    # the first lines only: the header rows (and a possible index-name row)
    cut = -1
    for _ in range(5):
        cut = data.find(b"\n", cut + 1)
        if cut < 0:
            break
    head_buf = np.frombuffer(data if cut < 0 else data[: cut + 1], dtype=np.uint8)
    head_starts, head_ends = _line_bounds(head_buf)
    header, n_header, n_cells = _parse_header(path, data, head_starts, head_ends)

    body = _body_offset(data, n_header)
    columns = _parse_body_fast(data, body, n_cells) if body is not None else None
    if columns is not None:
        return header, columns
    return header, list(_parse_body_checked(path, data, header, n_header, n_cells).T)


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
            and not _is_number(extra[0])
            and not any(c.strip() for c in extra[1:])
        ):
            n_header += 1

    return header, n_header, n_cells


def _body_offset(data: bytes, n_header: int) -> int | None:
    """Byte offset of the first data line (``None`` when the file has no line after the header)."""
    pos = -1
    for _ in range(n_header):
        pos = data.find(b"\n", pos + 1)
        if pos < 0:
            return None
    return pos + 1


def _parse_body_checked(
    path: Path, data: bytes, header: dict[str, list[str]], n_header: int, n_cells: int
) -> np.ndarray:
    """The data block, every line checked first (cell counts, blank lines, final newline,
    frame index, non-numeric cells) so that a problem is reported with its line and column."""
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_bounds(buf)
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
    if not data.endswith(b"\n"):
        raise DataFormatError(
            path,
            f"line {n_header + n_frames} (the last) does not end with a newline: the file looks "
            "truncated (DeepLabCut ends every row with a newline; if the file is complete, add "
            "one)",
        )
    first_comma = commas[np.searchsorted(commas, d_starts)]  # every data line has >= 2 cells
    _check_frame_index(path, data, buf, d_starts, first_comma, n_header)

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
    return values


# pandas' default missing-value strings (``pandas._libs.parsers.STR_NA_VALUES``): empty cells
# and these read as NaN in both the fast and the checked path
_NA_STRINGS = (
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
)  # fmt: skip


_NO_PYARROW = False
"""Tests set this to check the pandas fallback of the fast path."""


def _parse_body_fast(data: bytes, body: int, n_cells: int) -> list[np.ndarray] | None:
    """The ``n_cells - 1`` float64 data columns of a well-formed file in one pass, or ``None``
    when the file is anything else (the caller then runs the checked path, which accepts or
    rejects it with a precise message; this function never decides that a file is bad).

    Well-formed: every line after the header ends with ``\\n``, its first cell is exactly its
    frame number (``0, 1, 2, ...``), it has ``n_cells`` cells, every other cell is a number or
    empty/NA, and no cell is a NaN or infinity written out. The body is parsed by pyarrow's
    multi-format CSV reader (one call, no quoting, no type inference) when pyarrow is
    installed, else by one pandas C-engine call.
    """
    if body >= len(data) or not data.endswith(b"\n"):
        return None
    buf = np.frombuffer(data, dtype=np.uint8, offset=body)
    newlines = _find_byte(buf, ord("\n"))
    starts = np.empty_like(newlines)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    if not _is_frame_numbering(buf, starts):
        return None
    n_frames = int(starts.size)
    columns = _parse_numbers(data, body, n_cells, newlines)
    if columns is None or len(columns) != n_cells - 1:
        return None
    if any(c.shape != (n_frames,) for c in columns):
        return None
    return columns


def _find_byte(buf: np.ndarray, byte: int, block: int = 1 << 16) -> np.ndarray:
    """Positions of ``byte`` in ``buf``, scanned in cache-sized blocks (no file-sized
    temporary array)."""
    mask = np.empty(min(block, buf.size), dtype=bool)
    found = []
    for start in range(0, buf.size, block):
        part = buf[start : start + block]
        hits = np.flatnonzero(np.equal(part, byte, out=mask[: part.size]))
        found.append(hits + start if start else hits)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)


def _is_frame_numbering(buf: np.ndarray, starts: np.ndarray) -> bool:
    """Whether line ``i`` (starting at ``buf[starts[i]]``) begins with ``"<i>,"`` for every i,
    checked one digit position at a time over all lines (a few passes, none per line)."""
    n = starts.size
    pos = starts + 1  # -> the comma after the frame number: rows >= 10**k have > k digits
    power = 10
    while power < n:
        pos[power:] += 1
        power *= 10
    if pos[-1] >= buf.size or not (buf[pos] == ord(",")).all():
        return False
    power = 1
    while power < n or power == 1:  # the digit worth ``power``, in rows >= power (row 0: '0')
        first = power if power > 1 else 0
        # digit (i // power) % 10 of rows 0, 1, 2, ...: runs of ``power`` equal digits
        digits = np.resize(np.repeat(np.arange(ord("0"), ord("9") + 1, dtype=np.uint8), power), n)
        pos = pos - 1
        if not (buf[pos[first:]] == digits[first:]).all():
            return False
        power *= 10
    return True


def _parse_numbers(
    data: bytes, body: int, n_cells: int, newlines: np.ndarray
) -> list[np.ndarray] | None:
    """Columns 1.. of the lines from byte ``body`` (ending at ``body + newlines``), float64, or
    ``None`` when a cell is not a plain number/NA or a row has another number of cells.
    Written-out NaN/inf cells also give ``None`` (the checked path rules on them)."""
    names = [f"c{i}" for i in range(n_cells)]
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
    except ImportError:
        pa = None
    if pa is not None and not _NO_PYARROW:
        size = len(data) - body
        try:
            table = pa_csv.read_csv(
                pa.BufferReader(pa.py_buffer(data)[body:]),
                read_options=pa_csv.ReadOptions(
                    column_names=names, use_threads=False, block_size=min(size + 1, 1 << 30)
                ),
                parse_options=pa_csv.ParseOptions(
                    quote_char=False,
                    double_quote=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={n: pa.float64() for n in names[1:]},
                    include_columns=names[1:],
                    null_values=list(_NA_STRINGS),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except (pa.ArrowException, ValueError):
            return None
        columns = []
        for column in table.columns:
            # zero-copy unless the column has missing cells (then NaN-filled)
            values = column.to_numpy(zero_copy_only=False)
            if np.count_nonzero(~np.isfinite(values)) != column.null_count:
                return None  # a cell that spells out nan/inf: let the checked path decide
            columns.append(values)
        return columns
    # pandas pads a short row with NaN and, with usecols, cuts a long one: count the commas of
    # every line first
    buf = np.frombuffer(data, dtype=np.uint8, offset=body)
    starts = np.concatenate([[0], newlines[:-1] + 1])
    per_line = np.add.reduceat((buf == ord(",")).view(np.int8), starts, dtype=np.int64)
    if not (per_line == n_cells - 1).all():
        return None
    try:
        frame = pd.read_csv(
            io.BytesIO(memoryview(data)[body:]),
            header=None,
            usecols=list(range(1, n_cells)),  # (integer positions: faster than names)
            dtype=np.float64,
            skip_blank_lines=False,
            na_values=list(_NA_STRINGS),
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            engine="c",
        )
    except Exception:  # noqa: BLE001 - any failure: the checked path explains it
        return None
    return list(frame.to_numpy(dtype=np.float64).T)


def _check_frame_index(
    path: Path,
    data: bytes,
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    n_header: int,
) -> None:
    """The first cell of every data row (``starts[i]:ends[i]``) must number the frames
    consecutively when it is an integer (DeepLabCut writes 0, 1, 2, ...): a repeated, missing
    or out-of-order row is an error, never a silent shift of every later frame. A column with
    no integer at all (e.g. image names) is not checked."""
    lens = ends - starts
    is_int = (lens >= 1) & (lens <= 18)
    value = np.zeros(lens.size, dtype=np.int64)
    for k in range(int(min(lens.max(initial=0), 18))):  # one pass per character, not per row
        active = is_int & (k < lens)
        digit = buf[np.minimum(starts + k, buf.size - 1)].astype(np.int64) - ord("0")
        is_int &= ~active | ((digit >= 0) & (digit <= 9))
        active &= is_int
        value[active] = value[active] * 10 + digit[active]
    if not is_int.any():
        return
    if is_int[0] and value[0] != 0:
        raise DataFormatError(
            path,
            f"frame index starts at {value[0]} (line {n_header + 1}), not 0: rows missing at "
            "the start of the file",
        )

    def cell(i: int) -> str:
        return data[starts[i] : ends[i]].decode("utf-8", errors="replace")

    if not is_int.all():
        i = int(np.argmin(is_int))
        text = cell(i)
        if text.strip().lower() in _HEADER_NAMES:
            problem = f"extra header row {text.strip()!r} at line {n_header + i + 1}"
        else:
            problem = (
                f"frame index {text!r} at line {n_header + i + 1} (data row {i}) is not an "
                "integer, unlike the other rows"
            )
        raise DataFormatError(path, problem)
    if (np.diff(value) == 1).all():
        return
    uniq, first_row, counts = np.unique(value, return_index=True, return_counts=True)
    if (counts > 1).any():
        f = int(uniq[np.argmax(counts > 1)])
        rows = np.flatnonzero(value == f)[:2] + n_header + 1
        problem = f"frame {f} appears twice (lines {rows[0]} and {rows[1]}): a repeated row"
    elif uniq[-1] - uniq[0] == uniq.size - 1:  # every frame once, in the wrong order
        i = int(np.flatnonzero(np.diff(value) != 1)[0])
        problem = (
            f"rows out of order: frame {value[i + 1]} follows frame {value[i]} "
            f"(lines {n_header + i + 1} and {n_header + i + 2})"
        )
    else:
        j = int(np.flatnonzero(np.diff(uniq) != 1)[0])
        a, b = int(uniq[j]), int(uniq[j + 1])
        gap = f"frame {a + 1}" if b == a + 2 else f"frames {a + 1}..{b - 1}"
        problem = (
            f"{gap} missing: no row between frame {a} (line {n_header + first_row[j] + 1}) "
            f"and frame {b} (line {n_header + first_row[j + 1] + 1})"
        )
    raise DataFormatError(path, problem)


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
    individual: str | None,
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

    scorer = header["scorer"][int(col_idx[0])]
    stem = path.stem
    name = stem.replace(scorer, "") if scorer and scorer in stem else stem
    return Session(
        pose=pose32,
        likelihood=likelihood,
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
