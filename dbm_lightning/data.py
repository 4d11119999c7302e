"""Windows, split strategies, data sources and the LightningDataModule.

Pipeline of :class:`DBMDataModule.setup` (once, idempotent):

1. ``source.load()`` -> sessions (+ files skipped as corrupted);
2. body parts checked (same set in every session; reordered to the first session's order);
3. :func:`~dbm_lightning.preprocess.clean_session` (likelihood mask, short-gap interpolation;
   :class:`~dbm_lightning.preprocess.GapReport` kept per session);
4. the labeler labels the *cleaned* pose (rules on interpolated, confident points; file and
   embedded labels do not depend on the pose);
5. arena bounds: the configured ones, else the extent of *all* sessions (train, val and test).
   This is not a label leak: the bounds only fix a linear map of pixel coordinates to
   [-1, 1]; no label or statistic of the held-out targets enters them;
6. features (:func:`~dbm_lightning.features.compute_features`);
7. split (:func:`split_sessions`), then a :class:`~dbm_lightning.features.Standardizer`
   fitted on the *training* sessions only and applied to all;
8. invalid frames (any non-finite feature, after standardising) get features 0 and label -1;
   a frame with label -1 is ignored by the loss and the metrics;
9. each split is cut into windows (:func:`make_windows`) held as contiguous tensors.

:func:`prepare_session` applies steps 2, 3, 5 (stored bounds), 6, 7 (stored standardiser)
and 8 to a new session from :meth:`DBMDataModule.pipeline_state`, so prediction sees exactly
the features the model was trained on.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from dbm_lightning.errors import DataFormatError
from dbm_lightning.features import FeatureConfig, Standardizer, compute_features, feature_names
from dbm_lightning.io import (
    LoadResult,
    load_dbm_mat,
    load_sessions,
    read_manifest,
    scan_folder,
)
from dbm_lightning.preprocess import (
    ArenaBounds,
    GapReport,
    PreprocessConfig,
    clean_session,
    scale_pose,
)
from dbm_lightning.session import UNLABELLED, Session

__all__ = [
    "DEFAULT_FPS",
    "SPLITS",
    "STRATEGIES",
    "DBMDataModule",
    "DBMMatSource",
    "DLCFolderSource",
    "PreparedSession",
    "SplitConfig",
    "SyntheticSource",
    "kfold_mouse_groups",
    "make_windows",
    "prepare_session",
    "split_sessions",
    "window_starts",
]

DEFAULT_FPS = 30.0
"""Frame rate used when neither a session nor the data module gives one."""

SPLITS = ("train", "val", "test")
STRATEGIES = ("trials", "sessions", "leave_mouse_out", "leave_day_out", "kfold_mouse")
PIPELINE_STATE_VERSION = 1


# ------------------------------------------------------------------------------ windows


def window_starts(n_frames: int, window: int, stride: int) -> np.ndarray:
    """Start frames of the windows of one session.

    Starts are ``0, stride, 2 stride, ...``; when the last one does not reach the end, one more
    window aligned to the end (start ``n_frames - window``) is added, so every frame is in at
    least one window. A session shorter than ``window`` has one window at 0 (padded by
    :func:`make_windows`); an empty session has none.
    """
    _check_window(window, stride)
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    last = n_frames - window
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, np.int64(last))
    return starts


def _check_window(window: int, stride: int) -> None:
    if int(window) < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    if int(stride) < 1:
        raise ValueError(f"stride must be >= 1 frame, got {stride}")
    if int(stride) > int(window):
        raise ValueError(
            f"stride ({stride}) larger than window ({window}) would leave frames out of every "
            "window; use stride <= window"
        )


def make_windows(
    features: np.ndarray,
    labels: np.ndarray,
    window: int,
    stride: int,
    count_once: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one session into windows of ``window`` frames every ``stride`` frames.

    Parameters
    ----------
    features
        ``(T, F)`` per-frame features.
    labels
        ``(T,)`` per-frame labels (``-1`` = ignore).
    window, stride
        Window length and step in frames (``1 <= stride <= window``).
    count_once
        Keep a frame's label only in the first window that holds it (``-1`` in the others), so
        that metrics over the windows count every frame exactly once (evaluation splits).

    Returns
    -------
    X, Y
        ``(N, window, F)`` float32 and ``(N, window)`` int64 C-contiguous arrays. Every frame
        is in at least one window (the last window is aligned to the session's end); a session
        shorter than ``window`` gives one window padded with features 0 and label -1.
    """
    features = np.asarray(features)
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"features must be (frames, features), got shape {features.shape}")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels shape {labels.shape} does not match {features.shape[0]} frames")
    t, f = features.shape
    starts = window_starts(t, window, stride)
    if t < window and t > 0:
        pad = window - t
        features = np.concatenate([features, np.zeros((pad, f), dtype=features.dtype)])
        labels = np.concatenate([labels, np.full(pad, UNLABELLED, dtype=labels.dtype)])
    idx = starts[:, None] + np.arange(window, dtype=np.int64)[None, :]  # (N, W)
    X = np.ascontiguousarray(features[idx], dtype=np.float32).reshape(len(starts), window, f)
    Y = np.ascontiguousarray(labels[idx], dtype=np.int64).reshape(len(starts), window)
    if count_once and len(starts) > 1:
        covered_until = np.concatenate([[0], starts[:-1] + window])  # end of the previous window
        Y[idx < covered_until[:, None]] = UNLABELLED
    return X, Y


