"""Per-frame predictions from overlapping windows, averaged with a taper.

A network trained on windows of ``W`` frames sees, at a window's first and last frames, no
context on one side. Offline scoring can do better: cut the session into windows every
``stride < W`` frames, run them all, and give each frame the *weighted mean* of the class
probabilities (and embeddings) of every window that holds it, with a weight that is largest
at the window's centre and tiny at its edges (:func:`window_weights`, a Hann taper that never
reaches 0). A frame at one window's edge is then decided by the window in which it sits near
the middle; only the session's first and last frames, which have no context on one side
anyway, rest on edge predictions. Every frame gets exactly one prediction.

The same arithmetic serves validation/test metrics (``DBMClassifier`` with the data module's
``eval_stride``), microstates and ``dbm-predict`` (:func:`predict_overlapping`), so the
numbers a run reports are those of the predictions it writes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from dbm_lightning.data.windows import window_starts

__all__ = [
    "accumulate_windows",
    "one_thread",
    "predict_overlapping",
    "run_model",
    "window_weights",
]


def window_weights(window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``(window,)`` float32 weights ``sin(pi (i + 0.5) / window) ** 2``: 1 at the centre,
    about ``(pi / 2 window) ** 2`` (never 0) at the first and last frame; all ones for a
    window of 1 frame."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    i = torch.arange(window, dtype=torch.float64, device=device)
    return (torch.sin(torch.pi * (i + 0.5) / window) ** 2).to(torch.float32)


def accumulate_windows(
    values: torch.Tensor,
    starts: torch.Tensor,
    weights: torch.Tensor,
    sums: torch.Tensor,
    weight_sums: torch.Tensor,
) -> None:
    """Add windows' weighted values to per-frame sums, in place.

    Parameters
    ----------
    values
        ``(N, W, D)`` per-window, per-frame values (probabilities, embeddings).
    starts
        ``(N,)`` first frame of every window (frames ``starts[i] .. starts[i] + W - 1``).
    weights
        ``(W,)`` weight of each position in a window.
    sums, weight_sums
        ``(T, D)`` and ``(T,)`` running sums of ``weights[pos] * values`` and of the weights
        over the windows holding each frame (one ``index_add_`` each, no loop over windows);
        the mean is ``sums / weight_sums[:, None]`` where ``weight_sums > 0``.
    """
    n, w, d = values.shape
    device = sums.device
    frames = (starts.to(device)[:, None] + torch.arange(w, device=device)).reshape(-1)
    wts = weights.to(device, sums.dtype).expand(n, w).reshape(-1)
    sums.index_add_(0, frames, values.to(device, sums.dtype).reshape(-1, d) * wts[:, None])
    weight_sums.index_add_(0, frames, wts)


@torch.no_grad()
def predict_overlapping(
    run: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    features: np.ndarray | torch.Tensor,
    window: int,
    stride: int,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities ``(T, C)`` and embedding ``(T, H)`` of one session from windows of
    ``window`` frames every ``stride`` frames (:func:`~dbm_lightning.data.window_starts`; the
    last window is aligned to the end), each frame the taper-weighted mean over its windows.

    ``run(x (B, W, F)) -> (probs (B, W, C), embedding (B, W, H))`` evaluates a batch of
    windows (in eval mode; the caller sets it). A session shorter than ``window`` is one
    window of its own length.
    """
    x = torch.as_tensor(np.asarray(features, dtype=np.float32))
    t = x.shape[0]
    if t == 0:
        raise ValueError("cannot predict an empty session")
    w = min(int(window), t)
    stride = max(1, min(int(stride), w))
    starts = torch.from_numpy(window_starts(t, w, stride))
    weights = window_weights(w)
    offsets = torch.arange(w)
    sums = weight_sums = None
    n_classes = 0
    for a in range(0, len(starts), batch_size):
        s = starts[a : a + batch_size]
        probs, emb = run(x[s[:, None] + offsets].to(device))  # x: (B, W, F)
        values = torch.cat([probs.float(), emb.float()], dim=-1).cpu()
        if sums is None or weight_sums is None:
            n_classes = probs.shape[-1]
            sums = torch.zeros(t, values.shape[-1], dtype=torch.float64)
            weight_sums = torch.zeros(t, dtype=torch.float64)
        accumulate_windows(values, s, weights, sums, weight_sums)
    assert sums is not None and weight_sums is not None
    mean = (sums / weight_sums[:, None]).to(torch.float32)
    return mean[:, :n_classes].numpy(), mean[:, n_classes:].numpy()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (restored after).

    A whole session is one batch-1 sequence: thousands of tiny LSTM steps, each a thread-pool
    barrier with several threads. One thread is 10-40x faster on an idle CPU and avoids
    pathological slow-downs (milliseconds per step) on a busy one.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_model(
    model: Any, features: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict_session(features, valid=valid)`` of a trained model of either family
    (``DBMClassifier`` or ``ClassicPredictor``): probabilities ``(T, C)`` and embedding
    ``(T, H)``, on one CPU thread when the model is on the CPU."""
    device = getattr(model, "device", None)
    if device is not None and getattr(device, "type", "cpu") != "cpu":
        return model.predict_session(features, valid=valid)
    with one_thread():
        return model.predict_session(features, valid=valid)
