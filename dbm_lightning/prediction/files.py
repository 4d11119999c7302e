"""``dbm-predict`` from Python: every pose file of a path through a trained model, one frames
table and one bouts table per session and a ``summary.json`` (:func:`predict_paths`)."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.analysis.microstates import Microstates
from dbm_lightning.atomic import write_atomic, write_json_atomic
from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import scan_folder
from dbm_lightning.io.compressed import file_stem, kind_suffix
from dbm_lightning.io.csv_writer import csv_bytes
from dbm_lightning.io.readers import load_pose
from dbm_lightning.models.lightning import DBMClassifier
from dbm_lightning.prediction.bouts import bouts_table, stored_postprocess
from dbm_lightning.prediction.guards import (
    check_output_dir,
    choose_microstates,
    load_classic_model,
    read_model_checkpoint,
    resolve_model_file,
)
from dbm_lightning.prediction.session import (
    MicrostatesMismatchError,
    SessionPrediction,
    pipeline_state_of,
    predict_arrays,
)
from dbm_lightning.runs import with_member
from dbm_lightning.session import DEFAULT_FPS, Session
from dbm_lightning.skeleton import BodypartMap

FORMATS = ("csv", "parquet")
"""Table formats ``dbm-predict`` writes."""


def find_session_files(path: str | Path) -> list[Path]:
    """Pose files to predict: ``path`` itself, or every pose file of a folder (any registered
    format, :mod:`dbm_lightning.io.readers`; not recursive; ``X.labels.*`` and
    ``manifest.csv`` skipped, other files named in a logged warning; when a stem has both a
    ``.csv`` and an ``.h5`` the ``.h5`` is used).

    Raises
    ------
    DataFormatError
        When the path does not exist or the folder holds no such file.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise DataFormatError(path, "input not found")
    entries = scan_folder(path, pattern="{stem}")
    return sorted(e.path for e in entries)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")


def _write_table(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        return write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))
    return write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


FLOAT_DECIMALS = 8
"""Decimals of the probabilities in the CSV frames tables (``%.8f``)."""


def write_frames_table(result: SessionPrediction, path: Path, fmt: str = "csv") -> Path:
    """The frames table: CSV through the vectorised writer (pandas when it cannot write a
    column exactly), Parquet through pandas/pyarrow."""
    columns = result.columns()
    if fmt == "csv":
        try:
            text = csv_bytes(columns, decimals=FLOAT_DECIMALS)
        except ValueError:  # e.g. infinite probabilities: let pandas format them
            text = None
        if text is not None:
            return write_atomic(path, lambda tmp: tmp.write_bytes(text))
    table = pd.DataFrame(columns)
    table["label"] = table["label"].astype(object)
    return _write_table(table, path, fmt)


def _label_share(result: SessionPrediction) -> dict[str, float]:
    """Share of each predicted label over the valid frames, most frequent first (labels
    never predicted on a valid frame are left out)."""
    counts = np.bincount(result.pred[result.valid], minlength=len(result.class_names))
    total = counts.sum()
    order = np.argsort(-counts, kind="stable")
    return {result.class_names[i]: float(counts[i] / total) for i in order if counts[i] > 0}


