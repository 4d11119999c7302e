"""Windows over sessions: where they start, cutting them, and the dataset that gathers a batch of
them from a split's frames stored once (:class:`WindowDataset`, batches as :class:`WindowBatch`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from dbm_lightning.preprocess import ArenaBounds
from dbm_lightning.ranges import at_least, check_ranges
from dbm_lightning.session import UNLABELLED


def window_starts(n_frames: int, window: int, stride: int) -> np.ndarray:
    """Start frames of the windows of one session.

    Starts are ``0, stride, 2 stride, ...``; when the last one does not reach the end, one more
    window aligned to the end (start ``n_frames - window``) is added, so every frame is in at
    least one window. A session shorter than ``window`` has one window at 0 (padded by
    :func:`make_windows`); an empty session has none.
    """
    check_window(window, stride)
    if n_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if n_frames <= window:
        return np.zeros(1, dtype=np.int64)
    last = n_frames - window
    starts = np.arange(0, last + 1, stride, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, np.int64(last))
    return starts


def check_window(window: int, stride: int) -> None:
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


@dataclass(frozen=True)
class LoaderConfig:
    """How a data module windows and serves its sessions (the ``data`` config keys shared by
    every source): window length and step (``stride``; ``eval_stride`` for validation/test,
    ``None`` = tiled), batch size, loader workers, the frame rate of sessions that carry
    none (``None``: 30 fps) and the arena's pixel bounds (``None``: the extent of the data)."""

    window: int = field(default=200, metadata=at_least(1))
    stride: int = field(default=100, metadata=at_least(1))
    eval_stride: int | None = field(default=None, metadata=at_least(1))
    batch_size: int = field(default=32, metadata=at_least(1))
    num_workers: int = field(default=0, metadata=at_least(0))
    fps: float | None = field(default=None, metadata=at_least(0, integer=False, above=True))
    arena: ArenaBounds | None = None

    def __post_init__(self) -> None:
        check_ranges(self)


LOADER = LoaderConfig()
"""The defaults of :class:`LoaderConfig` (the data module's keyword defaults)."""


@dataclass
class WindowBatch:
    """A batch of windows: features ``x (B, W, F)`` and labels ``y (B, W)`` (-1 = ignore),
    plus what the dataset was asked to carry: ``starts (B,)`` (first stored frame of each
    window, for averaging overlapping evaluation windows), ``pose (B, W, P, 2)`` (pixel pose,
    for training-time augmentation) and ``fps (B,)`` (each window's frame rate).

    Read it by name. It also unpacks as a tuple of the tensors it holds, in field order
    (``x, y = batch``; ``x, y, pose = batch``), for loops written against plain loaders.
    Lightning moves it to the device field by field (it is a dataclass).
    """

    x: torch.Tensor
    y: torch.Tensor
    starts: torch.Tensor | None = None
    pose: torch.Tensor | None = None
    fps: torch.Tensor | None = None

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """The tensors it holds, in field order (``None`` fields left out)."""
        return tuple(v for v in (self.x, self.y, self.starts, self.pose, self.fps) if v is not None)

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.tensors())

    def __len__(self) -> int:
        return len(self.tensors())

    def __getitem__(self, index: int | slice) -> Any:
        return self.tensors()[index]

    def first(self) -> WindowBatch:
        """The batch's first window alone (each field without its batch axis)."""
        return WindowBatch(
            *(
                None if v is None else v[0]
                for v in (self.x, self.y, self.starts, self.pose, self.fps)
            )
        )

    @classmethod
    def of(cls, batch: Any) -> WindowBatch:
        """``batch`` as a :class:`WindowBatch` (a plain ``(x, y)`` or ``(x, y, starts)``
        sequence, e.g. from a ``TensorDataset``, is accepted too)."""
        return batch if isinstance(batch, cls) else cls(*batch)


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
    (:mod:`dbm_lightning.models.inference`).

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

    def gather(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> WindowBatch:
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
            fps = self.window_fps[idx] if self.window_fps is not None else None
            return WindowBatch(x, y, pose=pose, fps=fps)
        return WindowBatch(x, y, starts=starts if self.return_starts else None)

    def __getitems__(self, indices: Sequence[int]) -> WindowBatch:
        return self.gather(indices)

    def __getitem__(self, index: int) -> WindowBatch:
        return self.gather([int(index)]).first()

    @staticmethod
    def collate(batch: Any) -> Any:
        """The loader's ``collate_fn``: the batch from :meth:`__getitems__`, unchanged."""
        return batch


def split_layout(
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
    check_window(window, stride)
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
