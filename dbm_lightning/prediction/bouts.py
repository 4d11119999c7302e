"""Per-frame post-processing of a prediction: smoothed probabilities, minimum bout length, and the
table of bouts."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

import numpy as np
import pandas as pd

POSTPROCESS_KEY = "dbm_postprocess"
"""Where a checkpoint stores the post-processing its run chose on validation."""


def stored_postprocess(model: object, checkpoint: dict | None) -> dict[str, int]:
    """The post-processing a trained model was given on validation (a checkpoint's
    :data:`POSTPROCESS_KEY`, or a classic model's ``postprocess``); ``smoothing`` 0 and
    ``min_bout`` 1 (none) for a model trained before it was chosen."""
    stored = (checkpoint or {}).get(POSTPROCESS_KEY)
    if stored is None:
        stored = getattr(getattr(model, "model", model), "postprocess", None)
    stored = stored or {}
    return {
        "smoothing": int(stored.get("smoothing", 0)),
        "min_bout": int(stored.get("min_bout", 1)),
    }


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


def decide(probs: np.ndarray, smoothing: int, min_bout: int) -> tuple[np.ndarray, np.ndarray]:
    """The post-processed prediction of ``probs (T, C)``: the probabilities smoothed over
    ``smoothing`` frames (:func:`smooth_probabilities`) and the class of every frame (their
    arg-max, bouts shorter than ``min_bout`` merged: :func:`merge_short_bouts`)."""
    smoothed = smooth_probabilities(probs, smoothing)
    pred = smoothed.argmax(axis=1) if smoothed.shape[0] else np.zeros(0, dtype=np.int64)
    return smoothed, merge_short_bouts(pred, min_bout).astype(np.int64, copy=False)


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