def predict_paths(
    ckpt: str | Path,
    paths: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    fmt: str = "csv",
    smoothing: int | None = None,
    min_bout: int | None = None,
    individuals: Sequence[str] | None = None,
    fps: float | None = None,
    bodyparts: BodypartMap | None = None,
    microstates: Microstates | str | Path | None = None,
    skip_errors: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every pose file of ``paths`` (files and/or folders) with a checkpoint
    (or the ``model.joblib`` of a classic-arm run, or a run folder: its best checkpoint).

    Writes ``<session>.frames.<ext>`` (:func:`predict_session`'s table) and
    ``<session>.bouts.<ext>`` (:func:`bouts_table` of the predicted labels) per session into
    ``out_dir``, plus ``summary.json``. Microstates come from ``microstates`` (an object or a
    ``microstates.npz`` path; refused when fitted on another model), else from the checkpoint
    (``dbm_microstates``), else from its run folder when fitted on the same weights; without
    any the ``microstate`` column is -1 (with a warning that says why). The output folder and
    the model file are checked before anything is read
    (:mod:`dbm_lightning.prediction.guards`).

    Parameters
    ----------
    fmt
        ``"csv"`` or ``"parquet"``.
    smoothing, min_bout
        Temporal post-processing (:func:`~dbm_lightning.prediction.bouts.smooth_probabilities`
        window and :func:`~dbm_lightning.prediction.bouts.merge_short_bouts` length, frames);
        ``None``: what the run chose on its validation sessions (stored with the model; none
        for older models).
    individuals, fps
        Passed to :func:`dbm_lightning.io.readers.load_pose` (default: every individual; the
        animals of a file are matched to the trained ones by name, or by order when the
        names differ, as identities are the tracker's); ``fps`` also gives ``duration_s``
        (default: the training's frame rate).
    bodyparts
        Maps the files' body parts onto the names the training saw, before the mapping the
        training used (recorded in the checkpoint) is applied, e.g.
        ``BodypartMap(rename={"Left Ear": "l_ear"})``.
    skip_errors
        Skip (and list in the summary) files that cannot be read or lack body parts, instead
        of raising.

    Returns
    -------
    dict with ``out_dir``, ``checkpoint``, ``sessions`` (one dict per session: name, source,
    frames, valid_frames, frames/bouts file, label shares) and ``skipped`` (path, reason).

    Raises
    ------
    DataFormatError
        Unreadable input or body parts that do not match the model (unless ``skip_errors``),
        an output folder that cannot be written, a file that is no model, microstates of
        another model.
    """
    _check_format(fmt)
    out_dir = check_output_dir(out_dir)
    ckpt = resolve_model_file(ckpt)
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    missing: DataFormatError | None = None
    try:
        for p in items:
            files.extend(find_session_files(p))
    except DataFormatError as exc:  # raised after the checkpoint's errors, as before
        missing, files = exc, []
    # the first files are read (a thread, no GIL held while parsing) while the checkpoint loads
    with _ReadAhead(files, lambda f: load_pose(f, individuals=individuals, fps=fps)) as sessions:
        return _predict_files(
            ckpt,
            files,
            sessions,
            missing,
            out_dir,
            fmt,
            smoothing,
            min_bout,
            fps,
            bodyparts,
            microstates,
            skip_errors,
            progress,
        )


class _ReadAhead:
    """``read(file)`` of each file in order, one thread reading up to two files ahead."""

    def __init__(self, files: list[Path], read: Any) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbm-predict-read")
        self._todo = iter(files)
        self._read = read
        self._window: deque[Future] = deque(
            self._pool.submit(read, f) for f in itertools.islice(self._todo, 2)
        )

    def __enter__(self) -> _ReadAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        for future in self._window:
            future.cancel()
        self._pool.shutdown(wait=True)

    def next(self) -> Session:
        """The next file's session (or the reader's exception)."""
        future = self._window.popleft()
        nxt = next(self._todo, None)
        if nxt is not None:
            self._window.append(self._pool.submit(self._read, nxt))
        return future.result()


def _predict_files(
    ckpt: str | Path,
    files: list[Path],
    sessions: _ReadAhead,
    missing: DataFormatError | None,
    out_dir: str | Path,
    fmt: str,
    smoothing: int | None,
    min_bout: int | None,
    fps: float | None,
    bodyparts: BodypartMap | None,
    microstates: Microstates | str | Path | None,
    skip_errors: bool,
    progress: bool,
) -> dict[str, Any]:
    """The body of :func:`predict_paths` once the files are known and being read."""
    from tqdm.auto import tqdm

    ckpt_path = Path(ckpt)
    module: Any
    source: str | None = None
    if ckpt_path.suffix == ".joblib":  # a classic-arm run: no embedding, no microstates
        module, checkpoint = load_classic_model(ckpt_path), {}
        if microstates is not None:
            where = microstates if isinstance(microstates, str | Path) else None
            raise DataFormatError(
                where,
                f"microstates cannot be used with {ckpt_path}: a classic model has no "
                "per-frame embedding; leave out --microstates",
            )
    else:
        # read once: the model and its microstates (checked before the model is built)
        checkpoint = read_model_checkpoint(ckpt_path, read_checkpoint)
        microstates, source = choose_microstates(ckpt_path, checkpoint, microstates, stacklevel=4)
        module = with_member(
            DBMClassifier.from_checkpoint_file(ckpt_path, checkpoint), checkpoint, ckpt_path
        )  # with its ensemble member, if it has one
    state = pipeline_state_of(module)
    stored = stored_postprocess(module, checkpoint)
    smoothing = stored["smoothing"] if smoothing is None else smoothing
    min_bout = stored["min_bout"] if min_bout is None else min_bout
    trained_map = BodypartMap.from_config(state.get("bodypart_map"))
    user_map = bodyparts or BodypartMap()
    if missing is not None:
        raise missing
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataFormatError(out, f"the output folder cannot be created ({exc})") from None
    frame_rate = float(fps or state.get("fps") or DEFAULT_FPS)
    ext = "csv" if fmt == "csv" else "parquet"

    summary: dict[str, Any] = {
        "out_dir": str(out),
        "checkpoint": str(ckpt),
        "class_names": list(module.hparams["class_names"]),
        "microstates": microstates.k if microstates is not None else None,
        "microstates_file": source,
        "smoothing": int(smoothing),
        "min_bout": int(min_bout),
        "fps": frame_rate,
        "sessions": [],
        "skipped": [],
    }
    used: set[str] = set()
    bar = tqdm(files, desc="dbm-predict", unit="session", disable=not progress)
    for path in bar:
        try:
            session = trained_map.apply(user_map.apply(sessions.next()))
            result = predict_arrays(module, session, microstates, smoothing, min_bout)
        except MicrostatesMismatchError as exc:  # the same for every session: stop
            raise DataFormatError(source, f"{exc}: fitted on another model than {ckpt}") from None
        except DataFormatError as exc:
            if not skip_errors:
                raise
            summary["skipped"].append({"path": str(path), "reason": str(exc)})
            continue
        name = session.name
        if name in used:  # e.g. X.csv and X.h5 both given: keep both outputs apart
            name = f"{file_stem(path)}_{kind_suffix(path).lstrip('.').replace('.', '_')}"
        used.add(name)
        bar.set_postfix_str(name)
        bouts = bouts_table(result.pred, fps=frame_rate, label_names=result.class_names)
        frames_path = write_frames_table(result, out / f"{name}.frames.{ext}", fmt)
        bouts_path = _write_table(bouts, out / f"{name}.bouts.{ext}", fmt)
        summary["sessions"].append(
            {
                "name": name,
                "source": str(path),
                "frames": int(result.pred.shape[0]),
                "valid_frames": int(result.valid.sum()),
                "bouts": int(len(bouts)),
                "frames_file": str(frames_path),
                "bouts_file": str(bouts_path),
                "label_share": _label_share(result),
            }
        )
    write_json_atomic(out / "summary.json", summary)
    return summary
