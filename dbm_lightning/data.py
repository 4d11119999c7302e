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
9. each split's frames are stored once, sessions one after another in one float32 array
   (written, standardised and served in place); a :class:`WindowDataset` gathers the windows
   of a batch from it (the windows of :func:`make_windows`, never stored as copies).

:func:`prepare_session` applies steps 2, 3, 5 (stored bounds), 6, 7 (stored standardiser)
and 8 to a new session from :meth:`DBMDataModule.pipeline_state`, so prediction sees exactly
the features the model was trained on.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from dbm_lightning.augment import (
    AugmentConfig,
    augment_pose,
    compute_features_torch,
    standardise_torch,
)
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
    require_valid_frames,
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
    "EpochShuffleSampler",
    "PreparedSession",
    "SplitConfig",
    "SplitLeakError",
    "SyntheticSource",
    "WindowDataset",
    "check_split",
    "kfold_mouse_groups",
    "make_windows",
    "prepare_session",
    "split_sessions",
    "window_starts",
]

DEFAULT_FPS = 30.0
"""Frame rate used when neither a session nor the data module gives one."""

SPLITS = ("train", "val", "test")
STRATEGIES = ("trials", "sessions", "leave_mouse_out", "leave_day_out", "kfold_mouse", "kfold")
PIPELINE_STATE_VERSION = 1
_AUGMENT_STREAM = 0xA06
"""Third seed word of the augmentation generator (a stream apart from ``EpochSeed``'s)."""


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


