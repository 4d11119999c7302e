"""The data rows of a DeepLabCut CSV -> float64 columns, and the checks behind every error.

Two parsers of the body (the lines after the header), used by :mod:`dbm_lightning.io.dlc`:

- :func:`parse_body_fast`: a well-formed body (every row numbered ``0, 1, 2, ...`` and ending
  with a newline, the header's number of cells, plain numbers or empty/NA cells) in one pass of
  pyarrow's CSV reader, after a byte-level check of the frame numbering; ``None`` for anything
  else.
- :func:`parse_body_checked`: every line checked first (cell counts, blank lines, final
  newline, frame index, non-numeric cells), so that a problem is reported with its line and
  column.

Both give the same columns or the same error for every file (``tests/test_io_fast_paths.py``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError

# DeepLabCut's header row names: a data row starting with one is a stray header row
_HEADER_NAMES = frozenset(("scorer", "individuals", "bodyparts", "coords"))


def line_bounds(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without ``\\r\\n``) byte offsets of every line of ``buf``."""
    newlines = np.flatnonzero(buf == ord("\n"))
    ends = newlines
    if buf.size and (newlines.size == 0 or newlines[-1] != buf.size - 1):
        ends = np.append(newlines, buf.size)
    starts = np.concatenate([[0], newlines + 1])[: ends.size]
    # drop a trailing '\r' (Windows line endings)
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == ord("\r"))
    return starts, ends - has_cr.astype(ends.dtype)


def body_offset(data: bytes, n_header: int) -> int | None:
    """Byte offset of the first data line (``None`` when the file has no line after the header)."""
    pos = -1
    for _ in range(n_header):
        pos = data.find(b"\n", pos + 1)
        if pos < 0:
            return None
    return pos + 1


def parse_body_checked(
    path: Path, data: bytes, header: dict[str, list[str]], n_header: int, n_cells: int
) -> np.ndarray:
    """The data block, every line checked first (cell counts, blank lines, final newline,
    frame index, non-numeric cells) so that a problem is reported with its line and column."""
    buf = np.frombuffer(data, dtype=np.uint8)
    starts, ends = line_bounds(buf)
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


def parse_body_fast(data: bytes, body: int, n_cells: int) -> list[np.ndarray] | None:
    """The ``n_cells - 1`` float64 data columns of a well-formed file in one pass, or ``None``
    when the file is anything else (the caller then runs the checked path, which accepts or
    rejects it with a precise message; this function never decides that a file is bad).

    Well-formed: every line after the header ends with ``\\n``, its first cell is exactly its
    frame number (``0, 1, 2, ...``), it has ``n_cells`` cells, every other cell is a number or
    empty/NA, and no cell is a NaN or infinity written out. The body is parsed by pyarrow's
    multi-format CSV reader (one call, no quoting, no type inference).
    """
    if body >= len(data) or not data.endswith(b"\n"):
        return None
    buf = np.frombuffer(data, dtype=np.uint8, offset=body)
    newlines = find_byte(buf, ord("\n"))
    starts = np.empty_like(newlines)
    starts[0] = 0
    starts[1:] = newlines[:-1] + 1
    if not is_frame_numbering(buf, starts):
        return None
    n_frames = int(starts.size)
    columns = _parse_numbers(data, body, n_cells, newlines)
    if columns is None or len(columns) != n_cells - 1:
        return None
    if any(c.shape != (n_frames,) for c in columns):
        return None
    return columns


def find_byte(buf: np.ndarray, byte: int, block: int = 1 << 16) -> np.ndarray:
    """Positions of ``byte`` in ``buf``, scanned in cache-sized blocks (no file-sized
    temporary array)."""
    mask = np.empty(min(block, buf.size), dtype=bool)
    found = []
    for start in range(0, buf.size, block):
        part = buf[start : start + block]
        hits = np.flatnonzero(np.equal(part, byte, out=mask[: part.size]))
        found.append(hits + start if start else hits)
    return np.concatenate(found) if found else np.zeros(0, dtype=np.intp)


def is_frame_numbering(buf: np.ndarray, starts: np.ndarray) -> bool:
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
    import pyarrow as pa  # imported on first use: it is slow to import
    import pyarrow.csv as pa_csv

    names = [f"c{i}" for i in range(n_cells)]
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


def is_number(text: str) -> bool:
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