# ------------------------------------------------------------------------------- splits


@dataclass(frozen=True)
class SplitConfig:
    """How sessions are assigned to train / val / test.

    Parameters
    ----------
    strategy
        ``"trials"``: a random ``val_fraction`` (and ``test_fraction``) of the sessions/trials,
        as the original demo (10 % validation); at least one session per non-zero fraction.
        ``"sessions"``: the same random choice of whole sessions (named for DLC data).
        ``"leave_mouse_out"``: whole mice to val/test (``val_mice``/``test_mice`` or a seeded
        random choice of mice by fraction). ``"leave_day_out"``: whole days likewise
        (``val_days``/``test_days``). ``"kfold_mouse"``: mice shuffled (seeded) into
        ``n_folds`` groups; group ``fold`` is val and, when ``kfold_test``, group
        ``fold + 1`` (mod ``n_folds``) is test.
    val_fraction, test_fraction
        Fractions of sessions (trials/sessions) or of mice/days (leave-out strategies).
    seed
        Seed of every random choice (the result does not depend on the input order).
    fold, n_folds, kfold_test
        For ``kfold_mouse``.
    val_mice, test_mice, val_days, test_days
        Explicit held-out groups (override the fractions).
    """

    strategy: str = "trials"
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    seed: int = 0
    fold: int = 0
    n_folds: int = 4
    val_mice: Sequence[str] | None = None
    test_mice: Sequence[str] | None = None
    val_days: Sequence[int] | None = None
    test_days: Sequence[int] | None = None
    kfold_test: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(
                f"split strategy must be one of {list(STRATEGIES)}, got {self.strategy!r}"
            )
        for name in ("val_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 (some data must train), got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be >= 2, got {self.n_folds}")
        if self.kfold_test and self.n_folds < 3:
            raise ValueError("kfold_test needs n_folds >= 3 (one fold val, one test, rest train)")
        if not 0 <= self.fold < self.n_folds:
            raise ValueError(f"fold must be in [0, {self.n_folds}), got {self.fold}")
        for name in ("val_mice", "test_mice", "val_days", "test_days"):
            v = getattr(self, name)
            if isinstance(v, str | int):
                object.__setattr__(self, name, (v,))
            elif v is not None:
                object.__setattr__(self, name, tuple(v))

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        d = asdict(self)
        for k in ("val_mice", "test_mice", "val_days", "test_days"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d


def _n_held(fraction: float, n: int) -> int:
    """Number of items for a fraction: rounded, at least 1 when the fraction is non-zero."""
    if fraction <= 0:
        return 0
    return max(1, int(np.floor(fraction * n + 0.5)))


def _random_groups(
    groups: list[str], val_fraction: float, test_fraction: float, seed: int, what: str
) -> tuple[set[str], set[str]]:
    """Seeded random choice of val and test groups among sorted ``groups``."""
    n = len(groups)
    n_val, n_test = _n_held(val_fraction, n), _n_held(test_fraction, n)
    if n_val + n_test >= n:
        raise ValueError(
            f"cannot hold out {n_val} {what}(s) for val and {n_test} for test out of {n}: at "
            f"least one must remain for training (lower the fractions or add data)"
        )
    order = np.random.default_rng(seed).permutation(n)
    chosen = [groups[i] for i in order]
    return set(chosen[:n_val]), set(chosen[n_val : n_val + n_test])


def _group_key(session: Session, attr: str) -> str | None:
    v = getattr(session, attr)
    return None if v is None else str(v)


def _require_groups(sessions: Sequence[Session], attr: str, strategy: str) -> list[str]:
    lacking = [s.name for s in sessions if getattr(s, attr) is None]
    if lacking:
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise ValueError(
            f"split strategy {strategy!r} needs the {attr} of every session, but "
            f"{len(lacking)} session(s) have none ({shown}); give a manifest or a file-name "
            f"pattern with {{{attr}}}, or use strategy 'trials' or 'sessions' (e.g. for the "
            "trials of a DBM .mat file)"
        )
    return sorted({_group_key(s, attr) for s in sessions}, key=_natural_key)


def _natural_key(text: str) -> tuple:
    """Sort key: numbers compare as numbers (day 2 before day 10)."""
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)


