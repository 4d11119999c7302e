"""NWB pose files (the ``ndx-pose`` extension) -> :class:`~dbm_lightning.session.Session`.

An NWB file stores pose as ``PoseEstimation`` containers (usually in the processing module
``behavior``), each holding one ``PoseEstimationSeries`` per body part: ``data``
``(frames, 2)`` or ``(frames, 3)``, an optional ``confidence`` ``(frames,)`` and the time of
every sample, as ``timestamps`` or as ``rate`` and ``starting_time``. ``pynwb`` and
``ndx_pose`` are an optional extra, imported only here.

Choices where the format allows several readings:

* **Animals**: NWB holds one subject per file, so ndx-pose stores one animal per
  ``PoseEstimation``; a file with several (sleap-io's export writes one per track, named
  ``track=<name>``; DeepLabCut's DLC2NWB writes one file per animal) is read as a multi-animal
  session. Every ``PoseEstimation`` of the file's processing modules (and of ``acquisition``)
  is an individual, named by the container (``track=`` removed), in file order;
  ``individuals`` selects and orders them. Containers of one name in several modules (several
  videos) are an error. One animal gives a single-animal session. ``PoseEstimation`` objects
  inside a ``MultiCameraPoseEstimation`` are camera views of one animal, not animals: that
  container is not read (a warning says so; a file with nothing else raises).
* **Body parts**: the series names, in the order of the container's ``Skeleton`` nodes (series
  the skeleton does not name follow, in file order, which is alphabetical once written).
  Every kept animal needs the same parts; by default animals whose parts differ from the most
  common set are left out with a warning.
* **3D** series ``(frames, 3)``: x and y are kept and a warning says that z is dropped.
* **Values**: ``data * conversion + offset`` (NWB's unit scaling), float32; NaN where missing.
  **Likelihood** is ``confidence`` clipped to [0, 1], 1 where a point has no confidence (and
  when a series has none), 0 where the point is missing.
* **Frames and fps**: series with the same number of samples and the same times are stacked
  sample by sample; fps is their ``rate``, or 1 / the median step of their timestamps (to 6
  decimals). Series of different lengths or times (sleap-io's export drops a body part's
  missing frames from its series) are placed on one frame grid by their sample times: fps is
  the common ``rate`` (series of different rates are an error) or 1 / the median step of all
  timestamps, frame 0 is the earliest sample; a sample more than 0.2 frame off the grid,
  timestamps that are not increasing, and ``data`` / ``timestamps`` / ``confidence`` of
  different lengths within one series are errors. ``extra["start_time"]`` is the time of
  frame 0 in seconds. The file's fps wins over the ``fps`` argument, which is used when the
  file gives none (a single sample). Note: sleap-io's export, unless given the video's
  timestamps, stores frame numbers as seconds, which reads as 1 fps.
* **Name**: the file stem; ``extra`` = ``{"individuals", "file_individuals", "format": "nwb",
  "start_time"}`` (plus ``"subject_id"`` when the file has a subject).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.compressed import file_stem
from dbm_lightning.io.sleap import animals_session
from dbm_lightning.session import Session, select_individuals

NWB_EXTRA_HINT = 'reading NWB files needs the optional extra: pip install "dbm-lightning[nwb]"'
_GRID_TOLERANCE = 0.2  # frames


class _Series:
    """One body part's samples: xy ``(n, 2)`` float32, likelihood ``(n,)``, sample times."""

    def __init__(
        self,
        name: str,
        xy: np.ndarray,
        lik: np.ndarray,
        times: np.ndarray | None,
        rate: float | None,
        start: float,
    ) -> None:
        self.name, self.xy, self.lik = name, xy, lik
        self.times, self.rate, self.start = times, rate, start

    def sample_times(self) -> np.ndarray:
        if self.times is not None:
            return self.times
        return self.start + np.arange(self.xy.shape[0]) / self.rate


