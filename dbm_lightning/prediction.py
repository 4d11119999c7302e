"""Prediction with a trained model: per-frame tables, bouts and the run's microstates.

- :func:`load_classifier` reads a checkpoint (CPU) into a ``DBMClassifier``.
- :func:`predict_session` gives one row per frame: the predicted label, every class
  probability, the microstate and whether the pose was complete. New sessions go through
  :func:`dbm_lightning.data.prepare_session` with the checkpoint's ``pipeline_state``, so
  low-likelihood points, gap filling, arena scaling and standardisation are exactly those of
  training. Invalid frames (pose still incomplete after gap filling) are fed to the network
  as zeros, as in training; their row keeps the network's prediction (carried by the LSTM
  from the context) with ``valid = False`` and microstate -1.
- :func:`smooth_probabilities` (centred moving average) and :func:`merge_short_bouts`
  (minimum bout length) post-process the per-frame prediction; :func:`bouts_table` lists
  bouts.
- :func:`extract_run_microstates` fits k-means microstates on the per-frame LSTM embedding
  of a trained model (all sessions of a data module by default), writes them beside the
  run (``microstates.npz/.json``) and into the checkpoint (key ``dbm_microstates``) so that
  the checkpoint alone is enough for :func:`predict_paths`;
  :func:`load_microstates_from_checkpoint` reads them back.
- :func:`predict_paths` predicts a file or a folder of DeepLabCut files and writes
  ``<session>.frames.csv`` and ``<session>.bouts.csv`` (or ``.parquet``) per session.
"""

from __future__ import annotations

import contextlib
import heapq
import importlib.util
import itertools
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dbm_lightning.atomic import write_atomic, write_json_atomic
from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.data import prepare_session
from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import load_dlc, scan_folder
from dbm_lightning.io.csv_writer import csv_bytes
from dbm_lightning.microstates import Microstates, fit_microstates
from dbm_lightning.session import Session

__all__ = [
    "ClassicPredictor",
    "CHECKPOINT_KEY",
    "FORMATS",
    "RunMicrostates",
    "bouts_table",
    "embed_microstates_in_checkpoint",
    "extract_run_microstates",
    "find_session_files",
    "load_classifier",
    "load_microstates_from_checkpoint",
    "merge_short_bouts",
    "predict_paths",
    "predict_session",
    "run_lengths",
    "smooth_probabilities",
]

