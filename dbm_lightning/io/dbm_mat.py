"""The original DBM MATLAB file: ``body_parts_X``/``_Y`` and ``behavior_pseudolabels``.

Both MATLAB forms are read: v7.3 (HDF5, what the original code saves, described next) and
MATLAB's default v5/v7 form (read with :func:`scipy.io.loadmat`). In a v5/v7 file the cells
hold ``(body parts, frames)`` matrices; its labels may be a cell of text arrays (one name per
frame; an empty name is unlabelled; classes in alphabetical order, or in the order of a
``behavior_categories`` cell when the file has one) or of numeric codes (1-based into
``behavior_categories`` when the file has it, else the code itself names the class; 0 or
NaN is unlabelled). A MATLAB ``categorical`` is stored as an opaque object in that form,
which no reader outside MATLAB decodes: the error says to re-save with ``-v7.3`` or to store
``cellstr(labels)``.

A v7.3 MAT file is an HDF5 container. Each variable is a ``1 x n_trials`` cell array of object
references; an X/Y cell is ``single`` (body parts x frames in MATLAB, stored transposed as
(frames, body parts) by HDF5). Each pseudolabel cell is a MATLAB ``categorical``: an MCOS
object whose reference (a uint32 vector) holds the object id ``k`` as its 5th element. The
object's properties live in ``#subsystem#/MCOS``: entry ``2 + 2(k-1)`` is the cell of category
names and entry ``3 + 2(k-1)`` the uint8 codes (1-based; 0 = undefined -> ``UNLABELLED``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dbm_lightning.errors import DataFormatError
from dbm_lightning.session import UNLABELLED, Session

X_VAR = "body_parts_X"
Y_VAR = "body_parts_Y"
LABEL_VAR = "behavior_pseudolabels"
MCOS_PATH = "#subsystem#/MCOS"


def load_dbm_mat(path: str | Path) -> list[Session]:
    """Read a DBM ``.mat`` file (v7.3 or v5/v7) into one :class:`Session` per trial.

    Sessions are named ``trial_01`` ... (zero-padded), carry ``extra["trial"]`` (1-based),
    body parts ``part1..partP`` (the file has no names), ``likelihood`` of ones, and, when the
    file has ``behavior_pseudolabels``, ``labels`` with ``label_names`` = the MATLAB categories
    in their MATLAB order (categories that differ between trials are merged in order of first
    appearance). Without that variable the sessions have no labels.

    Raises
    ------
    DataFormatError
        When the file is not a MAT file, lacks ``body_parts_X``/``_Y``, or the cells do not
        agree in number or shape.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    if not is_hdf5:
        xs, ys, labels, label_names = _read_v5(path)
        return _sessions(path, xs, ys, labels, label_names)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(path, f"cannot read as a MATLAB v7.3 (HDF5) file ({exc})") from None
    with f:
        missing = [v for v in (X_VAR, Y_VAR) if v not in f]
        if missing:
            present = [k for k in f if not k.startswith("#")]
            raise DataFormatError(path, f"missing variable(s) {missing}; the file has {present}")
        xs = _read_numeric_cells(path, f, X_VAR)
        ys = _read_numeric_cells(path, f, Y_VAR)
        if len(xs) != len(ys):
            raise DataFormatError(path, f"{X_VAR} has {len(xs)} cells but {Y_VAR} has {len(ys)}")
        labels: list[np.ndarray] | None = None
        label_names: tuple[str, ...] | None = None
        if LABEL_VAR in f:
            labels, label_names = _read_categorical_cells(path, f, LABEL_VAR)
            if len(labels) != len(xs):
                raise DataFormatError(
                    path, f"{LABEL_VAR} has {len(labels)} cells but {X_VAR} has {len(xs)}"
                )

    return _sessions(path, xs, ys, labels, label_names)


def _sessions(
    path: Path,
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    labels: list[np.ndarray] | None,
    label_names: tuple[str, ...] | None,
) -> list[Session]:
    """One session per trial from ``(frames, parts)`` X and Y matrices and the labels."""
    n = len(xs)
    width = max(2, len(str(n)))
    sessions = []
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        if x.shape != y.shape:
            raise DataFormatError(
                path, f"trial {i + 1}: {X_VAR} is {x.shape} but {Y_VAR} is {y.shape}"
            )
        # HDF5 stores MATLAB's (parts, frames) as (frames, parts)
        pose = np.stack([x, y], axis=-1).astype(np.float32)
        n_parts = pose.shape[1]
        lab = None
        if labels is not None:
            lab = labels[i]
            if lab.shape[0] != pose.shape[0]:
                raise DataFormatError(
                    path,
                    f"trial {i + 1}: {lab.shape[0]} pseudolabels for {pose.shape[0]} frames",
                )
        sessions.append(
            Session(
                pose=pose,
                likelihood=np.ones(pose.shape[:2], dtype=np.float32),
                bodyparts=tuple(f"part{j + 1}" for j in range(n_parts)),
                name=f"trial_{i + 1:0{width}d}",
                labels=lab,
                label_names=label_names if lab is not None else None,
                source=path,
                extra={"trial": i + 1},
            )
        )
    return sessions