def load_nwb(
    path: str | Path, individuals: Sequence[str] | None = None, fps: float | None = None
) -> Session:
    """Read the ndx-pose ``PoseEstimation`` data of an NWB file into a :class:`Session`.

    Parameters
    ----------
    path
        The ``.nwb`` file (needs ``pynwb`` and ``ndx-pose``: ``pip install
        "dbm-lightning[nwb]"``).
    individuals
        Which ``PoseEstimation`` containers (animals) to keep, in this order, by name
        (``track=`` of sleap-io's export removed). Two or more give a multi-animal session
        (body parts ``"<individual>/<part>"``); one gives a single-animal session.
    fps
        Frame rate to use when the file gives none.

    Returns
    -------
    Session
        ``pose`` (frames, parts, 2) float32 with NaN where missing, ``likelihood`` in [0, 1]
        (0 where missing), ``name`` = file stem, ``source`` = path. See the module docstring
        for how animals, parts, times and confidences are read.

    Raises
    ------
    DataFormatError
        Naming the file and the problem (not found, not an NWB file, truncated, no
        ``PoseEstimation``, series of different rates or off one frame grid, lengths that do
        not match within a series, unknown individual, animals with different body parts,
        a body part never tracked, ``pynwb`` / ``ndx-pose`` missing, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    pynwb = _import_nwb(path)
    import h5py

    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    if not is_hdf5:
        raise DataFormatError(path, "not an NWB file (no HDF5 signature)")
    try:
        with pynwb.NWBHDF5IO(str(path), "r", load_namespaces=True) as io:
            nwbfile = io.read()
            animals = _read_animals(path, nwbfile)
            subject = getattr(nwbfile, "subject", None)
            subject_id = getattr(subject, "subject_id", None) if subject is not None else None
    except DataFormatError:
        raise
    except Exception as exc:  # OSError (truncated), KeyError, hdmf errors, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataFormatError(
            path, f"cannot read as an NWB pose file ({type(exc).__name__}: {msg[:300]})"
        ) from None

    names = list(animals)
    kept = _choose_animals(path, animals, individuals)
    parts = [s.name for s in animals[kept[0]]]
    for name in kept[1:]:  # the same parts, in the first animal's order
        order = {s.name: s for s in animals[name]}
        animals[name] = [order[p] for p in parts]
    pose, likelihood, file_fps, start = _stack(path, [animals[k] for k in kept])
    extra = {"start_time": start}
    if subject_id is not None:
        extra["subject_id"] = str(subject_id)
    session = animals_session(
        path,
        pose,
        likelihood,
        kept,
        parts,
        individuals=individuals,
        fps=fps,
        file_fps=file_fps,
        fmt="nwb",
        name=file_stem(path),
        extra=extra,
    )
    session.extra["file_individuals"] = names
    return session


def _import_nwb(path: Path):
    try:
        import ndx_pose  # noqa: F401 - registers the ndx-pose types with pynwb
        import pynwb
    except ImportError:
        raise DataFormatError(path, NWB_EXTRA_HINT) from None
    return pynwb


# ----------------------------------------------------------------------------- containers


def _read_animals(path: Path, nwbfile) -> dict[str, list[_Series]]:
    """Every animal's series (in its skeleton's node order), by animal name, in file order."""
    from ndx_pose import MultiCameraPoseEstimation, PoseEstimation

    found: dict[str, tuple[str, object]] = {}
    skipped = []
    groups = [(name, module.data_interfaces) for name, module in nwbfile.processing.items()]
    groups.append(("acquisition", nwbfile.acquisition))
    for module_name, interfaces in groups:
        for container in interfaces.values():
            if isinstance(container, MultiCameraPoseEstimation):
                skipped.append(f"{module_name}/{container.name}")
            elif isinstance(container, PoseEstimation):
                name = container.name.removeprefix("track=")
                if name in found:
                    raise DataFormatError(
                        path,
                        f"PoseEstimation {name!r} in processing modules {found[name][0]!r} and "
                        f"{module_name!r} (several videos in one file?); one video per file",
                    )
                found[name] = (module_name, container)
    if skipped:
        warnings.warn(
            f"{path}: MultiCameraPoseEstimation {skipped} not read (3D multi-camera pose: its "
            "PoseEstimation children are camera views of one animal)",
            stacklevel=3,
        )
    if not found:
        raise DataFormatError(
            path,
            "no ndx-pose PoseEstimation in the file's processing modules "
            f"{list(nwbfile.processing)}"
            + (" (only MultiCameraPoseEstimation, which is not supported)" if skipped else ""),
        )
    animals = {}
    dropped_z = []
    for name, (_module, container) in found.items():
        series = [_read_series(path, name, s, dropped_z) for s in _ordered_series(container)]
        if not series:
            raise DataFormatError(path, f"PoseEstimation {container.name!r} holds no series")
        animals[name] = series
    if dropped_z:
        warnings.warn(
            f"{path}: 3D series {dropped_z[:6]}: x and y are read, z is dropped",
            stacklevel=3,
        )
    return animals


def _ordered_series(container) -> list:
    series = dict(container.pose_estimation_series)
    skeleton = getattr(container, "skeleton", None)
    nodes = [str(n) for n in skeleton.nodes[:]] if skeleton is not None else []
    first = [series[n] for n in nodes if n in series]
    return first + [s for n, s in series.items() if n not in nodes]


def _read_series(path: Path, animal: str, series, dropped_z: list) -> _Series:
    where = f"series {animal}/{series.name}"
    data = np.asarray(series.data[()], dtype=np.float64)
    if data.ndim != 2 or data.shape[1] not in (2, 3):
        raise DataFormatError(path, f"{where} has data of shape {data.shape}, not (frames, 2|3)")
    if data.shape[1] == 3:
        dropped_z.append(f"{animal}/{series.name}")
    conversion = float(getattr(series, "conversion", 1.0) or 1.0)
    offset = float(getattr(series, "offset", 0.0) or 0.0)
    xy = data[:, :2] * conversion + offset
    if np.isinf(xy).any():
        raise DataFormatError(path, f"{where} holds infinite values")
    n = xy.shape[0]
    if series.confidence is None:
        lik = np.ones(n, dtype=np.float32)
    else:
        conf = np.asarray(series.confidence[()], dtype=np.float32).reshape(-1)
        if conf.shape[0] != n:
            raise DataFormatError(path, f"{where} has {conf.shape[0]} confidences for {n} samples")
        lik = np.clip(conf, 0.0, 1.0)
        lik[np.isnan(lik)] = 1.0
    times = None
    rate = None if series.rate is None else float(series.rate)
    if series.timestamps is not None:
        times = np.asarray(series.timestamps[()], dtype=np.float64).reshape(-1)
        if times.shape[0] != n:
            raise DataFormatError(path, f"{where} has {times.shape[0]} timestamps for {n} samples")
        if n > 1 and not (np.diff(times) > 0).all():
            raise DataFormatError(path, f"{where} has timestamps that are not increasing")
    elif rate is None or not rate > 0:
        raise DataFormatError(path, f"{where} has neither timestamps nor a positive rate")
    start = float(series.starting_time or 0.0) if times is None else 0.0
    return _Series(str(series.name), xy.astype(np.float32), lik, times, rate, start)


def _choose_animals(
    path: Path, animals: dict[str, list[_Series]], wanted: Sequence[str] | None
) -> list[str]:
    names = list(animals)
    part_sets = {a: frozenset(s.name for s in animals[a]) for a in names}
    if wanted:
        wanted = select_individuals(path, wanted, names)
        for w in wanted[1:]:
            if part_sets[w] != part_sets[wanted[0]]:
                raise DataFormatError(
                    path,
                    f"individuals {wanted[0]!r} and {w!r} have different body parts "
                    f"({sorted(part_sets[wanted[0]])} vs {sorted(part_sets[w])})",
                )
        return wanted
    common = Counter(part_sets.values()).most_common(1)[0][0]
    kept = [a for a in names if part_sets[a] == common]
    left = [a for a in names if a not in kept]
    if left:
        warnings.warn(
            f"{path}: individual(s) {left} left out: their body parts differ from the "
            f"animals' {sorted(common)}; name them in individuals to read them",
            stacklevel=3,
        )
    return kept


# ------------------------------------------------------------------------------ stacking


def _stack(
    path: Path, animals: list[list[_Series]]
) -> tuple[np.ndarray, np.ndarray, float | None, float]:
    """``(frames, animals, parts, 2)`` pose and ``(frames, animals, parts)`` likelihood of the
    series, the file's fps (``None`` when it gives none) and the time of frame 0."""
    flat = [s for series in animals for s in series]
    first = flat[0]
    n = first.xy.shape[0]
    same = all(s.xy.shape[0] == n for s in flat) and all(_same_times(first, s) for s in flat)
    if same:
        index = None
        if first.times is None:
            file_fps, start = first.rate, first.start
        else:
            file_fps = _fps_of(first.times) if n > 1 else None
            start = float(first.times[0]) if n else 0.0
        n_frames = n
    else:
        file_fps, start, index = _frame_grid(path, flat)
        n_frames = max(int(i.max()) + 1 for i in index if i.size)
    shape = (n_frames, len(animals), len(animals[0]))
    pose = np.full((*shape, 2), np.nan, dtype=np.float32)
    likelihood = np.zeros(shape, dtype=np.float32)
    k = 0
    for a, series in enumerate(animals):
        for p, s in enumerate(series):
            rows = slice(None) if index is None else index[k]
            pose[rows, a, p] = s.xy
            likelihood[rows, a, p] = s.lik
            k += 1
    return pose, likelihood, file_fps, start