CHECKPOINT_KEY = "dbm_microstates"
"""Key of the microstates inside a checkpoint file (plain lists, no numpy pickles)."""
FORMATS = ("csv", "parquet")
_CKPT_FORMAT_VERSION = 1


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restored after).

    A whole session is one batch-1 sequence: thousands of tiny LSTM steps, each a thread-pool
    barrier with several threads. One thread is 10-40x faster on an idle CPU and avoids
    pathological slow-downs (milliseconds per step) on a busy one.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run_model(
    module: Any, features: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``module.predict_session(features)`` on one CPU thread when the model is on the CPU."""
    if isinstance(module, ClassicPredictor):
        return module.predict_session(features, valid)
    device = getattr(module, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return module.predict_session(features)
    with _one_thread():
        return module.predict_session(features)


class ClassicPredictor:
    """A fitted classic-arm model (``model.joblib`` of a ``model=random_forest`` run) behind
    the interface prediction uses: ``hparams`` with the pipeline state and class names, and
    ``predict_session(features, valid) -> (probs (T, C), embedding (T, 0))``. A forest has no
    per-frame embedding, so its predictions carry no microstates.

    ``model.joblib`` is a pickle: loading it runs code it names. Only load your own runs.
    """

    def __init__(self, model: Any) -> None:
        if not model.pipeline_state:
            raise ValueError("the classic model has no pipeline_state (train it with dbm-train)")
        self.model = model
        self.hparams = {
            "pipeline_state": dict(model.pipeline_state),
            "class_names": list(model.class_names),
        }

    @classmethod
    def load(cls, path: str | Path) -> ClassicPredictor:
        """The classic model saved at ``path`` (:func:`dbm_lightning.classic.load_classic`)."""
        from dbm_lightning.classic import load_classic

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such model file")
        try:
            return cls(load_classic(path))
        except (TypeError, ValueError) as exc:
            raise DataFormatError(path, str(exc)) from None

    def predict_session(
        self, features: np.ndarray, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities of every frame and an empty ``(T, 0)`` embedding."""
        probs = self.model.predict_proba(features, valid)
        return probs, np.zeros((len(probs), 0), dtype=np.float32)


# --------------------------------------------------------------------------------------------
# per-frame post-processing
# --------------------------------------------------------------------------------------------


def smooth_probabilities(probs: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of ``probs (T, C)`` over ``window`` frames (per class).

    Near the ends the average is over the frames that exist, so rows still sum to 1.
    ``window <= 1`` returns a copy. For an even window the extra frame is taken before.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be (T, C), got shape {p.shape}")
    w = int(window)
    t = p.shape[0]
    if w <= 1 or t == 0:
        return p.astype(np.float32, copy=True)
    csum = np.concatenate([np.zeros((1, p.shape[1])), np.cumsum(p, axis=0)])
    idx = np.arange(t)
    lo = np.clip(idx - w // 2, 0, t)
    hi = np.clip(idx + (w - 1 - w // 2) + 1, 0, t)
    out = (csum[hi] - csum[lo]) / (hi - lo)[:, None]
    return out.astype(np.float32)


def run_lengths(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding of a 1-D array: ``(starts, lengths, values)`` of every run."""
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"expected a 1-D array, got shape {v.shape}")
    if v.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), v[:0]
    change = np.flatnonzero(v[1:] != v[:-1]) + 1
    starts = np.concatenate([[0], change]).astype(np.int64)
    lengths = np.diff(np.append(starts, v.size)).astype(np.int64)
    return starts, lengths, v[starts]


def merge_short_bouts(labels: np.ndarray, min_bout: int) -> np.ndarray:
    """Relabel bouts shorter than ``min_bout`` frames with a neighbouring bout's label.

    The shortest bout is merged first, into its longer neighbour (the previous one on a tie,
    the only one at an end); neighbours that end up with the same label become one bout; this
    repeats until every bout has at least ``min_bout`` frames (or one bout is left). The loop
    runs over bouts (with a heap), never over frames.
    """
    lab = np.asarray(labels)
    m = int(min_bout)
    if m <= 1 or lab.size == 0:
        return lab.copy()
    _, lengths, values = run_lengths(lab)
    n = lengths.size
    if n == 1 or lengths.min() >= m:
        return lab.copy()
    length = lengths.tolist()
    code = np.unique(values, return_inverse=True)[1].tolist()  # value -> int code
    prev = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    alive = [True] * n
    heap = [(length[i], i) for i in range(n) if length[i] < m]
    heapq.heapify(heap)
    n_alive = n
    while heap and n_alive > 1:
        ln, i = heapq.heappop(heap)
        if not alive[i] or ln != length[i] or ln >= m:
            continue  # stale entry
        p, q = prev[i], nxt[i]
        if p < 0:
            target = q
        elif q < 0:
            target = p
        else:
            target = p if length[p] >= length[q] else q
        # i joins target
        length[target] += length[i]
        alive[i] = False
        n_alive -= 1
        if p >= 0:
            nxt[p] = q
        if q >= 0:
            prev[q] = p
        # the two neighbours now touch: fuse them when they carry the same label
        if p >= 0 and q >= 0 and code[p] == code[q]:
            length[p] += length[q]
            alive[q] = False
            n_alive -= 1
            nxt[p] = nxt[q]
            if nxt[q] >= 0:
                prev[nxt[q]] = p
            target = p
        if length[target] < m:
            heapq.heappush(heap, (length[target], target))
    # walk the surviving bouts in order and rebuild the frame labels
    first = next(i for i in range(n) if alive[i])
    keep_idx, keep_len = [], []
    i = first
    while i >= 0:
        keep_idx.append(i)
        keep_len.append(length[i])
        i = nxt[i]
    return np.repeat(values[np.asarray(keep_idx)], np.asarray(keep_len))


def bouts_table(
    labels: np.ndarray | Sequence,
    fps: float | None = None,
    label_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Bouts (runs of the same label) of a per-frame label sequence.

    Parameters
    ----------
    labels
        ``(T,)`` label names, or integer indices (mapped through ``label_names`` when given).
    fps
        Frame rate for ``duration_s`` (NaN without it).

    Returns
    -------
    DataFrame with columns ``label, start, end`` (first and last frame, inclusive),
    ``duration_frames, duration_s``; one row per bout, in time order.
    """
    lab = np.asarray(labels)
    starts, lengths, values = run_lengths(lab)  # on integer codes when given: no object compare
    if label_names is not None and lab.size and np.issubdtype(lab.dtype, np.integer):
        names = np.asarray(list(label_names), dtype=object)
        values = np.where(values >= 0, names[np.clip(values, 0, len(names) - 1)], None)
    duration_s = lengths / float(fps) if fps else np.full(lengths.size, np.nan)
    return pd.DataFrame(
        {
            "label": values,
            "start": starts,
            "end": starts + lengths - 1,
            "duration_frames": lengths,
            "duration_s": duration_s.astype(np.float64),
        }
    )


# --------------------------------------------------------------------------------------------
# model and checkpoint
# --------------------------------------------------------------------------------------------


def load_classifier(ckpt_path: str | Path) -> Any:
    """The ``DBMClassifier`` of a checkpoint, on the CPU, in eval mode.

    The file is read with :func:`~dbm_lightning.checkpoints.read_checkpoint` (no pickled code
    is executed) and the module rebuilt from its hyperparameters.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    DataFormatError
        When it is not a DBM checkpoint with a pipeline state, or holds pickled objects.
    """
    path = Path(ckpt_path)
    return _classifier_from_checkpoint(path, read_checkpoint(path))


def _classifier_from_checkpoint(path: Path, ckpt: dict[str, Any]) -> Any:
    """The eval-mode ``DBMClassifier`` of an already read checkpoint dict."""
    from dbm_lightning.models import DBMClassifier

    try:
        module = DBMClassifier(**ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
        module.on_load_checkpoint(ckpt)
    except Exception as exc:  # noqa: BLE001 - any rebuild failure is a bad checkpoint
        raise DataFormatError(path, f"not a readable DBM checkpoint ({exc})") from None
    if not module.hparams.get("pipeline_state"):
        raise DataFormatError(
            path, "checkpoint has no pipeline_state (train it with dbm-train / run_training)"
        )
    module.eval()
    return module


def _pipeline_state(module: Any) -> dict:
    state = module.hparams.get("pipeline_state")
    if not state:
        raise ValueError("the model has no pipeline_state in its hparams; cannot prepare data")
    return dict(state)


def _microstates_to_plain(ms: Microstates) -> dict[str, Any]:
    """JSON-like dict of plain lists (loadable with ``torch.load(weights_only=True)``)."""
    return {
        "format_version": _CKPT_FORMAT_VERSION,
        "centroids": ms.centroids.tolist(),
        "dominant_label": ms.dominant_label.tolist(),
        "label_names": list(ms.label_names),
        "counts": ms.counts.tolist(),
        "label_counts": ms.label_counts.tolist(),
        "method": ms.method,
        "inertia": float(ms.inertia) if np.isfinite(ms.inertia) else None,
        "seed": int(ms.seed),
    }


def _microstates_from_plain(d: dict[str, Any]) -> Microstates:
    k = len(d["centroids"])
    n_labels = len(d.get("label_names", []))
    label_counts = np.asarray(d.get("label_counts", []), dtype=np.int64).reshape(k, n_labels)
    return Microstates(
        centroids=np.asarray(d["centroids"], dtype=np.float64),
        dominant_label=np.asarray(d["dominant_label"], dtype=np.int64),
        label_names=tuple(d.get("label_names", ())),
        counts=np.asarray(d.get("counts", np.zeros(k)), dtype=np.int64),
        label_counts=label_counts,
        method=d.get("method", "kmeans"),
        inertia=float("nan") if d.get("inertia") is None else float(d["inertia"]),
        seed=int(d.get("seed", 0)),
    )


def embed_microstates_in_checkpoint(ckpt_path: str | Path, ms: Microstates) -> Path:
    """Store ``ms`` in the checkpoint file under :data:`CHECKPOINT_KEY` (atomic rewrite).

    Only plain lists and numbers are added, so the checkpoint still loads with
    ``torch.load(weights_only=True)`` and ``DBMClassifier.load_from_checkpoint``.
    """
    import torch

    path = Path(ckpt_path)
    ckpt = read_checkpoint(path)
    ckpt[CHECKPOINT_KEY] = _microstates_to_plain(ms)
    return write_atomic(path, lambda tmp: torch.save(ckpt, tmp))


def load_microstates_from_checkpoint(ckpt_path: str | Path) -> Microstates | None:
    """The microstates stored in a checkpoint by :func:`embed_microstates_in_checkpoint`,
    or ``None`` when it holds none."""

    d = read_checkpoint(ckpt_path).get(CHECKPOINT_KEY)
    return _microstates_from_plain(d) if d else None


# --------------------------------------------------------------------------------------------
# microstates of a run
# --------------------------------------------------------------------------------------------


@dataclass
class RunMicrostates:
    """What :func:`extract_run_microstates` computed.

    ``states``, ``probs``, ``labels`` and ``valid`` are per session (in ``names`` order);
    ``files`` are the files written (microstates ``.npz``/``.json``, the checkpoint).
    """

    microstates: Microstates
    names: list[str]
    states: list[np.ndarray]
    probs: list[np.ndarray]
    labels: list[np.ndarray] | None
    valid: list[np.ndarray]
    files: list[Path] = field(default_factory=list)


def extract_run_microstates(
    module: Any,
    datamodule: Any = None,
    *,
    features: Sequence[np.ndarray] | None = None,
    valid: Sequence[np.ndarray] | None = None,
    labels: Sequence[np.ndarray] | None = None,
    label_names: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
    split: str | None = None,
    k: int = 50,
    seed: int = 0,
    microstates: Microstates | None = None,
    run_dir: str | Path | None = None,
    ckpt_path: str | Path | None = None,
    minibatch_threshold: int = 200_000,
) -> RunMicrostates:
    """Fit (or apply) microstates on the per-frame LSTM embedding of a trained model.

    Parameters
    ----------
    module
        A ``DBMClassifier`` (anything with ``predict_session(features) -> (probs, emb)``).
    datamodule
        A set-up ``DBMDataModule``: its sessions (``names``, else ``split``, else all of
        train + val + test) give features, validity and labels. Alternatively pass
        ``features`` (and optionally ``valid``, ``labels``, ``label_names``, ``names``).
    k, seed, minibatch_threshold
        k-means settings (:func:`dbm_lightning.microstates.fit_microstates`); the labels
        renumber the states (by dominant label, then frame count).
    microstates
        Already fitted microstates: only assign the frames (nothing is fitted or saved).
    run_dir
        When given, ``microstates.npz`` and ``microstates.json`` are written there.
    ckpt_path
        When given, the microstates are also stored inside this checkpoint (the one whose
        weights ``module`` holds) so that ``dbm-predict --ckpt`` finds them.
    """
    if datamodule is not None:
        prepared = datamodule.predict_sessions(names=names, split=split)
        features = [p.features for p in prepared]
        valid = [p.valid for p in prepared]
        labels = [p.labels for p in prepared]
        names = [p.name for p in prepared]
        label_names = list(datamodule.class_names)
    elif features is None:
        raise ValueError("give a datamodule or per-session features")
    features = list(features)
    if not features:
        raise ValueError("no sessions to extract microstates from")
    valid = (
        [np.asarray(v, dtype=bool) for v in valid]
        if valid is not None
        else [np.isfinite(np.asarray(f)).all(axis=1) for f in features]
    )
    names = list(names) if names is not None else [f"session_{i}" for i in range(len(features))]
    if label_names is None:
        label_names = module.hparams.get("class_names") if hasattr(module, "hparams") else None

    probs, embeddings = [], []
    for f, v in zip(features, valid, strict=True):
        p, e = _run_model(module, f)
        e = np.array(e, dtype=np.float32)
        e[~v] = np.nan
        probs.append(np.asarray(p, dtype=np.float32))
        embeddings.append(e)

    files: list[Path] = []
    if microstates is None:
        microstates = fit_microstates(
            embeddings,
            labels=list(labels) if labels is not None else None,
            label_names=label_names if labels is not None else None,
            k=k,
            seed=seed,
            minibatch_threshold=minibatch_threshold,
        )
        if run_dir is not None:
            npz = microstates.save(Path(run_dir) / "microstates")
            files += [npz, npz.with_suffix(".json")]
        if ckpt_path is not None:
            files.append(embed_microstates_in_checkpoint(ckpt_path, microstates))
    states = [microstates.assign(e) for e in embeddings]
    return RunMicrostates(
        microstates=microstates,
        names=names,
        states=states,
        probs=probs,
        labels=list(labels) if labels is not None else None,
        valid=valid,
        files=files,
    )


# --------------------------------------------------------------------------------------------
# prediction
# --------------------------------------------------------------------------------------------


@dataclass
class _Prediction:
    """Per-frame arrays of one session (what the frames table holds)."""

    class_names: list[str]
    pred: np.ndarray  # (T,) int64 class index
    probs: np.ndarray  # (T, C) float32
    states: np.ndarray  # (T,) int64, -1 at invalid frames / without microstates
    valid: np.ndarray  # (T,) bool

    def columns(self) -> dict[str, Any]:
        """The frames table's columns (``label`` as a categorical of the class names)."""
        table: dict[str, Any] = {
            "frame": np.arange(self.pred.shape[0], dtype=np.int64),
            "label": pd.Categorical.from_codes(self.pred, categories=self.class_names),
        }
        for c, name in enumerate(self.class_names):
            table[f"prob_{name}"] = self.probs[:, c]
        table["microstate"] = self.states
        table["valid"] = self.valid
        return table


def _predict_arrays(
    module: Any,
    session: Session,
    microstates: Microstates | None,
    smoothing: int,
    min_bout: int,
) -> _Prediction:
    state = _pipeline_state(module)
    class_names = [str(c) for c in (module.hparams.get("class_names") or state["class_names"])]
    features, valid = prepare_session(session, state)
    probs, embedding = _run_model(module, features, valid)
    probs = smooth_probabilities(probs, smoothing)
    pred = probs.argmax(axis=1) if probs.shape[0] else np.zeros(0, dtype=np.int64)
    pred = merge_short_bouts(pred, min_bout).astype(np.int64, copy=False)
    if microstates is not None:
        emb = np.array(embedding, dtype=np.float32)
        emb[~valid] = np.nan
        states = np.asarray(microstates.assign(emb), dtype=np.int64)
    else:
        states = np.full(features.shape[0], -1, dtype=np.int64)
    return _Prediction(class_names, pred, probs, states, np.asarray(valid, dtype=bool))


def predict_session(
    module: Any,
    session: Session,
    microstates: Microstates | None = None,
    smoothing: int = 0,
    min_bout: int = 1,
) -> pd.DataFrame:
    """Per-frame prediction table of one (new) session.

    Parameters
    ----------
    module
        A trained ``DBMClassifier`` (its ``pipeline_state`` prepares the session).
    session
        A raw session as read by :func:`dbm_lightning.io.load_dlc` (body parts matched by
        name; extra parts are ignored).
    microstates
        Microstates of the model (e.g. :func:`load_microstates_from_checkpoint`); without
        them the ``microstate`` column is -1.
    smoothing
        Centred moving average of the class probabilities over this many frames before the
        argmax (0 or 1: none). The ``prob_*`` columns hold the smoothed probabilities.
    min_bout
        Minimum bout length in frames (:func:`merge_short_bouts`), applied after the argmax.

    Returns
    -------
    DataFrame with one row per frame: ``frame``, ``label`` (predicted class name),
    ``prob_<class>`` for every class (rows sum to 1), ``microstate`` (int, -1 at invalid
    frames or without microstates) and ``valid`` (bool: every body part known after the
    training's likelihood masking and gap filling).

    Raises
    ------
    DataFormatError
        When the session lacks body parts the model was trained on (naming file and parts).
    """
    result = _predict_arrays(module, session, microstates, smoothing, min_bout)
    table = result.columns()
    names = np.asarray(result.class_names, dtype=object)
    table["label"] = names[result.pred] if result.pred.size else np.zeros(0, dtype=object)
    return pd.DataFrame(table)


def find_session_files(path: str | Path) -> list[Path]:
    """DeepLabCut files to predict: ``path`` itself, or every ``.csv``/``.h5`` file of a
    folder (not recursive; ``*.labels.csv`` and ``manifest.csv`` skipped; when a stem has both
    a ``.csv`` and an ``.h5`` the ``.h5`` is used).

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
    entries = scan_folder(path, pattern="{stem}", suffixes=(".csv", ".h5", ".hdf5"))
    return sorted(e.path for e in entries)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if fmt == "parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ImportError(
            "Parquet output needs pyarrow, an optional extra: pip install 'dbm-lightning[parquet]' "
            "(or use --format csv)"
        )


def _write_table(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    if fmt == "csv":
        return write_atomic(path, lambda tmp: df.to_csv(tmp, index=False))
    return write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


FLOAT_DECIMALS = 8
"""Decimals of the probabilities in the CSV frames tables (``%.8f``)."""


def _write_frames(result: _Prediction, path: Path, fmt: str) -> Path:
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


def _label_share(result: _Prediction) -> dict[str, float]:
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
    smoothing: int = 0,
    min_bout: int = 1,
    individual: str | None = None,
    fps: float | None = None,
    microstates: Microstates | str | Path | None = None,
    skip_errors: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Predict every DeepLabCut file of ``paths`` (files and/or folders) with a checkpoint
    (or the ``model.joblib`` of a classic-arm run, see :class:`ClassicPredictor`).

    Writes ``<session>.frames.<ext>`` (:func:`predict_session`'s table) and
    ``<session>.bouts.<ext>`` (:func:`bouts_table` of the predicted labels) per session into
    ``out_dir``, plus ``summary.json``. Microstates come from ``microstates`` (an object or a
    ``microstates.npz`` path), else from the checkpoint (``dbm_microstates``); without any the
    ``microstate`` column is -1 (with a warning).

    Parameters
    ----------
    fmt
        ``"csv"`` or ``"parquet"`` (needs the optional ``pyarrow``).
    individual, fps
        Passed to :func:`dbm_lightning.io.load_dlc`; ``fps`` also gives ``duration_s``
        (default: the training's frame rate).
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
        Unreadable input or body parts that do not match the model (unless ``skip_errors``).
    ImportError
        Parquet asked without pyarrow.
    """
    _check_format(fmt)
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    missing: DataFormatError | None = None
    try:
        for p in items:
            files.extend(find_session_files(p))
    except DataFormatError as exc:  # raised after the checkpoint's errors, as before
        missing, files = exc, []
    # the first files are read (a thread, no GIL held while parsing) while the checkpoint loads
    with _ReadAhead(files, lambda f: load_dlc(f, individual=individual, fps=fps)) as sessions:
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
    smoothing: int,
    min_bout: int,
    fps: float | None,
    microstates: Microstates | str | Path | None,
    skip_errors: bool,
    progress: bool,
) -> dict[str, Any]:
    """The body of :func:`predict_paths` once the files are known and being read."""
    from tqdm.auto import tqdm

    ckpt_path = Path(ckpt)
    module: Any
    if ckpt_path.suffix == ".joblib":  # a classic-arm run: no embedding, no microstates
        module, checkpoint = ClassicPredictor.load(ckpt_path), {}
        microstates = None
    else:
        checkpoint = read_checkpoint(ckpt_path)  # read once: the model and its microstates
        module = _classifier_from_checkpoint(ckpt_path, checkpoint)
    state = _pipeline_state(module)
    if isinstance(microstates, str | Path):
        microstates = Microstates.load(microstates)
    if microstates is None and checkpoint:
        stored = checkpoint.get(CHECKPOINT_KEY)
        microstates = _microstates_from_plain(stored) if stored else None
        if microstates is None:
            warnings.warn(
                f"{ckpt}: the checkpoint holds no microstates (fit them with `dbm-plots RUN_DIR`); "
                "the microstate column is -1",
                stacklevel=3,
            )
    if missing is not None:
        raise missing
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame_rate = float(fps or state.get("fps") or 30.0)
    ext = "csv" if fmt == "csv" else "parquet"

    summary: dict[str, Any] = {
        "out_dir": str(out),
        "checkpoint": str(ckpt),
        "class_names": list(module.hparams["class_names"]),
        "microstates": microstates.k if microstates is not None else None,
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
            session = sessions.next()
            result = _predict_arrays(module, session, microstates, smoothing, min_bout)
        except DataFormatError as exc:
            if not skip_errors:
                raise
            summary["skipped"].append({"path": str(path), "reason": str(exc)})
            continue
        name = session.name
        if name in used:  # e.g. X.csv and X.h5 both given: keep both outputs apart
            name = f"{path.stem}_{path.suffix.lstrip('.').lower()}"
        used.add(name)
        bar.set_postfix_str(name)
        bouts = bouts_table(result.pred, fps=frame_rate, label_names=result.class_names)
        frames_path = _write_frames(result, out / f"{name}.frames.{ext}", fmt)
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
