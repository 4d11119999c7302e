"""Per-frame behaviour labels from CSV files.

Two layouts are read (with a header row):

* ``frame,label`` -- one row per frame; ``label`` holds behaviour names (strings) or integer
  codes; an empty cell (or code -1) means no label. The ``frame`` column is optional; when
  present it must hold every frame ``0 .. n_frames-1`` exactly once (any order).
* one 0/1 column per behaviour (annotation-tool export), with an optional leading ``frame``
  column: a frame with no 1 is unlabelled (-1); a frame with two or more 1s is an error.

Label order when ``label_names`` is not given: string labels are sorted **alphabetically**
(so that files holding different subsets still agree as far as possible); integer codes keep
their value (names ``"0" .. str(max)``); one-hot columns keep the file's column order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.text_tables import read_text_csv
from dbm_lightning.session import UNLABELLED

FRAME_COLUMNS = ("frame", "frames", "frame_index", "index", "")
LABEL_COLUMNS = ("label", "labels", "behavior", "behaviour")


def load_labels(
    path: str | Path, n_frames: int, label_names: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Read per-frame labels for a session of ``n_frames`` frames.

    Parameters
    ----------
    path
        The label CSV (``frame,label`` or one 0/1 column per behaviour).
    n_frames
        Frames of the session; a file with a different number of frames is an error
        (never trimmed or padded silently).
    label_names
        When given, labels are mapped to indices into it (a name not in it is an error naming
        it; integer codes index into it directly). Otherwise see the module docstring.

    Returns
    -------
    labels, names
        ``(n_frames,)`` int64 indices into ``names`` with ``UNLABELLED`` (-1) for no label.
    """
    labels, names, _ = read_plain_labels(path, n_frames, label_names)
    return labels, names