def _same_times(a: _Series, b: _Series) -> bool:
    if a.times is None and b.times is None:
        return np.isclose(a.rate, b.rate, rtol=1e-9) and np.isclose(a.start, b.start)
    return bool(np.allclose(a.sample_times(), b.sample_times(), rtol=0, atol=1e-9))


def _fps_of(times: np.ndarray) -> float:
    """1 / the median step of increasing ``times``, to 6 decimals (30.0, not 30.00000000003)."""
    return round(1.0 / float(np.median(np.diff(times))), 6)


def _frame_grid(path: Path, flat: list[_Series]) -> tuple[float, float, list[np.ndarray]]:
    """fps, the time of frame 0 and every series' frame indices on one frame grid."""
    rates = sorted({s.rate for s in flat if s.times is None})
    if rates and not np.isclose(rates[0], rates[-1], rtol=1e-6):
        raise DataFormatError(
            path,
            f"series of different rates ({rates[0]:g} and {rates[-1]:g} Hz) in one recording",
        )
    times = [s.sample_times() for s in flat]
    if rates:
        fps = rates[0]
    else:
        union = np.unique(np.concatenate(times))
        if union.size < 2:
            raise DataFormatError(path, "series of different lengths with a single timestamp")
        fps = _fps_of(union)
    start = float(min(t[0] for t in times if t.size))
    index = []
    for s, t in zip(flat, times, strict=True):
        exact = (t - start) * fps
        rows = np.rint(exact).astype(np.int64)
        off = np.abs(exact - rows)
        if off.size and off.max() > _GRID_TOLERANCE:
            i = int(off.argmax())
            raise DataFormatError(
                path,
                f"series {s.name!r} (length {t.size}) does not fit the other series' frame grid "
                f"of {fps:g} fps: its sample {i} at {t[i]:.6g} s is {off[i]:.2f} frame off",
            )
        if rows.size > 1 and not (np.diff(rows) > 0).all():
            raise DataFormatError(path, f"series {s.name!r} has two samples in one frame")
        index.append(rows)
    return fps, start, index