def _explicit_groups(
    given: Sequence | None, known: list[str], attr: str, role: str
) -> set[str] | None:
    if given is None:
        return None
    wanted = {str(g) for g in given}
    unknown = sorted(wanted - set(known))
    if unknown:
        raise ValueError(f"{role}_{attr}s {unknown} match no session; known {attr}s: {known}")
    return wanted


def _leave_out(
    sessions: Sequence[Session], config: SplitConfig, attr: str
) -> tuple[set[str], set[str], str]:
    """Held-out groups (values of ``attr``) for leave_mouse_out / leave_day_out."""
    plural = {"mouse": "mice", "day": "days"}[attr]
    groups = _require_groups(sessions, attr, config.strategy)
    val = _explicit_groups(getattr(config, f"val_{plural}"), groups, attr, "val")
    test = _explicit_groups(getattr(config, f"test_{plural}"), groups, attr, "test")
    if val is None or test is None:
        rest = [g for g in groups if g not in (val or set()) | (test or set())]
        rnd_val, rnd_test = _random_groups(
            rest,
            config.val_fraction if val is None else 0.0,
            config.test_fraction if test is None else 0.0,
            config.seed,
            attr,
        )
        val = rnd_val if val is None else val
        test = rnd_test if test is None else test
    both = sorted(val & test)
    if both:
        raise ValueError(f"{plural} {both} are listed for both val and test")
    if not set(groups) - val - test:
        raise ValueError(f"every {attr} is held out; at least one must remain for training")
    return val, test, attr


