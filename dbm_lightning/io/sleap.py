"""SLEAP pose files (analysis ``.h5`` and ``.slp``) -> :class:`~dbm_lightning.session.Session`.

Two SLEAP files are read:

* the **analysis HDF5** file (``sleap-convert --format analysis``, ``sleap_io.save_analysis_h5``)
  with h5py alone: ``tracks`` holds the points, by default ``(tracks, 2, nodes, frames)``
  ("matlab" order); sleap-io also writes other orders and names them in the ``dims`` attribute
  of every dataset, which is read when present. Files without ``dims`` are read in SLEAP's
  transposed order, or in SLEAP's untransposed ``(frames, nodes, 2, tracks)`` order when only
  that fits the node names. ``point_scores`` (same order without the xy axis) gives the
  likelihood, ``node_names`` and ``track_names`` the names (``track_0``, ``track_1``, ... when
  the file names no tracks). The first stored frame is taken as frame 0 of the video (SLEAP's
  export writes every frame from 0; a file exported from the first labelled frame on does not
  say where it starts). The frame count is the stored one.
* the **.slp** project / predictions file through ``sleap_io`` (an optional extra, imported
  only here): ``sleap_io.load_slp(lazy=True)`` gives the skeletons, tracks and videos, and the
  instances and points are then gathered straight from the file's tables, vectorised.

Choices where SLEAP allows several readings (both files give the same session for the same
labels, which is what ``sleap_io.save_analysis_h5`` writes):

* **Individuals** are the tracks, in file order, named by the track names. Tracks without any
  instance in the video are left out with a warning (the analysis export drops them too).
  Instances without a track in a file whose instances are tracked are left out with a warning.
  When no instance of the video has a track, the file must hold at most one animal per frame,
  which becomes the individual ``track_0`` (a single-animal session); several untracked
  instances in one frame cannot be told apart and raise :class:`DataFormatError`.
* **User-labelled vs predicted**: a user-labelled instance replaces the predicted instance of
  the same track in the same frame (the human-corrected pose wins, as in SLEAP's own export);
  of two instances of the same kind and track in a frame, the later one in the file wins.
  Untracked: a frame with any user-labelled instance uses those, else its predictions.
* **Likelihood** is the point score clipped to [0, 1] (SLEAP's confidence-map peaks can
  exceed 1 a little), 1 for user-labelled points (and for any point without a score), 0
  where a point is missing (not visible, NaN, or no instance in the frame). Missing points
  are NaN in ``pose``.
* **Several videos** in one ``.slp`` file: an error naming them, unless ``video=`` picks one
  (its index or file name); videos without labelled frames do not count. One skeleton must be
  used by the video's instances.
* **Frames**: the video length when the file records it (``.slp``: the video's stored shape),
  else the last labelled frame + 1; frames without an instance are NaN.
* **fps**: the video's frame rate when the file stores it (sleap-io records it in the video
  metadata of both files), else the ``fps`` argument; the file's wins, with a warning when the
  two differ.
* **Name**: the file stem without the suffixes SLEAP appends: ``.analysis``, ``.predictions``
  and a video extension before them (``m01.mp4.predictions.analysis.h5`` -> ``m01``).

:func:`animals_session` builds the session from ``(frames, animals, parts, 2)`` arrays and is
shared with the NWB reader (:mod:`dbm_lightning.io.nwb`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.compressed import file_stem
from dbm_lightning.session import ANIMAL_SEPARATOR, Session, select_individuals

SLEAP_EXTRA_HINT = 'reading .slp files needs the optional extra: pip install "dbm-lightning[sleap]"'
SLP_SUFFIXES = (".slp",)
_NAME_SUFFIXES = (".analysis", ".predictions")
_VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".mj2", ".mpg", ".mpeg", ".h264", ".webm")
_DIMS = ("frame", "track", "node", "xy")
# axis of each of _DIMS in the stored ``tracks`` array
_MATLAB = {"track": 0, "xy": 1, "node": 2, "frame": 3}
_UNTRANSPOSED = {"frame": 0, "node": 1, "xy": 2, "track": 3}
_USER = 0  # sleap_io.io.slp.InstanceType.USER


def is_sleap_analysis_h5(path: str | Path) -> bool:
    """Whether ``path`` is a SLEAP analysis HDF5 file (an HDF5 file with the datasets
    ``tracks`` and ``node_names``); ``False`` for anything else, a DeepLabCut ``.h5`` included,
    and for an unreadable file."""
    import h5py

    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            return isinstance(f.get("tracks"), h5py.Dataset) and "node_names" in f
    except Exception:  # unreadable, truncated, a folder, ...: not one
        return False


def load_sleap(
    path: str | Path,
    individuals: Sequence[str] | None = None,
    fps: float | None = None,
    *,
    video: int | str | None = None,
) -> Session:
    """Read a SLEAP analysis ``.h5`` or a ``.slp`` file into a :class:`Session`.

    Parameters
    ----------
    path
        A ``.slp`` file (needs ``sleap_io``: ``pip install "dbm-lightning[sleap]"``) or a SLEAP
        analysis HDF5 file (any other suffix; read with h5py).
    individuals
        Which tracks to keep, in this order (default: every track with an instance). Two or
        more give a multi-animal session (body parts ``"<track>/<node>"``); one gives a
        single-animal session with the plain node names.
    fps
        Frame rate to use when the file stores none.
    video
        For a ``.slp`` file with labelled frames in several videos: the index (in the file's
        video list) or file name of the one to read.

    Returns
    -------
    Session
        ``pose`` (frames, parts, 2) float32, NaN where missing; ``likelihood`` in [0, 1], 0
        where missing; ``name`` = file stem without SLEAP's suffixes; ``source`` = path;
        ``extra`` = ``{"individuals", "file_individuals", "format": "sleap"}``. See the module
        docstring for how tracks, user-labelled instances and scores are read.

    Raises
    ------
    DataFormatError
        Naming the file and the problem (not found, not HDF5, truncated, no ``tracks`` or
        ``node_names``, shapes that do not fit the names, several videos or skeletons,
        untracked animals, unknown individual, a body part never tracked, ``sleap_io``
        missing for a ``.slp`` file, ...).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.suffix.lower() in SLP_SUFFIXES:
        pose, lik, tracks, nodes, file_fps = _read_slp(path, video)
    else:
        if video is not None:
            raise DataFormatError(path, "video= applies to .slp files only")
        pose, lik, tracks, nodes, file_fps = _read_analysis(path)
    return animals_session(
        path,
        pose,
        lik,
        tracks,
        nodes,
        individuals=individuals,
        fps=fps,
        file_fps=file_fps,
        fmt="sleap",
        name=sleap_stem(path),
    )


