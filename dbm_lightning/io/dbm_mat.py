"""The original DBM MATLAB v7.3 file: ``body_parts_X``/``_Y`` and ``behavior_pseudolabels``.

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
    """Read a DBM v7.3 ``.mat`` file into one :class:`Session` per trial.

    Sessions are named ``trial_01`` ... (zero-padded), carry ``extra["trial"]`` (1-based),
    body parts ``part1..partP`` (the file has no names), ``likelihood`` of ones, and, when the
    file has ``behavior_pseudolabels``, ``labels`` with ``label_names`` = the MATLAB categories
    in their MATLAB order (categories that differ between trials are merged in order of first
    appearance). Without that variable the sessions have no labels.

    Raises
    ------
    DataFormatError
        When the file is not HDF5 (e.g. a pre-v7.3 MAT file), lacks ``body_parts_X``/``_Y``,
        or the cells do not agree in number or shape.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DataFormatError(
            path,
            f"not a MATLAB v7.3 (HDF5) file ({exc}); re-save it in MATLAB with save(..., '-v7.3')",
        ) from None
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
