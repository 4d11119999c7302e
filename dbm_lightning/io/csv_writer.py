"""The project's one CSV writer: vectorised, for long numeric tables (the per-frame prediction
tables, the synthetic DeepLabCut files and their labels).

``pandas.DataFrame.to_csv`` formats every cell in Python (about 5 us a cell); here each column
becomes a block of bytes with a few NumPy operations per digit, the blocks are laid side by
side with the separators and the padding is squeezed out in one pass. The text is what
``to_csv(index=False)`` writes (same header, quoting, ``True``/``False``, empty cells for
missing values, ``os.linesep`` line ends) except floats, which are written with a fixed number
of decimals (``%.{decimals}f``, per column if asked) instead of their shortest round-trip text:
what users of these tables read (8 decimals of a probability, DeepLabCut's pixels to the
thousandth), at about 10 times pandas' speed and with no float noise in the last digits.

Columns: integer and bool arrays, float arrays (finite values below 1e9 in magnitude, NaN ->
empty cell), and :class:`pandas.Categorical` (or any object with ``codes`` and ``categories``)
for text; anything else raises :class:`ValueError` (callers then use pandas).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

_PAD = 0  # NUL bytes mark padding and are removed at the end (never in CSV text from here)
_FLOAT_LIMIT = 1e9
_EXACT_LIMIT = 2.0**50  # scaled magnitudes below this are exact enough to find printf's digit
_DIGITS4_U32 = np.frombuffer(
    "".join(f"{i:04d}" for i in range(10_000)).encode(), dtype=np.uint32
)  # "0000" .. "9999", 4 bytes as one uint32 (native order: stored bytes stay in text order)


def _quote(text: str) -> str:
    """A CSV field as the csv module's QUOTE_MINIMAL writes it."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _text_block(codes: np.ndarray, categories: list[str]) -> np.ndarray:
    """(n, width) bytes of ``categories[codes]`` left-aligned (code -1: empty)."""
    encoded = [_quote(str(c)).encode() for c in categories]
    if any(b"\x00" in e for e in encoded):
        raise ValueError("text with NUL characters")
    width = max([len(e) for e in encoded] + [1])
    table = np.zeros((len(encoded) + 1, width), dtype=np.uint8)  # last row: missing
    for i, e in enumerate(encoded):
        table[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
    codes = np.asarray(codes, dtype=np.int64)
    if codes.size and (codes.min() < -1 or codes.max() >= len(encoded)):
        raise ValueError("category code out of range")
    return table[np.where(codes < 0, len(encoded), codes)]


def _uint_digits(values: np.ndarray, n_digits: int) -> np.ndarray:
    """(n, n_digits) ASCII digits of non-negative int64 ``values`` < 10**n_digits, zero-padded,
    four at a time through a lookup table (groups split in float64: exact below 2**53)."""
    n = values.shape[0]
    groups = -(-n_digits // 4)
    out = np.empty((n, groups), dtype=np.uint32)  # 4 ASCII bytes per group
    rest = values.astype(np.float64)
    for g in range(groups - 1, -1, -1):
        if g:
            high = np.floor(rest / 10_000.0)
            out[:, g] = _DIGITS4_U32[(rest - high * 10_000.0).astype(np.intp)]
            rest = high
        else:
            out[:, g] = _DIGITS4_U32[rest.astype(np.intp)]
    return out.view(np.uint8).reshape(n, 4 * groups)[:, 4 * groups - n_digits :]


def _n_digits(values: np.ndarray) -> np.ndarray:
    """Number of decimal digits of non-negative int64 ``values`` (1 for 0)."""
    n = np.ones(values.shape[0], dtype=np.int64)
    power = 10
    top = int(values.max(initial=0))
    while power <= top:
        n += values >= power
        power *= 10
    return n


def _int_text(magnitude: np.ndarray, negative: np.ndarray) -> np.ndarray:
    """(n, width) right-aligned text of ``-magnitude if negative else magnitude``."""
    n_digits = _n_digits(magnitude)
    most = int(n_digits.max(initial=1))
    sign = bool(negative.any())
    width = most + sign
    out = _uint_digits(magnitude, width)
    out[np.arange(width) < (width - n_digits)[:, None]] = _PAD  # leading zeros -> padding
    if sign:
        rows = np.flatnonzero(negative)
        out[rows, width - 1 - n_digits[rows]] = ord("-")
    return out


def _int_block(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype.kind == "u" and v.dtype.itemsize == 8 and v.size and v.max() > 2**63 - 1:
        raise ValueError("uint64 beyond int64")
    v = v.astype(np.int64, copy=False)
    if v.size and v.min() == np.iinfo(np.int64).min:
        raise ValueError("int64 minimum")
    return _int_text(np.abs(v), v < 0)


def _float_block(values: np.ndarray, decimals: int) -> np.ndarray:
    """(n, width) text of ``%.{decimals}f``; NaN -> empty."""
    x = np.asarray(values, dtype=np.float64)
    missing = np.isnan(x)
    finite = x[~missing]
    if not np.isfinite(finite).all() or (finite.size and np.abs(finite).max() >= _FLOAT_LIMIT):
        raise ValueError("float out of the fixed-decimal range")
    scale = 10**decimals
    magnitude = np.abs(np.where(missing, 0.0, x)) * scale
    if magnitude.size and magnitude.max() >= _EXACT_LIMIT:
        raise ValueError("float too large for exact fixed decimals")
    scaled = np.rint(magnitude).astype(np.int64)
    # rint of the scaled float can miss printf's rounding of the exact binary value next to a
    # half (0.0005 -> "0.001"): those few are formatted by Python, which rounds exactly
    tolerance = max(1e-6, 8 * float(magnitude.max(initial=0.0)) * 2.0**-52)
    near_half = np.abs(magnitude - np.floor(magnitude) - 0.5) <= tolerance
    for i in np.flatnonzero(near_half & ~missing):
        scaled[i] = int(f"{abs(x[i]):.{decimals}f}".replace(".", ""))
    whole, frac = np.divmod(scaled, scale)
    negative = np.signbit(x) & ~missing  # as printf: "-0.000" for -0.0 and tiny negatives
    head = _int_text(whole, negative)
    parts = [head]
    if decimals > 0:
        dot = np.full((x.shape[0], 1), ord("."), dtype=np.uint8)
        parts += [dot, _uint_digits(frac, decimals)]
    out = np.concatenate(parts, axis=1)
    out[missing] = _PAD
    return out


def _block(values: Any, decimals: int) -> np.ndarray:
    """(n, width) bytes of one column (see the module doc for the kinds of column)."""
    if hasattr(values, "codes") and hasattr(values, "categories"):
        return _text_block(np.asarray(values.codes), [str(c) for c in values.categories])
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"columns must be 1-D, got shape {v.shape}")
    if v.dtype.kind == "b":
        return _text_block(v.astype(np.int64), ["False", "True"])
    if v.dtype.kind in "iu":
        return _int_block(v)
    if v.dtype.kind == "f":
        return _float_block(v, decimals)
    raise ValueError(f"unsupported column dtype {v.dtype}")


def csv_bytes(
    columns: Mapping[str, Any],
    decimals: int | Mapping[str, int] = 8,
    line_end: str | None = None,
    header: bool = True,
) -> bytes:
    """The CSV text of ``columns`` (name -> 1-D array or categorical), header first (unless
    ``header`` is false). ``decimals``: of every float column, or per column name (default 8
    for a column it does not name); ``line_end``: default ``os.linesep``.

    Raises
    ------
    ValueError
        For columns it cannot write exactly (object arrays, huge or infinite floats, ...).
    """
    end = (os.linesep if line_end is None else line_end).encode()
    names = list(columns)
    if not names:
        raise ValueError("no columns")
    head = ",".join(_quote(str(n)) for n in names).encode() + end if header else b""
    places = decimals if isinstance(decimals, Mapping) else dict.fromkeys(names, decimals)
    blocks = [_block(columns[n], places.get(n, 8)) for n in names]
    n_rows = {b.shape[0] for b in blocks}
    if len(n_rows) != 1:
        raise ValueError(f"columns of different lengths {sorted(n_rows)}")
    (n,) = n_rows
    if n == 0:
        return head
    comma = np.full((n, 1), ord(","), dtype=np.uint8)
    row_end = np.tile(np.frombuffer(end, dtype=np.uint8), (n, 1))
    pieces: list[np.ndarray] = []
    for i, b in enumerate(blocks):
        pieces += [b, comma if i < len(blocks) - 1 else row_end]
    table = np.concatenate(pieces, axis=1).ravel()
    return head + table[table != _PAD].tobytes()


def write_csv(path: Any, columns: Mapping[str, Any], decimals: int = 8) -> None:
    """Write :func:`csv_bytes` of ``columns`` to ``path``."""
    with open(path, "wb") as fh:
        fh.write(csv_bytes(columns, decimals))


__all__ = ["csv_bytes", "write_csv"]