def sleap_stem(path: str | Path) -> str:
    """The file stem without SLEAP's ``.analysis`` / ``.predictions`` suffixes and a video
    extension before them (``m01.mp4.predictions.slp`` -> ``m01``)."""
    stem = file_stem(path)
    changed = True
    while changed:
        changed = False
        for suffix in (*_NAME_SUFFIXES, *_VIDEO_SUFFIXES):
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                stem, changed = stem[: -len(suffix)], True
    return stem


# ------------------------------------------------------------------------- shared builder


def animals_session(
    path: Path,
    pose: np.ndarray,
    likelihood: np.ndarray,
    animals: Sequence[str],
    parts: Sequence[str],
    *,
    individuals: Sequence[str] | None,
    fps: float | None,
    file_fps: float | None,
    fmt: str,
    name: str,
    extra: dict | None = None,
) -> Session:
    """The session of ``pose`` ``(frames, animals, parts, 2)`` and ``likelihood``
    ``(frames, animals, parts)``: the ``individuals`` chosen (default: every animal with a
    value; the others left out with a warning), NaN and likelihood 0 where x or y is missing,
    the file's fps over the argument. Shared by the SLEAP and NWB readers."""
    animals, parts = [str(a) for a in animals], [str(p) for p in parts]
    if len(set(animals)) != len(animals):
        raise DataFormatError(path, f"individuals {animals} name one individual twice")
    missing = np.isnan(pose).any(axis=3)
    pose[missing] = np.nan
    likelihood[missing] = 0.0
    if individuals:
        wanted = select_individuals(path, individuals, animals)
        kept = wanted
    else:
        seen = ~missing.all(axis=(0, 2))
        kept = [a for a, s in zip(animals, seen, strict=True) if s]
        left = [a for a in animals if a not in kept]
        if not kept:
            raise DataFormatError(path, "no pose in any frame: the file holds no instance")
        if left:
            warnings.warn(
                f"{path}: individual(s) {left} left out: no pose in any frame",
                stacklevel=3,
            )
    index = [animals.index(k) for k in kept]
    pose, likelihood, missing = pose[:, index], likelihood[:, index], missing[:, index]
    never = np.argwhere(missing.all(axis=0))
    if never.size:
        names = [f"{kept[a]}{ANIMAL_SEPARATOR}{parts[p]}" for a, p in never]
        raise DataFormatError(
            path,
            f"body part(s) {names[:8]} have no value in any of the {pose.shape[0]} frames "
            "(never tracked)",
        )
    n_frames, multi = pose.shape[0], len(kept) > 1
    bodyparts = [f"{a}{ANIMAL_SEPARATOR}{p}" if multi else p for a in kept for p in parts]
    return Session(
        pose=np.ascontiguousarray(pose, dtype=np.float32).reshape(n_frames, -1, 2),
        likelihood=np.ascontiguousarray(likelihood, dtype=np.float32).reshape(n_frames, -1),
        bodyparts=tuple(bodyparts),
        name=name or file_stem(path),
        fps=_choose_fps(path, file_fps, fps),
        source=path,
        individuals=tuple(kept) if multi else (),
        extra={
            "individuals": list(kept),
            "file_individuals": list(animals),
            "format": fmt,
            **(extra or {}),
        },
    )