class WindowDataset(Dataset):
    """The windows of one split, gathered on demand from the split's frames stored once.

    The frames of the split's sessions lie one after another in ``features (N, F)`` float32
    and ``labels (N,)`` int64 (-1 = ignore); a session shorter than ``window`` is followed by
    ``window - T`` padding frames (features 0, label -1), so that windows never reach into the
    next session. Window ``i`` is frames ``starts[i] .. starts[i] + window - 1``, and its first
    ``hidden[i]`` labels read -1: frames that an earlier window already holds (the
    ``count_once`` rule of :func:`make_windows`). Nothing is copied per window until a batch is
    gathered.

    :meth:`__getitems__` (which a ``DataLoader`` with a batch size calls with a batch's
    indices) returns the whole batch ``(x (B, W, F), y (B, W))`` gathered by one indexing op
    per tensor; such a loader must pass ``collate_fn=WindowDataset.collate``, which keeps the
    batch as it is. ``dataset[i]`` gives one window ``(x (W, F), y (W,))``.

    With ``return_starts=True`` a batch is ``(x, y, starts (B,))``: the first stored frame of
    each window, with which overlapping evaluation windows are averaged per frame
    (:mod:`dbm_lightning.inference`).

    With ``pose (N, P, 2)`` (the pixel pose of the stored frames, for training-time
    augmentation; see :mod:`dbm_lightning.augment`) a batch is ``(x, y, pose (B, W, P, 2))``,
    and ``(x, y, pose, fps (B,))`` when ``window_fps`` gives each window its frame rate.
    """

    def __init__(
        self,
        features: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        starts: np.ndarray | torch.Tensor,
        window: int,
        hidden: np.ndarray | torch.Tensor | None = None,
        return_starts: bool = False,
        pose: np.ndarray | torch.Tensor | None = None,
        window_fps: np.ndarray | torch.Tensor | None = None,
    ) -> None:
        self.return_starts = bool(return_starts)
        self.pose = None if pose is None else torch.as_tensor(pose).contiguous()
        self.window_fps = None if window_fps is None else torch.as_tensor(window_fps).reshape(-1)
        self.features = torch.as_tensor(features).contiguous()
        self.labels = torch.as_tensor(labels).contiguous()
        self.starts = torch.as_tensor(starts, dtype=torch.int64).reshape(-1)
        self.window = int(window)
        n = self.features.shape[0]
        if self.features.ndim != 2 or self.labels.shape != (n,):
            raise ValueError(
                f"need features (N, F) and labels (N,), got {tuple(self.features.shape)} and "
                f"{tuple(self.labels.shape)}"
            )
        if self.window < 1:
            raise ValueError(f"window must be >= 1 frame, got {window}")
        if len(self.starts) and (
            int(self.starts.min()) < 0 or int(self.starts.max()) + self.window > n
        ):
            raise ValueError(f"window starts must lie in [0, {n - self.window}]")
        if hidden is not None:
            hidden = torch.as_tensor(hidden, dtype=torch.int64).reshape(-1)
            if hidden.shape != self.starts.shape:
                raise ValueError(f"hidden has {len(hidden)} entries for {len(self.starts)} windows")
            hidden = hidden if bool((hidden > 0).any()) else None
        self.hidden = hidden
        if self.pose is not None:
            if self.pose.ndim != 3 or self.pose.shape[0] != n or self.pose.shape[2] != 2:
                raise ValueError(f"pose must be ({n}, P, 2), got {tuple(self.pose.shape)}")
            if self.return_starts:
                raise ValueError("pose (for augmentation) and return_starts exclude each other")
        if self.window_fps is not None and (
            self.pose is None or self.window_fps.shape != self.starts.shape
        ):
            raise ValueError("window_fps needs pose and one frame rate per window")
        self._views()

    def _views(self) -> None:
        """Overlapping views ``(N - W + 1, W, F)`` and ``(N - W + 1, W)`` of every window
        position, from which a batch is one ``index_select`` (contiguous block copies)."""
        n, w = self.features.shape[0], self.window
        self._positions = torch.arange(w, dtype=torch.int64)
        if n < w:  # no window at all
            self._x = self._y = None
            return
        f = self.features.shape[1]
        self._x = self.features.as_strided(
            (n - w + 1, w, f), (f, f, 1), self.features.storage_offset()
        )
        self._y = self.labels.as_strided((n - w + 1, w), (1, 1), self.labels.storage_offset())
        self._pose = None
        if self.pose is not None:
            p = self.pose.shape[1]
            self._pose = self.pose.as_strided(
                (n - w + 1, w, p, 2), (2 * p, 2 * p, 2, 1), self.pose.storage_offset()
            )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_x", None)
        state.pop("_y", None)
        state.pop("_pose", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._views()

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    @property
    def nbytes(self) -> int:
        """Bytes held: features, labels and the per-window index (no window is stored)."""
        hidden = 0 if self.hidden is None else self.hidden.nbytes
        hidden += 0 if self.pose is None else self.pose.nbytes
        hidden += 0 if self.window_fps is None else self.window_fps.nbytes
        return int(self.features.nbytes + self.labels.nbytes + self.starts.nbytes + hidden)

    def gather(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> tuple[Any, ...]:
        """Windows ``indices`` as fresh contiguous ``x (B, W, F)`` float32, ``y (B, W)`` int64
        (and their ``starts (B,)`` when ``return_starts``)."""
        idx = torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        starts = self.starts[idx]
        if self._x is None or self._y is None:
            raise IndexError("this split has no windows")
        x = torch.index_select(self._x, 0, starts)
        y = torch.index_select(self._y, 0, starts)
        if self.hidden is not None:
            y.masked_fill_(self._positions[None, :] < self.hidden[idx][:, None], UNLABELLED)
        if self._pose is not None:
            pose = torch.index_select(self._pose, 0, starts)
            if self.window_fps is not None:
                return x, y, pose, self.window_fps[idx]
            return x, y, pose
        if self.return_starts:
            return x, y, starts
        return x, y

    def __getitems__(self, indices: Sequence[int]) -> tuple[Any, ...]:
        return self.gather(indices)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(t[0] for t in self.gather([int(index)]))

    @staticmethod
    def collate(batch: Any) -> Any:
        """The loader's ``collate_fn``: the batch from :meth:`__getitems__`, unchanged."""
        return batch


def _split_layout(
    lengths: Sequence[int], window: int, stride: int, count_once: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame layout and windows of sessions stored one after another (:class:`WindowDataset`).

    Parameters
    ----------
    lengths
        Frames of each session, in storage order.
    window, stride, count_once
        As :func:`make_windows`.

    Returns
    -------
    offsets, starts, hidden
        ``offsets (S + 1,)``: first stored frame of each session and, last, the total (a session
        shorter than ``window`` takes ``window`` frames: itself and its padding);
        ``starts (N,)``: first stored frame of every window, session by session, as
        :func:`window_starts`; ``hidden (N,)``: leading frames of each window whose label an
        earlier window of the session already holds (all 0 unless ``count_once``).
    """
    _check_window(window, stride)
    lengths = [int(t) for t in lengths]
    rows = [max(t, window) if t > 0 else 0 for t in lengths]
    offsets = np.concatenate([[0], np.cumsum(rows, dtype=np.int64)]).astype(np.int64)
    starts, hidden = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for t, off in zip(lengths, offsets[:-1], strict=True):
        s = window_starts(t, window, stride)
        h = np.zeros(len(s), dtype=np.int64)
        if count_once and len(s) > 1:
            h[1:] = np.maximum(s[:-1] + window - s[1:], 0)
        starts.append(s + off)
        hidden.append(h)
    return offsets, np.concatenate(starts), np.concatenate(hidden)


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
        ``fold + 1`` (mod ``n_folds``) is test. ``"kfold"``: the same over sessions/trials
        (every session is validation in exactly one fold of a ``fold=0..n_folds-1`` sweep).
    val_fraction, test_fraction
        Fractions of sessions (trials/sessions) or of mice/days (leave-out strategies).
    seed
        Seed of every random choice (the result does not depend on the input order).
    fold, n_folds, kfold_test
        For ``kfold_mouse`` and ``kfold``.
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


def _kfold_groups(groups: list[str], config: SplitConfig, what: str) -> tuple[set[str], set[str]]:
    """Val (and, with ``kfold_test``, test) groups of fold ``config.fold``: the sorted
    ``groups`` shuffled by ``config.seed`` and cut into ``n_folds`` near-equal folds."""
    if len(groups) < config.n_folds:
        raise ValueError(
            f"{config.strategy} with n_folds={config.n_folds} needs at least that many "
            f"{what}; the data has {len(groups)}"
        )
    order = np.random.default_rng(config.seed).permutation(len(groups))
    folds = np.array_split(order, config.n_folds)
    val = {groups[i] for i in folds[config.fold]}
    test = (
        {groups[i] for i in folds[(config.fold + 1) % config.n_folds]}
        if config.kfold_test
        else set()
    )
    return val, test


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

    if strategy == "kfold":
        ordered = sorted(names, key=_natural_key)
        val, test = _kfold_groups(ordered, config, "sessions")
        return {n: "val" if n in val else "test" if n in test else "train" for n in names}

    if strategy == "kfold_mouse":
        mice = _require_groups(sessions, "mouse", strategy)
        val, test = _kfold_groups(mice, config, "mice")
        attr = "mouse"
    else:
        attr = "mouse" if strategy == "leave_mouse_out" else "day"
        val, test, attr = _leave_out(sessions, config, attr)

    out = {}
    for s in sessions:
        key = _group_key(s, attr)
        out[s.name] = "val" if key in val else "test" if key in test else "train"
    return out


class SplitLeakError(ValueError):
    """A split that puts one recording (or, for mouse/day strategies, one mouse/day) on two
    sides, which would let validation/test accuracy profit from training data."""


def _recording_key(session: Session) -> str:
    """What identifies a recording: its file, plus individual/trial when a file holds several."""
    parts = [str(session.source) if session.source is not None else session.name]
    for key in ("individual", "trial"):
        if session.extra.get(key) is not None:
            parts.append(f"{key} {session.extra[key]}")
    return " / ".join(parts)


def check_split(
    sessions: Sequence[Session], assignment: Mapping[str, str], config: SplitConfig
) -> None:
    """Refuse an assignment in which anything that must stay on one side is on two.

    Checked at run time by :meth:`DBMDataModule.setup`, whatever produced ``assignment``:
    every session has exactly one known split; no recording (file, individual, trial) is on
    two sides, even when it was listed twice under different names; and with
    ``leave_mouse_out``/``kfold_mouse`` no mouse, with ``leave_day_out`` no day, is on two
    sides.

    Raises
    ------
    SplitLeakError
        Naming the group, its sides and the sessions on each.
    """
    names = [s.name for s in sessions]
    missing = [n for n in names if assignment.get(n) not in SPLITS]
    if missing:
        raise SplitLeakError(f"sessions without a train/val/test split: {missing}")
    unknown = sorted(set(assignment) - set(names))
    if unknown:
        raise SplitLeakError(f"the split names sessions that were not loaded: {unknown}")
    groupings: list[tuple[str, Any]] = [("recording", _recording_key)]
    if config.strategy in ("leave_mouse_out", "kfold_mouse"):
        groupings.append(("mouse", lambda s: s.mouse))
    elif config.strategy == "leave_day_out":
        groupings.append(("day", lambda s: s.day))
    for what, key_of in groupings:
        sides: dict[Any, dict[str, list[str]]] = {}
        for s in sessions:
            sides.setdefault(key_of(s), {}).setdefault(assignment[s.name], []).append(s.name)
        leaks = {k: v for k, v in sides.items() if k is not None and len(v) > 1}
        if leaks:
            key, where = next(iter(leaks.items()))
            detail = "; ".join(f"{split}: {', '.join(ns)}" for split, ns in where.items())
            raise SplitLeakError(
                f"{config.strategy} split puts {what} {key!r} on {len(where)} sides ({detail})"
                + (f" and {len(leaks) - 1} more {what} group(s)" if len(leaks) > 1 else "")
            )


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


def _check_same_bodyparts(sessions: Sequence[Session]) -> None:
    """Every session tracks the same set of body parts as the first (order may differ): a
    part only some sessions have would otherwise be dropped from them without a word."""
    first = sessions[0]
    ref = set(first.bodyparts)
    for s in sessions[1:]:
        if set(s.bodyparts) == ref:
            continue
        missing = [p for p in first.bodyparts if p not in s.bodyparts]
        extra = [p for p in s.bodyparts if p not in ref]
        raise DataFormatError(
            s.source,
            f"session {s.name!r} has body parts {list(s.bodyparts)} but session {first.name!r} "
            f"({first.source}) has {list(first.bodyparts)} (missing {missing}, unknown "
            f"{extra}): every session must track the same body parts",
        )


def _raw_features(
    cleaned: Session, config: FeatureConfig, arena: ArenaBounds, fps: float
) -> np.ndarray:
    """``(T, F)`` float32 features of a cleaned session (NaN where the pose is missing)."""
    return compute_features(
        cleaned.pose,
        scale_pose(cleaned.pose, arena),
        config,
        fps,
        bodyparts=cleaned.bodyparts,
        arena=arena,
    )


def _finalise(raw: np.ndarray, standardizer: Standardizer) -> tuple[np.ndarray, np.ndarray]:
    """Standardise; invalid frames (any non-finite feature) -> 0. Returns (features, valid).

    ``raw`` is standardised in place when it is a writeable C-contiguous float32 array."""
    z = np.require(raw, dtype=np.float32, requirements=["C", "W"])
    return z, _standardise_inplace(z, standardizer)


_FIT_CHUNK = 1 << 18
"""Rows per piece of a very long training session handed to ``Standardizer.fit`` (which works
in float64 one piece at a time)."""

_TRANSFORM_CHUNK = 1 << 14
"""Rows standardised at a time (bounds the float64 temporaries)."""


def _row_chunks(block: np.ndarray, chunk: int) -> list[np.ndarray]:
    """``block`` as views of at most ``chunk`` rows (one view when it is short enough)."""
    if len(block) <= chunk:
        return [block]
    return [block[a : a + chunk] for a in range(0, len(block), chunk)]


def _standardise_inplace(block: np.ndarray, standardizer: Standardizer) -> np.ndarray:
    """Standardise the float32 ``block (T, F)`` in place, a few thousand rows at a time; invalid
    frames (any non-finite feature after standardising) -> 0. Returns ``valid (T,)``."""
    valid = np.empty(block.shape[0], dtype=bool)
    for a in range(0, block.shape[0], _TRANSFORM_CHUNK):
        z = standardizer.transform(block[a : a + _TRANSFORM_CHUNK])
        ok = np.isfinite(z).all(axis=1)
        z[~ok] = 0.0
        block[a : a + _TRANSFORM_CHUNK] = z
        valid[a : a + _TRANSFORM_CHUNK] = ok
    return valid


def _write_raw_features(out: np.ndarray, raw: np.ndarray, session: Session) -> None:
    """Copy a session's raw features into its rows of the split's array; a frame with any
    non-finite feature becomes all NaN there (so that the standardiser's NaN-aware fit skips
    the whole frame, as it skips invalid frames)."""
    if raw.shape != out.shape:
        raise RuntimeError(
            f"session {session.name!r}: features of shape {raw.shape}, expected {out.shape} "
            "(feature_names and compute_features disagree)"
        )
    out[...] = raw
    out[~np.isfinite(out).all(axis=1)] = np.nan


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (the prepared sessions share the training arrays)."""
    v = a.view()
    v.flags.writeable = False
    return v


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
    preprocess = PreprocessConfig(**state["preprocess"])
    cleaned, _ = clean_session(session, preprocess)
    require_valid_frames(cleaned, preprocess)
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


class EpochShuffleSampler(Sampler[int]):
    """A new random order of ``n`` items each epoch that depends only on ``(seed, epoch)``.

    Lightning calls :meth:`set_epoch` before every training epoch. Because the order does not
    depend on how many epochs this process has already run, a run resumed from an epoch-end
    checkpoint sees the same batches as an uninterrupted one (a plain shuffled loader draws
    from a generator whose state a checkpoint does not keep).
    """

    def __init__(self, n: int, seed: int = 0, epoch: int = 0) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch``."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        rng = np.random.default_rng([self.seed, self.epoch])
        return iter(rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


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
    eval_stride
        Step of the validation/test windows. ``None`` (or ``window``): windows tile each
        session and every frame counts once, in the first window holding it. Smaller:
        windows overlap and each frame's prediction is the taper-weighted mean over its
        windows (:mod:`dbm_lightning.inference`), so frames at a window's edge are scored
        with context; batches are then ``(x, y, starts)``. Prediction and microstates use
        the same windows (recorded in :meth:`pipeline_state`).
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
    augment
        Training-time pose augmentation (:class:`~dbm_lightning.augment.AugmentConfig`; off
        when ``None``). When enabled, the training dataset also stores the cleaned pixel pose
        of its frames and a training batch is ``(x, y, pose)``; :meth:`on_after_batch_transfer`
        (on the device, only while the trainer trains) augments the pose, recomputes and
        standardises the features and hands the model ``(x, y)`` (labels untouched).
        Validation, test and prediction batches are never augmented.

    Attributes (after :meth:`setup`)
    --------------------------------
    n_features, n_classes, class_names, feature_names, bodyparts, train_class_counts,
    assignment (name -> split), skipped (``SkippedSession`` list), gap_reports (name ->
    ``GapReport``), arena_bounds, standardizer, datasets (split -> :class:`WindowDataset`),
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
        eval_stride: int | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        fps: float | None = None,
        seed: int = 0,
        cache_dir: str | Path | bool | None = None,
        pin_memory: bool = False,
        augment: AugmentConfig | None = None,
    ) -> None:
        super().__init__()
        _check_window(window, stride)
        if eval_stride is not None:
            _check_window(window, eval_stride)
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
        self.eval_stride = int(eval_stride) if eval_stride is not None else self.window
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.fps = float(fps) if fps else None
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.pin_memory = bool(pin_memory)
        self.augment = augment or AugmentConfig()
        self._augment_fps: float | None = None
        self._augment_generator: tuple[tuple[int, str], torch.Generator] | None = None
        self._standardizer_tensors: dict[tuple[str, torch.dtype], tuple[Any, Any]] = {}
        self._is_setup = False
        self._train_sampler: EpochShuffleSampler | None = None
        self._resume_epoch = 0

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
        _check_same_bodyparts(raw_sessions)
        sessions = [_reorder_bodyparts(s, self.bodyparts) for s in raw_sessions]

        self.gap_reports: dict[str, GapReport] = {}
        cleaned: list[Session] = []
        for s in sessions:
            c, report = clean_session(s, self.preprocess)
            require_valid_frames(c, self.preprocess)
            cleaned.append(c)
            self.gap_reports[s.name] = report
        del result, raw_sessions, sessions  # the raw pose and likelihood are no longer needed

        labelled = [self.labeler.label(s) for s in cleaned]
        self.class_names, labels = _merge_label_names(
            labelled, getattr(self.labeler, "label_names", None)
        )
        self.n_classes = len(self.class_names)

        self.arena_bounds = self.arena or ArenaBounds.from_data(cleaned)
        del cleaned  # the labelled sessions hold the cleaned pose
        self.feature_names = feature_names(self.bodyparts, self.features)
        self.n_features = len(self.feature_names)

        self.assignment = split_sessions(labelled, self.split)
        check_split(labelled, self.assignment, self.split)

        # Each split's frames are stored once, sessions one after another, in one float32
        # array that the features are written into, standardised in place and served from
        # (no per-session copies, no windows copy: WindowDataset gathers batches from it).
        members = {
            split: [i for i, s in enumerate(labelled) if self.assignment[s.name] == split]
            for split in SPLITS
        }
        stores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split, idx in members.items():
            if not idx:
                continue
            offsets, _, _ = _split_layout(
                [labelled[i].n_frames for i in idx], self.window, self.window
            )
            X = np.zeros((int(offsets[-1]), self.n_features), dtype=np.float32)
            for i, off in zip(idx, offsets[:-1], strict=True):
                s = labelled[i]
                _write_raw_features(
                    X[off : off + s.n_frames],
                    _raw_features(s, self.features, self.arena_bounds, _session_fps(s, self.fps)),
                    s,
                )
            stores[split] = (X, offsets)

        # fitted on the valid frames (every feature finite) of the training sessions only:
        # invalid frames are all NaN by now, which the NaN-aware fit skips
        train_views: list[np.ndarray] = []
        if "train" in stores:
            X, offsets = stores["train"]
            for i, off in zip(members["train"], offsets[:-1], strict=True):
                train_views += _row_chunks(X[off : off + labelled[i].n_frames], _FIT_CHUNK)
        self.standardizer = Standardizer.fit(train_views)
        del train_views

        prepared: dict[int, PreparedSession] = {}
        self.datasets: dict[str, WindowDataset] = {}
        self._n_windows: dict[str, int] = {}
        for split, (X, offsets) in stores.items():
            Y = np.full(X.shape[0], UNLABELLED, dtype=np.int64)
            valid_all = np.zeros(X.shape[0], dtype=bool)
            for i, off in zip(members[split], offsets[:-1], strict=True):
                s = labelled[i]
                rows = slice(int(off), int(off) + s.n_frames)
                valid_all[rows] = _standardise_inplace(X[rows], self.standardizer)
                Y[rows] = np.where(valid_all[rows], labels[i], UNLABELLED)
                lab = _read_only(Y[rows])
                prepared[i] = PreparedSession(
                    name=s.name,
                    split=split,
                    session=s.with_labels(lab, self.class_names),
                    features=_read_only(X[rows]),
                    labels=lab,
                    valid=_read_only(valid_all[rows]),
                )
            # training windows overlap (stride); evaluation windows either tile each session
            # and count every frame once, or overlap (eval_stride < window) and are averaged
            # per frame by the module: either way val/test metrics are exact per-frame metrics
            train = split == "train"
            averaged = not train and self.eval_stride < self.window
            _, starts, hidden = _split_layout(
                [labelled[i].n_frames for i in members[split]],
                self.window,
                self.stride if train else self.eval_stride,
                count_once=not train and not averaged,
            )
            pose = (
                self._training_pose([labelled[i] for i in members[split]], offsets, starts)
                if train and self.augment.enabled
                else {}
            )
            self.datasets[split] = WindowDataset(
                torch.from_numpy(X),
                torch.from_numpy(Y),
                starts,
                self.window,
                hidden,
                return_starts=averaged,
                **pose,
            )
            self._n_windows[split] = len(starts)
        self._prepared: dict[str, PreparedSession] = {
            prepared[i].name: prepared[i] for i in sorted(prepared)
        }
        del stores, prepared

        train_labels = self.datasets["train"].labels.numpy()  # the fit above needs a train split
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
        sampler = None
        if shuffle:
            sampler = EpochShuffleSampler(len(ds), self.seed, epoch=self._resume_epoch)
            self._train_sampler = sampler
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=WindowDataset.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        """Training windows, shuffled every epoch by :class:`EpochShuffleSampler`."""
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

    # ------------------------------------------------- training augmentation

    def _training_pose(
        self, sessions: Sequence[Session], offsets: np.ndarray, starts: np.ndarray
    ) -> dict[str, np.ndarray | None]:
        """``pose`` and ``window_fps`` of the training :class:`WindowDataset` (augmentation):
        the cleaned pixel pose of its frames stored as :func:`_split_layout` lays them out
        (``offsets``), and each window's frame rate when the sessions' rates differ."""
        pose = np.full((int(offsets[-1]), len(self.bodyparts), 2), np.nan, dtype=np.float32)
        for s, off in zip(sessions, offsets[:-1], strict=True):
            pose[off : off + s.n_frames] = s.pose
        # a frame with any missing point is invalid: all its points NaN (as padding frames)
        pose[~np.isfinite(pose).all(axis=(1, 2))] = np.nan
        rates = np.array([_session_fps(s, self.fps) for s in sessions], dtype=np.float32)
        window_fps = None
        self._augment_fps = float(rates[0])
        if not np.all(rates == rates[0]):  # one frame rate per window, in the batch
            session_of = np.searchsorted(offsets, starts, side="right") - 1
            window_fps = rates[session_of]
        return {"pose": pose, "window_fps": window_fps}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning hook (on the device): augment training batches ``(x, y, pose)`` into
        ``(x, y)`` while the trainer trains and augmentation is enabled; any other batch is
        returned as it is.

        The random numbers come from a generator of the batch's device that is seeded from
        ``(seed, epoch)`` at the first training batch of each epoch, so the augmentation of an
        epoch depends only on the seed and the epoch: reproducible, and a run resumed from an
        epoch-end checkpoint continues exactly (Lightning transfers the first batch of an
        epoch before the ``on_train_batch_start`` reseeding of ``training.EpochSeed``, so
        torch's default generator would not give that).
        """
        trainer = self.trainer
        if not self.augment.enabled or trainer is None or not trainer.training:
            return batch
        if not (isinstance(batch, list | tuple) and len(batch) in (3, 4) and batch[2].ndim == 4):
            return batch
        generator = self._epoch_generator(int(trainer.current_epoch), batch[2].device)
        return self.augment_batch(batch, generator=generator)

    def _epoch_generator(self, epoch: int, device: torch.device) -> torch.Generator:
        key = (epoch, str(device))
        if self._augment_generator is None or self._augment_generator[0] != key:
            state = np.random.SeedSequence([self.seed, epoch, _AUGMENT_STREAM]).generate_state(1)
            generator = torch.Generator(device=device)
            generator.manual_seed(int(state[0]))
            self._augment_generator = (key, generator)
        return self._augment_generator[1]

    def augment_batch(
        self, batch: Sequence[torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y, pose[, fps])`` -> ``(x', y)``: the pose augmented
        (:func:`~dbm_lightning.augment.augment_pose`, random numbers from ``generator``, default
        torch's), features recomputed (:func:`~dbm_lightning.augment.compute_features_torch`)
        and standardised with the fitted standardiser, invalid frames 0; ``y`` as given."""
        self._require_setup()
        x, y, pose = batch[0], batch[1], batch[2]
        fps = batch[3] if len(batch) > 3 else self._augment_fps or DEFAULT_FPS
        # geometry in float32 at least, whatever precision the batch was converted to
        work = torch.promote_types(pose.dtype, torch.float32)
        moved = augment_pose(pose.to(work), self.augment, self.arena_bounds, generator)
        raw = compute_features_torch(
            moved, self.features, self.arena_bounds, fps, bodyparts=self.bodyparts
        )
        mean, std = self._standardizer_on(x.device, work)
        z, _ = standardise_torch(raw, mean, std)
        return z.to(x.dtype), y

    def _standardizer_on(self, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
        key = (str(device), dtype)
        if key not in self._standardizer_tensors:
            self._standardizer_tensors[key] = (
                torch.as_tensor(self.standardizer.mean, dtype=dtype, device=device),
                torch.as_tensor(self.standardizer.std, dtype=dtype, device=device),
            )
        return self._standardizer_tensors[key]

    # ---------------------------------------------------------- state & views

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the training epoch whose order the sampler used last."""
        sampler = self._train_sampler
        return {"train_epoch": sampler.epoch if sampler is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the shuffling after the checkpoint's epoch (Lightning draws the first batch
        of a resumed run before it announces the epoch to the sampler)."""
        done = state_dict.get("train_epoch")
        self._resume_epoch = 0 if done is None else int(done) + 1
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(self._resume_epoch)

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
            "eval_stride": self.eval_stride,
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
            "eval_stride": self.eval_stride,
        }