def split_sessions(sessions: Sequence[Session], config: SplitConfig) -> dict[str, str]:
    """Assign every session to ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    dict
        Session name -> split, in the order of ``sessions``. The assignment depends only on
        the sessions' names/metadata and ``config`` (not on the order of ``sessions``).

    Raises
    ------
    ValueError
        Duplicate session names, a mouse/day strategy on sessions without mouse/day (e.g.
        DBM .mat trials), unknown held-out mice/days, or nothing left to train on.
    """
    sessions = list(sessions)
    names = [s.name for s in sessions]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"session names must be unique to split them; duplicates: {dup}")
    if not sessions:
        return {}
    strategy = config.strategy
    if strategy in ("trials", "sessions"):
        ordered = sorted(names, key=_natural_key)
        val, test = _random_groups(
            ordered, config.val_fraction, config.test_fraction, config.seed, "session"
        )
        return {n: "val" if n in val else "test" if n in test else "train" for n in names}

    if strategy == "kfold_mouse":
        mice = _require_groups(sessions, "mouse", strategy)
        if len(mice) < config.n_folds:
            raise ValueError(
                f"kfold_mouse with n_folds={config.n_folds} needs at least that many mice; "
                f"the data has {len(mice)}: {mice}"
            )
        order = np.random.default_rng(config.seed).permutation(len(mice))
        folds = np.array_split(order, config.n_folds)
        val = {mice[i] for i in folds[config.fold]}
        test = (
            {mice[i] for i in folds[(config.fold + 1) % config.n_folds]}
            if config.kfold_test
            else set()
        )
        attr = "mouse"
    else:
        attr = "mouse" if strategy == "leave_mouse_out" else "day"
        val, test, attr = _leave_out(sessions, config, attr)

    out = {}
    for s in sessions:
        key = _group_key(s, attr)
        out[s.name] = "val" if key in val else "test" if key in test else "train"
    return out