def _choose_fps(path: Path, file_fps: float | None, fps: float | None) -> float | None:
    """The file's frame rate when it stores a positive one, else the argument."""
    if file_fps is not None and np.isfinite(file_fps) and file_fps > 0:
        if fps is not None and abs(float(fps) - file_fps) > 1e-3 * file_fps:
            warnings.warn(
                f"{path}: the file's frame rate {file_fps:g} fps is used, not the {float(fps):g} "
                "fps given",
                stacklevel=4,
            )
        return float(file_fps)
    return float(fps) if fps is not None else None


def _scores_to_likelihood(scores: np.ndarray) -> np.ndarray:
    """Point scores -> likelihood: clipped to [0, 1], 1 where a point has no score."""
    lik = np.clip(np.asarray(scores, dtype=np.float32), 0.0, 1.0)
    lik[np.isnan(lik)] = 1.0
    return lik


# --------------------------------------------------------------------------- analysis h5


def _read_analysis(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], list[str], float | None]:
    import h5py

    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        raise DataFormatError(path, f"cannot read file ({exc})") from None
    if not is_hdf5:
        raise DataFormatError(
            path, "not an HDF5 file (no HDF5 signature): not a SLEAP analysis .h5 file"
        )
    try:
        with h5py.File(path, "r") as f:
            return _read_analysis_file(path, f)
    except DataFormatError:
        raise
    except Exception as exc:  # OSError of a truncated file, KeyError, ValueError, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataFormatError(
            path, f"cannot read as a SLEAP analysis HDF5 file ({type(exc).__name__}: {msg})"
        ) from None


def _read_analysis_file(
    path: Path, f
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], float | None]:
    for key in ("tracks", "node_names"):
        if key not in f:
            raise DataFormatError(
                path,
                f"no {key!r} dataset: not a SLEAP analysis HDF5 file (it holds "
                f"{sorted(f.keys())[:8]}; a DeepLabCut .h5 is read by load_dlc)",
            )
    nodes = _strings(f["node_names"][()])
    raw = f["tracks"][()]
    if raw.ndim != 4:
        raise DataFormatError(path, f"'tracks' has shape {raw.shape}, expected 4 axes")
    names = _strings(f["track_names"][()]) if "track_names" in f else []
    order = _tracks_order(path, f["tracks"], raw.shape, len(nodes), len(names))
    pose = np.transpose(raw, [order[d] for d in _DIMS]).astype(np.float32)
    n_tracks = pose.shape[1]
    if not names:
        names = [f"track_{i}" for i in range(n_tracks)]
    if "point_scores" in f:
        raw_scores = f["point_scores"][()]
        stored = _scores_order(f["point_scores"], order)
        scores = np.transpose(raw_scores, [stored[d] for d in _DIMS[:3]])
        if scores.shape != pose.shape[:3]:
            raise DataFormatError(
                path,
                f"'point_scores' has shape {raw_scores.shape}, which does not fit 'tracks' "
                f"{raw.shape} (frames, tracks, nodes = {pose.shape[:3]})",
            )
        likelihood = _scores_to_likelihood(scores)
    else:
        likelihood = np.ones(pose.shape[:3], dtype=np.float32)
    if not np.isfinite(pose[~np.isnan(pose)]).all():
        raise DataFormatError(path, "'tracks' holds infinite values")
    file_fps = None
    meta = f.attrs.get("video_backend_metadata")
    if meta is not None:
        if isinstance(meta, bytes):
            meta = meta.decode("utf-8")
        value = json.loads(meta).get("fps") if str(meta).strip().startswith("{") else None
        file_fps = float(value) if isinstance(value, (int, float)) else None
    return pose, likelihood, names, nodes, file_fps


def _strings(values) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.ravel(values)]