def _read_v5(
    path: Path,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray] | None, tuple[str, ...] | None]:
    """X, Y (``(frames, parts)`` each) and labels of a v5/v7 MAT file (scipy.io)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(path, squeeze_me=False, mat_dtype=False)
    except (ValueError, TypeError, OSError, NotImplementedError, EOFError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataFormatError(path, f"not a readable MATLAB .mat file ({msg})") from None
    present = sorted(k for k in mat if not k.startswith("__"))
    missing = [v for v in (X_VAR, Y_VAR) if v not in mat]
    if missing:
        raise DataFormatError(path, f"missing variable(s) {missing}; the file has {present}")
    xs = [c.T for c in _v5_numeric_cells(path, mat, X_VAR)]
    ys = [c.T for c in _v5_numeric_cells(path, mat, Y_VAR)]
    if len(xs) != len(ys):
        raise DataFormatError(path, f"{X_VAR} has {len(xs)} cells but {Y_VAR} has {len(ys)}")
    if LABEL_VAR not in mat:
        return xs, ys, None, None
    labels, names = _v5_label_cells(path, mat)
    if len(labels) != len(xs):
        raise DataFormatError(
            path, f"{LABEL_VAR} has {len(labels)} cells but {X_VAR} has {len(xs)}"
        )
    return xs, ys, labels, names


def _v5_cells(path: Path, mat: dict, var: str) -> list:
    value = mat[var]
    if not (isinstance(value, np.ndarray) and value.dtype == object):
        kind = "an opaque object (e.g. a categorical)" if _is_opaque(value) else "not a cell"
        raise DataFormatError(path, f"variable {var!r} is {kind}; expected a cell array")
    return list(value.ravel(order="F"))


def _is_opaque(value: object) -> bool:
    return type(value).__name__ == "MatlabOpaque" or (
        isinstance(value, np.ndarray)
        and value.dtype.names is not None
        and "s0" in value.dtype.names
    )


def _v5_numeric_cells(path: Path, mat: dict, var: str) -> list[np.ndarray]:
    out = []
    for i, cell in enumerate(_v5_cells(path, mat, var)):
        arr = np.asarray(cell)
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
            raise DataFormatError(
                path, f"{var}{{{i + 1}}} is not a numeric matrix (shape {arr.shape})"
            )
        out.append(arr.astype(np.float32))
    return out


def _v5_text(cell: object) -> np.ndarray:
    """A cell of per-frame names (a cellstr or a char matrix) as a 1-D str array."""
    arr = np.asarray(cell)
    if arr.dtype == object:
        return np.array(["".join(np.asarray(x).ravel().tolist()) if np.size(x) else "" for x in
                         arr.ravel(order="F")], dtype=str)  # fmt: skip
    if arr.ndim == 2 and arr.shape[0] > 1:  # a char matrix: one name per row
        return np.char.strip(np.array(["".join(r) for r in arr], dtype=str))
    return np.char.strip(arr.ravel().astype(str))


def _v5_label_cells(path: Path, mat: dict) -> tuple[list[np.ndarray], tuple[str, ...]]:
    if _is_opaque(mat[LABEL_VAR]) or any(_is_opaque(c) for c in _v5_cells(path, mat, LABEL_VAR)):
        raise DataFormatError(
            path,
            f"{LABEL_VAR!r} holds MATLAB categorical objects, which only MATLAB decodes in a "
            "v5/v7 file; re-save it with save(..., '-v7.3') or store cellstr(labels)",
        )
    cells = _v5_cells(path, mat, LABEL_VAR)
    categories = None
    if "behavior_categories" in mat:
        categories = [str(n) for n in _v5_text(mat["behavior_categories"]) if str(n)]
    texts: list[np.ndarray] = []
    for i, cell in enumerate(cells):
        arr = np.asarray(cell)
        if np.issubdtype(arr.dtype, np.number):
            codes = arr.ravel().astype(np.float64)
            if np.any(np.isfinite(codes) & ((codes < 0) | (codes != np.round(codes)))):
                raise DataFormatError(
                    path, f"{LABEL_VAR}{{{i + 1}}}: label codes must be whole numbers >= 0"
                )
            codes = np.where(np.isfinite(codes), codes, 0).astype(np.int64)
            if categories is not None and codes.max(initial=0) > len(categories):
                raise DataFormatError(
                    path,
                    f"{LABEL_VAR}{{{i + 1}}}: code {codes.max()} for {len(categories)} "
                    "behavior_categories",
                )
            names = np.array([""] + (categories or []), dtype=object)
            text = (
                names[codes].astype(str)
                if categories is not None
                else np.where(codes > 0, codes.astype(str), "")
            )
            texts.append(np.asarray(text, dtype=str))
        else:
            texts.append(_v5_text(cell))
    found = sorted({str(t) for text in texts for t in np.unique(text) if t})
    names = tuple(categories) if categories is not None else tuple(found)
    unknown = sorted(set(found) - set(names))
    if unknown:
        raise DataFormatError(
            path, f"{LABEL_VAR} holds label(s) {unknown} that behavior_categories does not list"
        )
    lookup = {n: k for k, n in enumerate(names)}
    out = []
    for text in texts:
        uniq, inverse = np.unique(text, return_inverse=True)
        table = np.array([lookup.get(str(u), UNLABELLED) for u in uniq], dtype=np.int64)
        out.append(table[inverse.ravel()])
    return out, names


def _cell_refs(path: Path, f, var: str) -> np.ndarray:
    ds = f[var]
    cls = ds.attrs.get("MATLAB_class", b"")
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    if cls != "cell":
        raise DataFormatError(path, f"variable {var!r} is a MATLAB {cls or 'value'}, not a cell")
    return np.asarray(ds[()]).ravel(order="F")


def _read_numeric_cells(path: Path, f, var: str) -> list[np.ndarray]:
    out = []
    for i, ref in enumerate(_cell_refs(path, f, var)):
        arr = np.asarray(f[ref][()])
        if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
            raise DataFormatError(
                path, f"{var}{{{i + 1}}} is not a numeric matrix (shape {arr.shape})"
            )
        out.append(arr.astype(np.float32))
    return out


def _matlab_string(f, ref) -> str:
    arr = np.asarray(f[ref][()]).ravel(order="F")
    if arr.dtype.kind in "ui":
        return "".join(map(chr, arr.tolist()))
    return str(arr)


def _read_categorical_cells(path: Path, f, var: str) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """Decode a cell of MATLAB categoricals into 0-based codes and one shared name tuple."""
    if MCOS_PATH not in f:
        raise DataFormatError(path, f"{var!r} has no MCOS subsystem: cannot decode categoricals")
    mcos = np.asarray(f[MCOS_PATH][()]).ravel(order="F")
    names: list[str] = []
    out = []
    for i, ref in enumerate(_cell_refs(path, f, var)):
        obj = f[ref]
        cls = obj.attrs.get("MATLAB_class", b"")
        cls = cls.decode() if isinstance(cls, bytes) else str(cls)
        if cls != "categorical":
            raise DataFormatError(
                path, f"{var}{{{i + 1}}} is a MATLAB {cls or 'value'}, expected categorical"
            )
        header = np.asarray(obj[()]).ravel()
        if header.size < 5:
            raise DataFormatError(path, f"{var}{{{i + 1}}}: malformed MCOS object reference")
        k = int(header[4])
        names_idx, codes_idx = 2 + 2 * (k - 1), 3 + 2 * (k - 1)
        if k < 1 or codes_idx >= mcos.size:
            raise DataFormatError(
                path, f"{var}{{{i + 1}}}: MCOS object id {k} outside the subsystem table"
            )
        cats = [_matlab_string(f, r) for r in np.asarray(f[mcos[names_idx]][()]).ravel("F")]
        codes = np.asarray(f[mcos[codes_idx]][()]).ravel().astype(np.int64)
        if codes.size and codes.max() > len(cats):
            raise DataFormatError(
                path, f"{var}{{{i + 1}}}: code {codes.max()} for {len(cats)} categories"
            )
        for c in cats:
            if c not in names:
                names.append(c)
        remap = np.array([UNLABELLED] + [names.index(c) for c in cats], dtype=np.int64)
        out.append(remap[codes])  # code 0 (undefined) -> UNLABELLED
    return out, tuple(names)