def kfold_mouse_groups(mice: Sequence[str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """The mice of each fold of ``kfold_mouse`` (for reports; same shuffle as the split)."""
    mice = sorted({str(m) for m in mice}, key=_natural_key)
    order = np.random.default_rng(seed).permutation(len(mice))
    return [[mice[i] for i in fold] for fold in np.array_split(order, n_folds)]


# ------------------------------------------------------------------------------ sources


class DataSource(Protocol):
    """Anything with ``load(cache_dir=None) -> LoadResult``."""

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult: ...


@dataclass
class SyntheticSource:
    """The built-in synthetic operant box (generated on first use and cached).

    After :meth:`load`, ``folder`` is the dataset folder; the true behaviour of session
    ``X.csv`` is in ``X.labels.csv`` beside it, which is what
    ``FileLabeler("{stem}.labels.csv")`` reads (see :meth:`true_labels_pattern`).
    """

    mice: int = 8
    days: int = 7
    frames: int = 3000
    seed: int = 0
    fps: float = DEFAULT_FPS
    folder: Path | None = field(default=None, init=False)

    true_labels_pattern = "{stem}.labels.csv"
    """FileLabeler pattern of the simulator's true behaviour labels."""

    def config(self):
        """The :class:`~dbm_lightning.synthetic.SyntheticConfig` of this dataset."""
        from dbm_lightning.synthetic import SyntheticConfig

        return SyntheticConfig(
            mice=self.mice, days=self.days, frames=self.frames, seed=self.seed, fps=self.fps
        )

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult:
        """Generate (once) and read the dataset; ``cache_dir`` is the parsed-session cache."""
        from dbm_lightning.synthetic import ensure_dataset

        self.folder = Path(ensure_dataset(self.config()))
        entries = read_manifest(self.folder / "manifest.csv")
        return load_sessions(entries, cache_dir=cache_dir, fps=self.fps, progress=False)


@dataclass
class DLCFolderSource:
    """A folder of DeepLabCut files; mouse/day from file names (``pattern``) or a manifest.

    ``manifest`` may be absolute or relative to ``path`` (or to the working directory).
    """

    path: str | Path
    pattern: str = "{mouse}_day{day}"
    manifest: str | Path | None = None
    skip_corrupted: bool = False
    individual: str | None = None
    fps: float | None = None

    def manifest_path(self) -> Path | None:
        """The manifest file to read, or ``None`` to scan the folder."""
        if self.manifest is None:
            return None
        m = Path(self.manifest).expanduser()
        if not m.is_absolute() and not m.is_file():
            m = Path(self.path).expanduser() / m
        return m

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult:
        """Read the sessions (corrupted files skipped when ``skip_corrupted``)."""
        manifest = self.manifest_path()
        if manifest is not None:
            entries = read_manifest(manifest)
        else:
            entries = scan_folder(Path(self.path).expanduser(), self.pattern)
        return load_sessions(
            entries,
            skip_corrupted=self.skip_corrupted,
            cache_dir=cache_dir,
            individual=self.individual,
            fps=self.fps,
        )


@dataclass
class DBMMatSource:
    """The original DBM MATLAB v7.3 file: one session per trial, labels embedded."""

    path: str | Path

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult:
        """All trials of the file (``cache_dir`` is unused: the file is read directly)."""
        return LoadResult(sessions=load_dbm_mat(Path(self.path).expanduser()), skipped=[])


# --------------------------------------------------------------- per-session pipeline


def _reorder_bodyparts(session: Session, bodyparts: Sequence[str]) -> Session:
    """``session`` with its body parts in ``bodyparts`` order (extra parts dropped)."""
    bodyparts = tuple(bodyparts)
    if session.bodyparts == bodyparts:
        return session
    missing = [p for p in bodyparts if p not in session.bodyparts]
    if missing:
        raise DataFormatError(
            session.source,
            f"session {session.name!r} lacks body part(s) {missing} that the pipeline expects "
            f"({list(bodyparts)}); the session has {list(session.bodyparts)}",
        )
    idx = [session.bodyparts.index(p) for p in bodyparts]
    return replace(
        session,
        pose=session.pose[:, idx],
        likelihood=session.likelihood[:, idx],
        bodyparts=bodyparts,
    )


def _raw_features(
    cleaned: Session, config: FeatureConfig, arena: ArenaBounds, fps: float
) -> np.ndarray:
    """``(T, F)`` float32 features of a cleaned session (NaN where the pose is missing)."""
    return compute_features(cleaned.pose, scale_pose(cleaned.pose, arena), config, fps)


def _finalise(raw: np.ndarray, standardizer: Standardizer) -> tuple[np.ndarray, np.ndarray]:
    """Standardise; invalid frames (any non-finite feature) -> 0. Returns (features, valid)."""
    z = standardizer.transform(raw)
    valid = np.isfinite(z).all(axis=1)
    z[~valid] = 0.0
    return np.ascontiguousarray(z, dtype=np.float32), valid


def _stack_windows(
    members: Sequence[PreparedSession], window: int, stride: int, count_once: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The windows of several sessions in one preallocated contiguous array pair (no list of
    per-session copies to concatenate: at the paper's scale that halves the peak memory)."""
    counts = [len(window_starts(p.features.shape[0], window, stride)) for p in members]
    n_features = members[0].features.shape[1]
    X = np.empty((sum(counts), window, n_features), dtype=np.float32)
    Y = np.empty((sum(counts), window), dtype=np.int64)
    offset = 0
    for p, n in zip(members, counts, strict=True):
        X[offset : offset + n], Y[offset : offset + n] = make_windows(
            p.features, p.labels, window, stride, count_once=count_once
        )
        offset += n
    return X, Y


def _session_fps(session: Session, fallback: float | None) -> float:
    return float(session.fps or fallback or DEFAULT_FPS)


def prepare_session(
    session: Session, pipeline_state: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Features of a new session exactly as the data module computed them for training.

    Parameters
    ----------
    session
        A raw session (as read); body parts are matched by name to the state's.
    pipeline_state
        :meth:`DBMDataModule.pipeline_state` (e.g. from a checkpoint's hyperparameters).

    Returns
    -------
    features, valid
        ``(T, F)`` float32 standardised features with 0 at invalid frames, and the ``(T,)``
        bool mask of valid frames.

    Raises
    ------
    DataFormatError
        When the session lacks body parts the model was trained on (they are named).
    """
    state = pipeline_state
    session = _reorder_bodyparts(session, state["bodyparts"])
    cleaned, _ = clean_session(session, PreprocessConfig(**state["preprocess"]))
    raw = _raw_features(
        cleaned,
        FeatureConfig(**state["features"]),
        ArenaBounds.from_dict(state["arena"]),
        _session_fps(session, state.get("fps")),
    )
    return _finalise(raw, Standardizer.from_dict(state["standardizer"]))


@dataclass
class PreparedSession:
    """One session after the data module's pipeline, full length (not windowed).

    ``session`` is the cleaned, labelled session (pixel pose), ``features`` ``(T, F)`` float32
    (0 at invalid frames), ``labels`` ``(T,)`` int64 in the data module's class order (-1 at
    unlabelled or invalid frames), ``valid`` ``(T,)`` bool.
    """

    name: str
    split: str
    session: Session
    features: np.ndarray
    labels: np.ndarray
    valid: np.ndarray


# ------------------------------------------------------------------------- DataModule


def _merge_label_names(
    sessions: Sequence[Session], fixed: Sequence[str] | None
) -> tuple[tuple[str, ...], list[np.ndarray]]:
    """One class order for all sessions (``fixed`` first, then new names in order of first
    appearance) and every session's labels remapped to it."""
    names: list[str] = list(fixed) if fixed is not None else []
    for s in sessions:
        for n in s.label_names or ():
            if n not in names:
                names.append(n)
    out = []
    for s in sessions:
        if s.labels is None:
            raise DataFormatError(s.source, f"session {s.name!r} has no labels after labelling")
        own = tuple(s.label_names)
        if own == tuple(names[: len(own)]):
            out.append(s.labels)
            continue
        lut = np.array([names.index(n) for n in own], dtype=np.int64)
        lab = s.labels
        out.append(np.where(lab >= 0, lut[np.clip(lab, 0, len(lut) - 1)], UNLABELLED))
    return tuple(names), out


class DBMDataModule(pl.LightningDataModule):
    """Sessions -> cleaned, labelled, featurised, split, standardised, windowed tensors.

    Parameters
    ----------
    source
        :class:`SyntheticSource`, :class:`DLCFolderSource`, :class:`DBMMatSource` or anything
        with ``load(cache_dir) -> LoadResult``.
    labeler
        ``RuleLabeler`` / ``FileLabeler`` / ``EmbeddedLabeler`` (``.label(session)``).
    preprocess, features, split
        Cleaning, feature and split configs (defaults when ``None``).
    arena
        Pixel bounds mapped to [-1, 1]; ``None`` = extent of all sessions (see module doc).
    window, stride
        Window length and step in frames (``stride <= window``; every frame is covered).
    batch_size, num_workers
        DataLoader settings (``persistent_workers`` only when ``num_workers > 0``).
    fps
        Frame rate for sessions that do not carry one (default 30).
    seed
        Seed of the training loader's shuffling.
    cache_dir
        Parsed-session cache passed to ``source.load`` (``False`` disables it).
    pin_memory
        Passed to the DataLoaders.

    Attributes (after :meth:`setup`)
    --------------------------------
    n_features, n_classes, class_names, feature_names, bodyparts, train_class_counts,
    assignment (name -> split), skipped (``SkippedSession`` list), gap_reports (name ->
    ``GapReport``), arena_bounds, standardizer, datasets (split -> ``TensorDataset``),
    has_val, has_test.
    """

    def __init__(
        self,
        source: DataSource,
        labeler: Any,
        preprocess: PreprocessConfig | None = None,
        features: FeatureConfig | None = None,
        split: SplitConfig | None = None,
        arena: ArenaBounds | None = None,
        window: int = 200,
        stride: int = 100,
        batch_size: int = 32,
        num_workers: int = 0,
        fps: float | None = None,
        seed: int = 0,
        cache_dir: str | Path | bool | None = None,
        pin_memory: bool = False,
    ) -> None:
        super().__init__()
        _check_window(window, stride)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.source = source
        self.labeler = labeler
        self.preprocess = preprocess or PreprocessConfig()
        self.features = features or FeatureConfig()
        self.split = split or SplitConfig()
        self.arena = arena
        self.window = int(window)
        self.stride = int(stride)
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.fps = float(fps) if fps else None
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.pin_memory = bool(pin_memory)
        self._is_setup = False

    # ------------------------------------------------------------------ setup

    def setup(self, stage: str | None = None) -> None:
        """Load and prepare everything once (later calls, any stage, do nothing)."""
        if self._is_setup:
            return
        result = self.source.load(cache_dir=self.cache_dir)
        raw_sessions = list(result.sessions)
        self.skipped = list(result.skipped)
        if not raw_sessions:
            raise ValueError(f"data source {self.source!r} gave no sessions")

        self.bodyparts = raw_sessions[0].bodyparts
        sessions = [_reorder_bodyparts(s, self.bodyparts) for s in raw_sessions]

        self.gap_reports: dict[str, GapReport] = {}
        cleaned: list[Session] = []
        for s in sessions:
            c, report = clean_session(s, self.preprocess)
            cleaned.append(c)
            self.gap_reports[s.name] = report

        labelled = [self.labeler.label(s) for s in cleaned]
        self.class_names, labels = _merge_label_names(
            labelled, getattr(self.labeler, "label_names", None)
        )
        self.n_classes = len(self.class_names)

        self.arena_bounds = self.arena or ArenaBounds.from_data(cleaned)
        raw = [
            _raw_features(s, self.features, self.arena_bounds, _session_fps(s, self.fps))
            for s in labelled
        ]
        self.feature_names = feature_names(self.bodyparts, self.features)
        self.n_features = int(raw[0].shape[1])

        self.assignment = split_sessions(labelled, self.split)
        # fitted on the valid frames (every feature finite) of the training sessions only
        train_raw = [
            r[np.isfinite(r).all(axis=1)]
            for s, r in zip(labelled, raw, strict=True)
            if self.assignment[s.name] == "train"
        ]
        self.standardizer = Standardizer.fit(train_raw)
        del train_raw

        self._prepared: dict[str, PreparedSession] = {}
        for i, (s, lab) in enumerate(zip(labelled, labels, strict=True)):
            feats, valid = _finalise(raw[i], self.standardizer)
            raw[i] = None  # free each session's unstandardised copy as soon as it is done
            lab = np.where(valid, lab, UNLABELLED).astype(np.int64)
            self._prepared[s.name] = PreparedSession(
                name=s.name,
                split=self.assignment[s.name],
                session=s.with_labels(lab, self.class_names),
                features=feats,
                labels=lab,
                valid=valid,
            )

        self.datasets: dict[str, TensorDataset] = {}
        self._n_windows: dict[str, int] = {}
        for split in SPLITS:
            members = [p for p in self._prepared.values() if p.split == split]
            if not members:
                continue
            # training windows overlap (stride); evaluation windows tile each session and
            # count every frame once, so val/test metrics are exact per-frame metrics
            stride = self.stride if split == "train" else self.window
            X, Y = _stack_windows(members, self.window, stride, count_once=split != "train")
            self.datasets[split] = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
            self._n_windows[split] = int(X.shape[0])

        train_labels = np.concatenate(
            [p.labels for p in self._prepared.values() if p.split == "train"]
        )
        self.train_class_counts = np.bincount(
            train_labels[train_labels >= 0], minlength=self.n_classes
        ).astype(np.int64)
        if "val" not in self.datasets:
            warnings.warn("the split has no validation sessions", stacklevel=2)
        self._is_setup = True

    def _require_setup(self) -> None:
        if not self._is_setup:
            raise RuntimeError("call DBMDataModule.setup() first")

    @property
    def has_val(self) -> bool:
        """Whether the split has validation sessions."""
        self._require_setup()
        return "val" in self.datasets

    @property
    def has_test(self) -> bool:
        """Whether the split has test sessions."""
        self._require_setup()
        return "test" in self.datasets

    # ------------------------------------------------------------- dataloaders

    def _loader(self, split: str, shuffle: bool) -> DataLoader | list:
        self._require_setup()
        ds = self.datasets.get(split)
        if ds is None:
            return []
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        """Training windows, shuffled every epoch with a seeded generator."""
        loader = self._loader("train", shuffle=True)
        if not isinstance(loader, DataLoader):
            raise RuntimeError("the split left no training sessions")
        return loader

    def val_dataloader(self) -> DataLoader | list:
        """Validation windows in order (an empty list when there is no val split)."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | list:
        """Test windows in order (an empty list when there is no test split)."""
        return self._loader("test", shuffle=False)

    # ---------------------------------------------------------- state & views

    def pipeline_state(self) -> dict[str, Any]:
        """JSON-able state that :func:`prepare_session` needs to reproduce the features."""
        self._require_setup()
        return {
            "version": PIPELINE_STATE_VERSION,
            "preprocess": asdict(self.preprocess),
            "features": self.features.to_dict(),
            "arena": self.arena_bounds.to_dict(),
            "standardizer": self.standardizer.to_dict(),
            "bodyparts": list(self.bodyparts),
            "class_names": list(self.class_names),
            "feature_names": list(self.feature_names),
            "fps": self.fps if self.fps is not None else DEFAULT_FPS,
            "window": self.window,
            "stride": self.stride,
        }

    def predict_sessions(
        self, names: Sequence[str] | None = None, split: str | None = None
    ) -> list[PreparedSession]:
        """Full-length prepared sessions (for microstates and figures).

        ``names`` picks sessions by name (unknown names raise ``KeyError``); else ``split``
        (``"train"``/``"val"``/``"test"``) picks a split; else all sessions, in load order.
        """
        self._require_setup()
        if names is not None:
            unknown = [n for n in names if n not in self._prepared]
            if unknown:
                raise KeyError(f"unknown session(s) {unknown}; known: {list(self._prepared)}")
            return [self._prepared[n] for n in names]
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        return [p for p in self._prepared.values() if split is None or p.split == split]

    def session_features(self, split: str | None = None) -> list[PreparedSession]:
        """The prepared sessions of ``split`` (all when ``None``)."""
        return self.predict_sessions(split=split)

    def summary(self) -> dict[str, Any]:
        """JSON-able description of the data: sessions/frames/windows per split, skipped
        files (path, reason), per-session gap fractions, classes and their training counts."""
        self._require_setup()
        per_split: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            members = [p for p in self._prepared.values() if p.split == split]
            per_split[split] = {
                "sessions": len(members),
                "frames": int(sum(p.labels.shape[0] for p in members)),
                "valid_frames": int(sum(p.valid.sum() for p in members)),
                "labelled_frames": int(sum((p.labels >= 0).sum() for p in members)),
                "windows": self._n_windows.get(split, 0),
            }
        return {
            "source": repr(self.source),
            "sessions": {k: v["sessions"] for k, v in per_split.items()},
            "frames": {k: v["frames"] for k, v in per_split.items()},
            "splits": per_split,
            "split": self.split.to_dict(),
            "assignment": dict(self.assignment),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "gaps": [
                {**self.gap_reports[p.name].to_dict(), "split": p.split}
                for p in self._prepared.values()
            ],
            "class_names": list(self.class_names),
            "train_class_counts": [int(c) for c in self.train_class_counts],
            "n_features": self.n_features,
            "bodyparts": list(self.bodyparts),
            "arena": self.arena_bounds.to_dict(),
            "arena_from_data": self.arena is None,
            "window": self.window,
            "stride": self.stride,
        }