def read_plain_labels(
    path: str | Path, n_frames: int, label_names: Sequence[str] | None = None
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """:func:`load_labels` plus the layout found: ``"names"`` (a label column of names),
    ``"codes"`` (a label column of integer codes) or ``"onehot"`` (0/1 columns)."""
    path = Path(path)
    df = read_text_csv(path, "label file")
    df = df.apply(lambda col: col.str.strip())
    lower = [c.lower() for c in df.columns]
    if df.shape[1] == 0:
        raise DataFormatError(path, "label file has no columns")

    frame_col = None
    if lower[0] in FRAME_COLUMNS or lower[0].startswith("unnamed: 0"):
        frame_col = df.columns[0]
    label_cols = [c for c, lc in zip(df.columns, lower, strict=True) if lc in LABEL_COLUMNS]
    names = tuple(label_names) if label_names is not None else None

    if label_cols:
        if len(label_cols) > 1:
            raise DataFormatError(path, f"several label columns {label_cols}")
        labels, out_names = _from_label_column(path, df[label_cols[0]].to_numpy(str), names)
        kind = "names" if _is_names(df[label_cols[0]].to_numpy(str)) else "codes"
    else:
        onehot = [c for c in df.columns if c != frame_col]
        if not onehot:
            raise DataFormatError(
                path, "no label column: expected 'frame,label' or one 0/1 column per behaviour"
            )
        frames = df[frame_col].to_numpy(str) if frame_col is not None else None
        labels, out_names = _from_onehot(path, df[onehot], frames, names)
        kind = "onehot"

    if frame_col is not None:
        labels = order_by_frame(path, df[frame_col].to_numpy(str), labels)
    if labels.shape[0] != n_frames:
        raise DataFormatError(
            path, f"{labels.shape[0]} labelled frames but the session has {n_frames} frames"
        )
    return labels.astype(np.int64), out_names, kind


def _is_names(values: np.ndarray) -> bool:
    """Whether a (valid) label column holds names rather than integer codes."""
    present = values != ""
    return not (present.any() and _is_int_text(values)[present].all())


_MAX_DIGITS = 9  # frame numbers and label codes above 10**9 are not plausible (and overflow)
_MAX_CODE = 10_000  # integer label codes name classes "0".."max": a larger one is a typo


def _is_int_text(values: np.ndarray) -> np.ndarray:
    """True where the text is an integer: digits after at most one leading '-'."""
    text = values.astype(str)
    digits = np.char.lstrip(text, "-")
    n_minus = np.char.str_len(text) - np.char.str_len(digits)
    return np.char.isdigit(digits) & (n_minus <= 1)


def _as_int(path: Path, values: np.ndarray, what: str) -> np.ndarray:
    """Integer text (already checked by :func:`_is_int_text`) -> int64, an error for a number
    too long to be a frame or a code (instead of an OverflowError)."""
    long = np.char.str_len(np.char.lstrip(values.astype(str), "-")) > _MAX_DIGITS
    if long.any():
        r = int(np.argmax(long))
        raise DataFormatError(path, f"{what} {str(values[r])!r} (row {r + 1}) is too large")
    return values.astype(np.int64)


def _from_label_column(
    path: Path, values: np.ndarray, names: tuple[str, ...] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    present = values != ""
    is_int = _is_int_text(values)
    if present.any() and is_int[present].all():  # integer codes
        codes = _as_int(path, np.where(present, values, "-1"), "label code")
        if (codes < UNLABELLED).any():
            raise DataFormatError(path, f"negative label code {codes.min()} (only -1 allowed)")
        if names is None and codes.max() > _MAX_CODE:
            row = int(np.argmax(codes))
            raise DataFormatError(
                path, f"label code {codes[row]} (row {row + 1}) is implausibly large"
            )
        if names is None:
            names = tuple(str(i) for i in range(int(codes.max()) + 1))
        elif codes.max() >= len(names):
            row = int(np.argmax(codes >= len(names)))
            raise DataFormatError(
                path,
                f"label code {codes[row]} (row {row + 1}) is out of range for "
                f"{len(names)} label names {list(names)}",
            )
        return codes, names
    n_int = int((present & is_int).sum())
    if n_int:  # names and integer codes mixed: a corrupted cell; point at the odd one out
        codes_odd = 2 * n_int <= int(present.sum())
        r = int(np.argmax(present & (is_int if codes_odd else ~is_int)))
        odd = "integer code" if codes_odd else "name"
        raise DataFormatError(
            path,
            f"label column mixes names and integer codes: {odd} {str(values[r])!r} at row {r + 1}",
        )
    uniq, inverse = np.unique(values, return_inverse=True)
    if names is None:
        names = tuple(str(u) for u in uniq if u != "")  # alphabetical
    lookup = {n: i for i, n in enumerate(names)}
    unknown = [str(u) for u in uniq if u != "" and u not in lookup]
    if unknown:
        raise DataFormatError(path, f"unknown label(s) {unknown}; expected one of {list(names)}")
    table = np.array([lookup.get(u, UNLABELLED) for u in uniq], dtype=np.int64)
    return table[inverse.ravel()], names


def _from_onehot(
    path: Path, df: pd.DataFrame, frames: np.ndarray | None, names: tuple[str, ...] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    raw = df.to_numpy(str)
    cols = list(df.columns)
    ok = np.isin(raw, ["0", "1", "0.0", "1.0", ""])
    if not ok.all():
        r, c = (int(v) for v in np.argwhere(~ok)[0])
        raise DataFormatError(
            path,
            f"value {str(raw[r, c])!r} in column {cols[c]!r} (row {r + 1}) is not 0/1; expected "
            "'frame,label' or one 0/1 column per behaviour",
        )
    hot = np.isin(raw, ["1", "1.0"])
    n_hot = hot.sum(axis=1)
    if (n_hot > 1).any():
        r = int(np.argmax(n_hot > 1))
        which = [cols[c] for c in np.flatnonzero(hot[r])]
        frame = frames[r] if frames is not None else r
        raise DataFormatError(
            path, f"frame {frame} (row {r + 1}) has several behaviours set to 1: {which}"
        )
    if names is None:
        names = tuple(cols)  # file column order
        col_to_idx = np.arange(len(cols))
    else:
        lookup = {n: i for i, n in enumerate(names)}
        unknown = [c for c in cols if c not in lookup]
        if unknown:
            raise DataFormatError(
                path, f"unknown label column(s) {unknown}; expected one of {list(names)}"
            )
        col_to_idx = np.array([lookup[c] for c in cols], dtype=np.int64)
    labels = np.where(n_hot == 1, col_to_idx[np.argmax(hot, axis=1)], UNLABELLED)
    return labels.astype(np.int64), names


def order_by_frame(path: Path, frames_text: np.ndarray, labels: np.ndarray) -> np.ndarray:
    is_int = _is_int_text(frames_text)
    if not is_int.all():
        r = int(np.argmin(is_int))
        raise DataFormatError(
            path, f"frame {str(frames_text[r])!r} (row {r + 1}) is not an integer"
        )
    frames = _as_int(path, frames_text, "frame")
    n = frames.size
    if (frames < 0).any() or (frames >= n).any():
        r = int(np.argmax((frames < 0) | (frames >= n)))
        raise DataFormatError(
            path,
            f"frame {frames[r]} (row {r + 1}) outside 0..{n - 1}: the frame column must list "
            "every frame 0..n-1 once",
        )
    counts = np.bincount(frames, minlength=n)
    if (counts != 1).any():
        dup = int(np.argmax(counts > 1)) if (counts > 1).any() else None
        missing = int(np.argmax(counts == 0))
        raise DataFormatError(
            path,
            f"frame {dup} appears more than once"
            if dup is not None
            else f"frame {missing} is missing",
        )
    out = np.empty_like(labels)
    out[frames] = labels
    return out


# ----------------------------------------------------------------------------- name rules
# Shared with :mod:`dbm_lightning.io.label_formats` (whose docstring states the rules).


def name_key(name: object) -> str:
    """How label and body-part names are compared: without case, surrounding spaces or
    repeated inner spaces (``" Left  Ear "`` is ``"left ear"``)."""
    return " ".join(str(name).split()).casefold()


def dedupe(items: Sequence[str]) -> list[str]:
    """``items`` without repeats, first occurrences kept in order."""
    return list(dict.fromkeys(items))


class NameRules:
    """A caller's naming options (``label_names``, ``rename``, ``ignore``).

    ``target`` maps a file's name to its class key (None when ignored); ``classes`` builds the
    class tuple from the keys present. Bad options raise ValueError.
    """

    def __init__(
        self,
        label_names: Sequence[str] | None = None,
        rename: Mapping[str, str] | None = None,
        ignore: Sequence[str] = (),
    ) -> None:
        self.ignore = {name_key(n) for n in ([ignore] if isinstance(ignore, str) else ignore)}
        self.rename: dict[str, str] = {}
        for old, new in (rename or {}).items():
            if self.rename.setdefault(name_key(old), name_key(new)) != name_key(new):
                raise ValueError(f"rename maps {old!r} twice (names ignore case and spaces)")
        self.fixed: tuple[str, ...] | None = None
        self.index: dict[str, int] = {}
        if label_names is not None:
            given = [label_names] if isinstance(label_names, str) else label_names
            self.fixed = tuple(str(n).strip() for n in given)
            keys = [name_key(n) for n in self.fixed]
            dup = [n for n, k in zip(self.fixed, keys, strict=True) if keys.count(k) > 1]
            if dup:
                raise ValueError(f"label_names repeats {dup} (names ignore case and spaces)")
            both = [n for n, k in zip(self.fixed, keys, strict=True) if k in self.ignore]
            if both:
                raise ValueError(f"{both} both in label_names and in ignore")
            self.index = {k: i for i, k in enumerate(keys)}

    def renamed(self, name: str) -> str:
        return self.rename.get(name_key(name), name_key(name))

    def target(self, name: str) -> str | None:
        key = self.renamed(name)
        return None if key in self.ignore else key

    def plain(self, name: str | None) -> str | None:
        """A name of the caller's own (``background``): never renamed, maybe ignored."""
        return None if name is None or name_key(name) in self.ignore else name_key(name)

    def what(self, name: str, kind: str = "label") -> str:
        """``name`` described for an error message."""
        key = self.renamed(name)
        return f"{kind} {name.strip()!r}" + (f" (renamed {key!r})" if key != name_key(name) else "")

    def classes(
        self, path: Path, present: Sequence[tuple[str, str]], *, alphabetical: bool
    ) -> tuple[tuple[str, ...], dict[str, int]]:
        """Class names and ``{key: index}`` for the ``(key, description)`` pairs present:
        ``label_names`` when given (a key not in it is an error), else the keys, sorted or in
        order of appearance."""
        if self.fixed is not None:
            unknown = dedupe([what for key, what in present if key not in self.index])
            if unknown:
                raise DataFormatError(
                    path, f"{', '.join(unknown)} not in label_names {list(self.fixed)}"
                )
            return self.fixed, dict(self.index)
        keys = dedupe([key for key, _ in present])
        keys = sorted(keys) if alphabetical else keys
        return tuple(keys), {k: i for i, k in enumerate(keys)}

    def lookup(self, index: dict[str, int], names: Sequence[str]) -> np.ndarray:
        """Class index of each file name (UNLABELLED where ignored)."""
        keys = [self.target(n) for n in names]
        return np.array([index[k] if k else UNLABELLED for k in keys], np.int64)


def load_labels_with_rules(
    path: str | Path, n_frames: int, rules: NameRules
) -> tuple[np.ndarray, tuple[str, ...]]:
    """:func:`load_labels` with the name rules (``format="csv"`` of ``read_label_file``)."""
    raw, file_names, kind = read_plain_labels(path, n_frames)
    if kind == "codes" and rules.fixed is not None:
        return load_labels(path, n_frames, rules.fixed)  # codes index into label_names
    present = [(rules.target(n), rules.what(n)) for n in file_names]
    out, index = rules.classes(
        Path(path), [p for p in present if p[0]], alphabetical=kind == "names"
    )
    table = np.append(rules.lookup(index, file_names), UNLABELLED)
    return table[raw], out  # raw == -1 picks the appended UNLABELLED


# ----------------------------------------------------------------------------- cells


def ints_at_lines(path: Path, text: list[str], lines: list[int], what: str) -> np.ndarray:
    """Integer cells (``lines`` their line numbers, for the error) as int64."""
    arr = np.array(text, dtype=str)
    ok = _is_int_text(arr) & (np.char.str_len(np.char.lstrip(arr, "-")) <= _MAX_DIGITS)
    if not ok.all():
        r = int(np.argmin(ok))
        raise DataFormatError(path, f"line {lines[r]}: {what} {text[r]!r} is not an integer")
    return arr.astype(np.int64)


def frame_index_text(path: Path, frames: pd.Series) -> np.ndarray:
    """The frame index column as integer text (for :func:`order_by_frame`)."""
    v = pd.to_numeric(frames, errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(v) | (v != np.round(v)) | (np.abs(v) >= 10**_MAX_DIGITS)
    if bad.any():
        r = int(np.argmax(bad))
        raise DataFormatError(path, f"frame {frames.iloc[r]!r} (row {r + 1}) is not an integer")
    return v.astype(np.int64).astype(str)