def _tracks_order(path: Path, ds, shape: tuple, n_nodes: int, n_names: int) -> dict[str, int]:
    """The stored axis of every one of :data:`_DIMS` in ``tracks``."""
    dims = ds.attrs.get("dims")
    if dims is not None:
        dims = json.loads(dims.decode() if isinstance(dims, bytes) else dims)
        if sorted(dims) != sorted(_DIMS):
            raise DataFormatError(path, f"'tracks' dims attribute {dims} is not {list(_DIMS)}")
        candidates = [{d: i for i, d in enumerate(dims)}]
    else:
        candidates = [_MATLAB, _UNTRANSPOSED]
    for order in candidates:
        if (
            shape[order["xy"]] == 2
            and shape[order["node"]] == n_nodes
            and (n_names == 0 or shape[order["track"]] == n_names)
        ):
            return order
    raise DataFormatError(
        path,
        f"'tracks' has shape {shape}, which fits neither SLEAP's (tracks, 2, nodes, frames) "
        f"nor (frames, nodes, 2, tracks) layout for {n_nodes} node names and {n_names} track "
        "names",
    )


def _scores_order(ds, order: dict[str, int]) -> dict[str, int]:
    """The stored axis of frame / track / node in ``point_scores``: its ``dims`` attribute,
    else the ``tracks`` order without the xy axis (as SLEAP writes it)."""
    dims = ds.attrs.get("dims")
    if dims is not None:
        dims = json.loads(dims.decode() if isinstance(dims, bytes) else dims)
        if sorted(dims) == sorted(_DIMS[:3]):
            return {d: i for i, d in enumerate(dims)}
    kept = sorted((order[d], d) for d in _DIMS[:3])
    return {d: i for i, (_axis, d) in enumerate(kept)}


# ------------------------------------------------------------------------------------ slp


def _import_sleap_io(path: Path):
    try:
        import sleap_io
    except ImportError:
        raise DataFormatError(path, SLEAP_EXTRA_HINT) from None
    return sleap_io


def _read_slp(
    path: Path, video: int | str | None
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], float | None]:
    import h5py

    sio = _import_sleap_io(path)
    try:
        try:  # lazy: no Python object per instance (only the videos, skeletons, tracks used)
            labels = sio.load_slp(str(path), open_videos=False, lazy=True)
        except TypeError:  # a sleap-io older than its lazy loading
            labels = sio.load_slp(str(path), open_videos=False)
        with h5py.File(path, "r") as f:
            format_id = float(f["metadata"].attrs.get("format_id", 1.0))
            frames = f["frames"][()]
            instances = f["instances"][()]
            points = f["points"][()]
            pred_points = f["pred_points"][()]
    except Exception as exc:  # OSError (truncated), KeyError, ValueError, json errors, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataFormatError(
            path, f"cannot read as a SLEAP .slp file ({type(exc).__name__}: {msg})"
        ) from None
    try:
        v = _choose_video(path, labels.videos, frames, video)
        return _gather_slp(path, labels, v, format_id, frames, instances, points, pred_points)
    except DataFormatError:
        raise
    except (KeyError, ValueError, IndexError) as exc:  # unexpected table layout
        raise DataFormatError(
            path, f"malformed SLEAP .slp tables ({type(exc).__name__}: {exc})"
        ) from None


def _choose_video(path: Path, videos: list, frames: np.ndarray, video: int | str | None) -> int:
    """The index of the video to read."""
    names = [str(getattr(v, "filename", "")) for v in videos]
    used = sorted(int(i) for i in np.unique(frames["video"]))
    if video is None:
        if not used:
            raise DataFormatError(path, "no labelled frames: the file holds no instance")
        if len(used) > 1:
            raise DataFormatError(
                path,
                f"labelled frames in {len(used)} videos {[names[i] for i in used][:6]}; pass "
                "video=<index or file name> to read one",
            )
        return used[0]
    if isinstance(video, (int, np.integer)):
        if not 0 <= int(video) < len(videos):
            raise DataFormatError(path, f"video={video} but the file has {len(videos)} video(s)")
        return int(video)
    matches = [i for i, n in enumerate(names) if video in (n, Path(n).name)]
    if len(matches) != 1:
        raise DataFormatError(
            path, f"video={video!r} matches {len(matches)} of the file's videos {names[:6]}"
        )
    return matches[0]


