"""Every pose format the project reads, registered in one place.

The catalogue's folder scan, :func:`~dbm_lightning.io.catalogue.load_sessions` (and so
``skip_corrupted``), the on-disk cache and ``dbm-predict`` all go through :func:`load_pose`
and :data:`POSE_FORMATS`, so they see the same list of files.

====================  ===========================================  =====================
format                file names                                   needs
====================  ===========================================  =====================
``dlc``               ``.csv`` (``.csv.gz``, ``.csv.bz2``,         (core)
                      ``.csv.xz``), ``.h5``/``.hdf5``/``.hdf``
``sleap``             ``.slp``; analysis ``.h5`` (told from a      ``.slp``: ``[sleap]``
                      DeepLabCut ``.h5`` by its content)
``nwb``               ``.nwb`` (ndx-pose ``PoseEstimation``)        ``[nwb]``
====================  ===========================================  =====================

Lightning Pose CSV shares DeepLabCut's layout and is read as ``dlc``. The original DBM
``.mat`` file holds many trials and is its own data source (``data=dbm_mat``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.compressed import kind_suffix
from dbm_lightning.io.dlc import H5_SUFFIXES, load_dlc
from dbm_lightning.session import Session

PoseLoader = Callable[..., Session]


@dataclass(frozen=True)
class PoseFormat:
    """One pose format: its name, the file suffixes it owns and its reader.

    ``load(path, individuals=None, fps=None) -> Session``.
    """

    name: str
    suffixes: tuple[str, ...]
    load: PoseLoader


def _load_h5(path: Path, individuals: Sequence[str] | None = None, fps: float | None = None):
    """A ``.h5`` file: a SLEAP analysis file when it holds SLEAP's datasets, else DeepLabCut."""
    from dbm_lightning.io.sleap import is_sleap_analysis_h5, load_sleap

    if is_sleap_analysis_h5(path):
        return load_sleap(path, individuals=individuals, fps=fps)
    try:
        return load_dlc(path, individuals=individuals, fps=fps)
    except DataFormatError as exc:
        if "no pandas table" not in exc.problem:
            raise
        import h5py

        with h5py.File(path, "r") as f:
            names = sorted(f)[:6]
        raise DataFormatError(
            path,
            f"neither a DeepLabCut H5 table nor a SLEAP analysis file (it holds {names}; "
            "SLEAP's has 'tracks' and 'node_names')",
        ) from None


def _load_slp(path: Path, individuals: Sequence[str] | None = None, fps: float | None = None):
    from dbm_lightning.io.sleap import load_sleap

    return load_sleap(path, individuals=individuals, fps=fps)


def _load_nwb(path: Path, individuals: Sequence[str] | None = None, fps: float | None = None):
    from dbm_lightning.io.nwb import load_nwb

    return load_nwb(path, individuals=individuals, fps=fps)


POSE_FORMATS: tuple[PoseFormat, ...] = (
    PoseFormat("dlc", (".csv", ".csv.gz", ".csv.bz2", ".csv.xz"), load_dlc),
    PoseFormat("dlc_or_sleap_h5", H5_SUFFIXES, _load_h5),
    PoseFormat("sleap", (".slp",), _load_slp),
    PoseFormat("nwb", (".nwb",), _load_nwb),
)
"""The registered formats, in the order a folder scan prefers them for one recording."""

POSE_SUFFIXES: tuple[str, ...] = tuple(s for f in POSE_FORMATS for s in f.suffixes)
"""Every file suffix (lower case, compression included) that holds pose."""

_BY_SUFFIX = {s: f for f in POSE_FORMATS for s in f.suffixes}


def pose_format(path: str | Path) -> PoseFormat | None:
    """The format that reads ``path`` (by its :func:`kind_suffix`), ``None`` when none does."""
    return _BY_SUFFIX.get(kind_suffix(path))


def load_pose(
    path: str | Path, individuals: Sequence[str] | None = None, fps: float | None = None
) -> Session:
    """Read one pose file of any registered format into a :class:`Session`.

    Raises
    ------
    DataFormatError
        When the file is missing, its kind is not registered (listing the suffixes read) or
        its reader refuses it.
    """
    path = Path(path)
    fmt = pose_format(path)
    if fmt is None:
        raise DataFormatError(
            path,
            f"not a pose file this project reads (suffix {kind_suffix(path) or 'none'!r}); "
            f"pose files end in {', '.join(POSE_SUFFIXES)}",
        )
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    return fmt.load(path, individuals=individuals, fps=fps)