def _gather_slp(
    path: Path,
    labels,
    v: int,
    format_id: float,
    frames: np.ndarray,
    instances: np.ndarray,
    points: np.ndarray,
    pred_points: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str], list[str], float | None]:
    """One slot per (frame, track) of video ``v``, vectorised over every instance."""
    frames = frames[frames["video"] == v]
    starts = frames["instance_id_start"].astype(np.int64)
    counts = frames["instance_id_end"].astype(np.int64) - starts
    total = int(counts.sum())
    # rows of every instance of the video, and the frame index of each
    rows = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    rows += np.repeat(starts, counts)
    frame_of = np.repeat(frames["frame_idx"].astype(np.int64), counts)
    inst = instances[rows]
    if inst.size == 0:
        raise DataFormatError(path, "no instance in the video's labelled frames")
    skeleton_ids = np.unique(inst["skeleton"].astype(np.int64))
    if skeleton_ids.size > 1:
        raise DataFormatError(
            path,
            f"the video's instances use {skeleton_ids.size} skeletons "
            f"{[labels.skeletons[i].name for i in skeleton_ids]}; one is needed",
        )
    nodes = list(labels.skeletons[int(skeleton_ids[0])].node_names)
    n_nodes = len(nodes)
    p_start = inst["point_id_start"].astype(np.int64)
    if (inst["point_id_end"].astype(np.int64) - p_start != n_nodes).any():
        raise DataFormatError(path, f"an instance has not the skeleton's {n_nodes} points")
    is_user = inst["instance_type"].astype(np.int64) == _USER
    track = inst["track"].astype(np.int64)
    position = np.arange(inst.size)
    tracked = track >= 0
    if tracked.any():
        names = [t.name for t in labels.tracks]
        if (~tracked).any():
            warnings.warn(
                f"{path}: {int((~tracked).sum())} instance(s) without a track left out "
                "(the other instances are tracked)",
                stacklevel=4,
            )
        keep = tracked
    else:  # untracked: one animal per frame, user-labelled instances preferred
        names = ["track_0"]
        has_user = np.zeros(int(frame_of.max()) + 1, dtype=bool)
        has_user[frame_of[is_user]] = True
        keep = is_user | ~has_user[frame_of]
        per_frame = np.bincount(frame_of[keep])
        if (per_frame > 1).any():
            f0 = int(np.flatnonzero(per_frame > 1)[0])
            raise DataFormatError(
                path,
                f"frame {f0} has {int(per_frame[f0])} instances without a track: the animals "
                "cannot be told apart (track them in SLEAP, or keep one instance per frame)",
            )
        track = np.zeros_like(track)
    frame_of, track, is_user, p_start, position = (
        a[keep] for a in (frame_of, track, is_user, p_start, position)
    )
    # one instance per (frame, track): user over predicted, then the later one in the file
    key = frame_of * len(names) + track
    order = np.lexsort((position, is_user, key))
    last = np.r_[key[order][1:] != key[order][:-1], True]
    chosen = order[last]

    n_frames = int(frame_of.max()) + 1
    length = _video_info(labels.videos[v])[0]
    if length and n_frames > length:
        warnings.warn(
            f"{path}: labelled frames up to {n_frames - 1} but the video has {length} frames",
            stacklevel=4,
        )
    n_frames = max(n_frames, int(length))
    pose = np.full((n_frames, len(names), n_nodes, 2), np.nan, dtype=np.float32)
    likelihood = np.zeros((n_frames, len(names), n_nodes), dtype=np.float32)
    offset = 0.5 if format_id < 1.1 else 0.0  # legacy: (0, 0) was the top-left pixel corner
    for user in (True, False):
        sel = chosen[is_user[chosen] == user]
        if sel.size == 0:
            continue
        table = points if user else pred_points
        pts = table[p_start[sel, None] + np.arange(n_nodes)]  # (instances, nodes)
        xy = np.stack([pts["x"], pts["y"]], axis=-1).astype(np.float32) - offset
        xy[~pts["visible"].astype(bool)] = np.nan
        pose[frame_of[sel], track[sel]] = xy
        if user or "score" not in pts.dtype.names:
            likelihood[frame_of[sel], track[sel]] = 1.0
        else:
            likelihood[frame_of[sel], track[sel]] = _scores_to_likelihood(pts["score"])
    if np.isinf(pose).any():
        raise DataFormatError(path, "the points hold infinite values")
    return pose, likelihood, names, nodes, _video_info(labels.videos[v])[1]


def _video_info(video) -> tuple[int, float | None]:
    """A sleap-io video's length (0 when unknown) and its stored frame rate (or ``None``)."""
    meta = getattr(video, "backend_metadata", None) or {}
    try:
        length = int(len(video))
    except Exception:  # no shape known to this sleap-io version
        shape = meta.get("shape")
        length = int(shape[0]) if shape else 0
    fps = getattr(video, "fps", None) if hasattr(type(video), "fps") else meta.get("fps")
    return length, float(fps) if isinstance(fps, (int, float)) and fps > 0 else None
