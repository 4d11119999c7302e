"""Behavioural microstates: k-means on per-frame embeddings, as in Deep Behavior Mapping.

The original (``dbmGetModelOutputs.m``, ``dbmExtractMicrostates.m`` and the demo script) takes
the LSTM output of every frame, clusters all frames with k-means (k = 50), renumbers the
clusters by the pseudo-label they overlap most and assigns new data to the nearest centroid.

Here:

- :func:`collect_embeddings` runs any embedding function (or a model with ``embed``) over
  per-session feature matrices; invalid frames become NaN and are ignored downstream.
- :func:`fit_microstates` clusters (full :class:`~sklearn.cluster.KMeans` (one k-means++ start) for
  small data, :class:`~sklearn.cluster.MiniBatchKMeans` above a frame threshold) and renumbers:
  states are ordered by their dominant label (label index order), then by frame count,
  largest first, so neighbouring numbers mean related behaviour. (The MATLAB demo sorts the
  counts ascending within a label; largest first puts the typical state of a label first.)
- :class:`Microstates` holds the renumbered centroids, assigns new frames (vectorised,
  chunked) and saves to ``.npz`` + ``.json`` (no pickle). States only mean something on the
  embedding of the model they were fitted on: ``model_sha256`` records that model
  (:func:`dbm_lightning.checkpoints.model_sha256`) so that ``dbm-predict`` refuses them on
  another one.
- :func:`overlap_table`, :func:`transition_probabilities`, :func:`group_microstates` and
  :func:`time_share_by_group` are the summaries the figures in
  :mod:`dbm_lightning.analysis.plots` show.

Microstate numbers are 0-based array indices everywhere (the paper counts from 1).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.atomic import write_atomic, write_json_atomic
from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.cache import file_sha256

__all__ = [
    "as_session_list",
    "Microstates",
    "assign_sessions",
    "collect_embeddings",
    "fit_microstates",
    "overlap_counts",
]

FORMAT_VERSION = 1
_ASSIGN_CHUNK = 4_096
"""Rows assigned at a time: the (rows, k) float64 distances stay in the CPU cache (a chunk of
65,536 rows made assignment 6x slower)."""


def as_session_list(arrays: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """A single array becomes a one-element list; a sequence of arrays stays a list."""
    if isinstance(arrays, np.ndarray):
        return [arrays]
    return list(arrays)


# --------------------------------------------------------------------------------------------
# embeddings
# --------------------------------------------------------------------------------------------


def _model_embed_fn(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Wrap a torch module with ``embed(x (B,W,F)) -> (B,W,H)`` as ``(T,F) -> (T,H)``."""
    import torch

    def embed(features: np.ndarray) -> np.ndarray:
        try:
            device = next(model.parameters()).device
        except (StopIteration, AttributeError):
            device = torch.device("cpu")
        was_training = getattr(model, "training", False)
        if hasattr(model, "eval"):
            model.eval()
        try:
            with torch.no_grad():
                x = torch.as_tensor(np.asarray(features, dtype=np.float32), device=device)
                out = model.embed(x[None])[0]
        finally:
            if was_training and hasattr(model, "train"):
                model.train()
        return out.detach().cpu().numpy()

    return embed


def collect_embeddings(
    embed_fn: Callable[[np.ndarray], np.ndarray] | Any,
    features_list: Sequence[np.ndarray],
    valid_list: Sequence[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """Per-frame embeddings of every session.

    Parameters
    ----------
    embed_fn
        A callable ``features (T, F) -> embedding (T, H)``; or a LightningModule with
        ``predict_session(features) -> (probs, embedding)``; or a network with
        ``embed(x (B, W, F)) -> (B, W, H)`` (``DBMBaseline``/``DBMModified``), run in eval
        mode without gradients on the device of its parameters, one whole session at a time.
    features_list
        One ``(T, F)`` float array per session.
    valid_list
        Optional ``(T,)`` bool masks; frames marked False get a NaN embedding so that
        :func:`fit_microstates` ignores them and :meth:`Microstates.assign` gives them -1.

    Returns
    -------
    list of ``(T, H)`` float32 arrays.
    """
    if hasattr(embed_fn, "predict_session"):
        model = embed_fn

        def embed_fn(features: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict_session(features)[1])

    elif hasattr(embed_fn, "embed"):
        embed_fn = _model_embed_fn(embed_fn)
    elif not callable(embed_fn):
        raise TypeError(
            f"embed_fn must be a callable (T,F)->(T,H), or a model with .predict_session or "
            f".embed, got {type(embed_fn).__name__}"
        )
    if valid_list is not None and len(valid_list) != len(features_list):
        raise ValueError(
            f"{len(valid_list)} validity masks for {len(features_list)} feature matrices"
        )
    out = []
    for i, feats in enumerate(features_list):
        feats = np.asarray(feats)
        if feats.ndim != 2:
            raise ValueError(f"session {i}: features must be (T, F), got shape {feats.shape}")
        emb = np.asarray(embed_fn(feats), dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != feats.shape[0]:
            raise ValueError(
                f"session {i}: embedding shape {emb.shape} does not match {feats.shape[0]} frames"
            )
        if valid_list is not None:
            valid = np.asarray(valid_list[i], dtype=bool)
            if valid.shape != (feats.shape[0],):
                raise ValueError(
                    f"session {i}: validity mask shape {valid.shape}, expected ({feats.shape[0]},)"
                )
            emb = emb.copy()
            emb[~valid] = np.nan
        out.append(emb)
    return out


# --------------------------------------------------------------------------------------------
# summaries on plain arrays
# --------------------------------------------------------------------------------------------


def overlap_counts(
    states: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    k: int,
    n_labels: int,
) -> np.ndarray:
    """``(k, n_labels)`` int64 frame counts of each label within each microstate.

    Frames with a negative state or a negative label (unlabelled / invalid) are skipped.
    """
    s = np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in as_session_list(states)])
    y = np.concatenate([np.asarray(a, dtype=np.int64).ravel() for a in as_session_list(labels)])
    if s.shape != y.shape:
        raise ValueError(f"{s.size} states for {y.size} labels")
    keep = (s >= 0) & (y >= 0)
    s, y = s[keep], y[keep]
    if s.size and (s.max() >= k or y.max() >= n_labels):
        raise ValueError(
            f"state {s.max()} or label {y.max()} out of range for k={k}, n_labels={n_labels}"
        )
    return np.bincount(s * n_labels + y, minlength=k * n_labels).reshape(k, n_labels)


def _nearest(x: np.ndarray, centroids: np.ndarray, chunk: int = _ASSIGN_CHUNK) -> np.ndarray:
    """Index of the nearest centroid for each row of ``x`` (all finite), in chunks."""
    c = np.asarray(centroids, dtype=np.float64)
    c_sq = np.einsum("ij,ij->i", c, c)
    minus_2ct = np.ascontiguousarray(c.T) * -2.0  # exact: a power-of-two scaling
    out = np.empty(x.shape[0], dtype=np.int64)
    for start in range(0, x.shape[0], chunk):
        xb = np.asarray(x[start : start + chunk], dtype=np.float64)
        # ||x - c||^2 = ||x||^2 - 2 x.c + ||c||^2; ||x||^2 is constant per row.
        d = xb @ minus_2ct
        d += c_sq
        out[start : start + chunk] = np.argmin(d, axis=1)
    return out


@dataclass(eq=False)
class Microstates:
    """Fitted, renumbered microstates.

    Attributes
    ----------
    centroids
        ``(k, H)`` float64 centroids, in the renumbered order.
    dominant_label
        ``(k,)`` int64 index into ``label_names`` of the label each state overlaps most;
        -1 when fitted without labels or when the state holds no labelled frame.
    label_names
        Names of the label indices (empty tuple without labels).
    counts
        ``(k,)`` int64 number of fitting frames in each state.
    label_counts
        ``(k, n_labels)`` int64 frames of each label in each state (fitting data).
    method
        ``"kmeans"`` or ``"minibatch"``.
    inertia
        Sum of squared distances of the fitting frames to their centroid.
    seed
        The random seed used.
    model_sha256
        Fingerprint of the model whose embedding they were fitted on
        (:func:`dbm_lightning.checkpoints.model_sha256`); ``None`` when not recorded (files
        saved before it was, or microstates fitted on plain arrays).
    """

    centroids: np.ndarray
    dominant_label: np.ndarray
    label_names: tuple[str, ...] = ()
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    label_counts: np.ndarray | None = None
    method: str = "kmeans"
    inertia: float = float("nan")
    seed: int = 0
    model_sha256: str | None = None

    def __post_init__(self) -> None:
        self.centroids = np.asarray(self.centroids, dtype=np.float64)
        if self.centroids.ndim != 2:
            raise ValueError(f"centroids must be (k, H), got shape {self.centroids.shape}")
        k = self.centroids.shape[0]
        self.dominant_label = np.asarray(self.dominant_label, dtype=np.int64)
        self.label_names = tuple(self.label_names)
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if self.counts.size == 0:
            self.counts = np.zeros(k, dtype=np.int64)
        if self.label_counts is None:
            self.label_counts = np.zeros((k, len(self.label_names)), dtype=np.int64)
        self.label_counts = np.asarray(self.label_counts, dtype=np.int64)
        if self.dominant_label.shape != (k,) or self.counts.shape != (k,):
            raise ValueError(
                f"dominant_label {self.dominant_label.shape} / counts {self.counts.shape} "
                f"do not match k={k}"
            )
        if self.label_counts.shape != (k, len(self.label_names)):
            raise ValueError(
                f"label_counts shape {self.label_counts.shape}, expected "
                f"({k}, {len(self.label_names)})"
            )

    @property
    def k(self) -> int:
        """Number of microstates."""
        return int(self.centroids.shape[0])

    @property
    def n_dims(self) -> int:
        """Embedding dimension H."""
        return int(self.centroids.shape[1])

    @property
    def overlap_percent(self) -> np.ndarray:
        """``(k, n_labels)`` % of each label within each state, on the fitting data."""
        counts = self.label_counts.astype(np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(100.0 * counts, totals, out=np.zeros_like(counts), where=totals > 0)

    def same_states(self, other: Microstates) -> bool:
        """Whether ``other`` holds the same centroids and dominant labels (the same fit)."""
        return (
            self.centroids.shape == other.centroids.shape
            and bool(np.array_equal(self.centroids, other.centroids))
            and bool(np.array_equal(self.dominant_label, other.dominant_label))
        )

    def dominant_label_names(self) -> list[str]:
        """Name of each state's dominant label (``"-"`` where there is none)."""
        return [self.label_names[i] if i >= 0 else "-" for i in self.dominant_label]

    def assign(self, embedding: np.ndarray, chunk: int = _ASSIGN_CHUNK) -> np.ndarray:
        """Nearest-centroid state of every frame: ``(T, H) -> (T,)`` int64, -1 for frames with
        a non-finite embedding. Memory is bounded by ``chunk`` rows at a time."""
        x = np.asarray(embedding)
        if x.ndim != 2 or x.shape[1] != self.n_dims:
            raise ValueError(f"embedding must be (T, {self.n_dims}), got shape {x.shape}")
        finite = np.isfinite(x).all(axis=1)
        out = np.full(x.shape[0], -1, dtype=np.int64)
        if finite.all():
            out[:] = _nearest(x, self.centroids, chunk)
        elif finite.any():
            out[finite] = _nearest(x[finite], self.centroids, chunk)
        return out

    # ---------------------------------------------------------------- persistence
    @staticmethod
    def _paths(path: str | Path) -> tuple[Path, Path]:
        p = Path(path)
        if p.suffix in (".npz", ".json"):
            p = p.with_suffix("")
        return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.npz`` (arrays) and ``<path>.json`` (names, method...); no pickle.

        ``path`` may end in ``.npz`` or ``.json`` or have no suffix. Returns the npz path.
        Each file is written atomically, the JSON last with the SHA-256 of the arrays, so an
        interrupted save is detected by :meth:`load` instead of pairing old and new halves.
        """
        npz, meta = self._paths(path)
        arrays = {
            "centroids": self.centroids,
            "dominant_label": self.dominant_label,
            "counts": self.counts,
            "label_counts": self.label_counts,
        }
        write_atomic(npz, lambda tmp: np.savez(tmp, **arrays))
        info = {
            "format_version": FORMAT_VERSION,
            "k": self.k,
            "n_dims": self.n_dims,
            "label_names": list(self.label_names),
            "method": self.method,
            "inertia": None if not np.isfinite(self.inertia) else float(self.inertia),
            "seed": int(self.seed),
            "dominant_label_names": self.dominant_label_names(),
            "model_sha256": self.model_sha256,
            "npz_sha256": file_sha256(npz),
        }
        write_json_atomic(meta, info)
        return npz

    @classmethod
    def load(cls, path: str | Path) -> Microstates:
        """Read what :meth:`save` wrote (same ``path`` convention).

        Raises
        ------
        FileNotFoundError
            When the ``.npz`` or the ``.json`` is missing.
        DataFormatError
            When either is unreadable, or they do not belong together (naming the file).
        """
        npz, meta = cls._paths(path)
        for p in (npz, meta):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: microstates file not found")
        try:
            info = json.loads(meta.read_text())
        except (UnicodeDecodeError, ValueError) as exc:
            raise DataFormatError(meta, f"not a microstates .json ({exc})") from None
        if not isinstance(info, dict):
            raise DataFormatError(meta, "not a microstates .json (no object at the top)")
        if info.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{meta}: format version {info['format_version']} is newer than "
                f"this library's ({FORMAT_VERSION})"
            )
        expected = info.get("npz_sha256")
        if expected is not None and file_sha256(npz) != expected:
            raise DataFormatError(
                npz,
                f"does not match {meta.name} (written by another or an interrupted save); "
                "fit the microstates again",
            )
        try:
            with np.load(npz, allow_pickle=False) as z:
                arrays = {name: z[name] for name in z.files}
            inertia = info.get("inertia")
            return cls(
                centroids=arrays["centroids"],
                dominant_label=arrays["dominant_label"],
                label_names=tuple(info.get("label_names", ())),
                counts=arrays["counts"],
                label_counts=arrays["label_counts"],
                method=info.get("method", "kmeans"),
                inertia=float("nan") if inertia is None else float(inertia),
                seed=int(info.get("seed", 0)),
                model_sha256=info.get("model_sha256"),
            )
        except KeyError as exc:
            raise DataFormatError(npz, f"not a microstates .npz (no {exc.args[0]!r})") from None
        except (OSError, ValueError, TypeError) as exc:
            raise DataFormatError(npz, f"not a readable microstates .npz ({exc})") from None


def assign_sessions(ms: Microstates, embeddings: Sequence[np.ndarray]) -> list[np.ndarray]:
    """:meth:`Microstates.assign` on each session's embedding."""
    return [ms.assign(e) for e in embeddings]


def fit_microstates(
    embeddings: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray] | None = None,
    label_names: Sequence[str] | None = None,
    k: int = 50,
    seed: int = 0,
    n_init: int | None = None,
    minibatch_threshold: int = 200_000,
    batch_size: int = 4096,
    max_iter: int = 300,
    model_sha256: str | None = None,
) -> Microstates:
    """k-means over all frames of all sessions, renumbered by dominant label.

    Parameters
    ----------
    embeddings
        ``(T, H)`` arrays, one per session (or one array). Frames with any non-finite value
        are ignored.
    labels
        Optional ``(T,)`` int label arrays matching ``embeddings``; -1 (unlabelled) frames
        count for the clustering but not for the dominant label.
    label_names
        Names of the label indices; defaults to ``"0", "1", ...`` when labels are given.
    k
        Number of microstates (50 in DBM).
    seed
        Random state of k-means (the result is deterministic for a seed).
    n_init
        Restarts (initialisations); the best inertia is kept. ``None``: one k-means++ start
        for full k-means (ten gave the same inertia on the default data in ten times the
        time, 14 s against 1.3 s), ten for the mini-batch path (its starts are drawn on a
        subsample and cost little).
    minibatch_threshold
        Above this many valid frames :class:`~sklearn.cluster.MiniBatchKMeans` is used.
    batch_size
        Mini-batch size of the mini-batch path.
    max_iter
        Iteration cap of the full k-means path (the mini-batch path uses sklearn's default
        number of epochs with early stopping).
    model_sha256
        Fingerprint of the model that gave ``embeddings``
        (:func:`dbm_lightning.checkpoints.model_sha256`), saved with the microstates.

    Returns
    -------
    Microstates
        States ordered by dominant label index, then frame count descending (ties: cluster
        order); without labels by frame count descending. States with no labelled frame go
        last.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if isinstance(label_names, int | np.integer):
        raise TypeError("label_names must be a sequence of names; pass k as a keyword (k=50)")
    emb_list = as_session_list(embeddings)
    if not emb_list:
        raise ValueError("no embeddings given")
    dims = {np.asarray(e).shape[1] if np.asarray(e).ndim == 2 else None for e in emb_list}
    if None in dims or len(dims) != 1:
        raise ValueError(
            f"embeddings must all be (T, H) with the same H, got {sorted(map(str, dims))}"
        )
    x_all = np.concatenate([np.asarray(e, dtype=np.float32) for e in emb_list])
    finite = np.isfinite(x_all).all(axis=1)
    x = x_all[finite] if not finite.all() else x_all
    del x_all
    n = x.shape[0]
    if n < k:
        raise ValueError(f"only {n} valid frames for k={k} microstates")

    y = None
    if labels is not None:
        lab_list = as_session_list(labels)
        if len(lab_list) != len(emb_list):
            raise ValueError(f"{len(lab_list)} label arrays for {len(emb_list)} embeddings")
        for i, (e, lab) in enumerate(zip(emb_list, lab_list, strict=True)):
            if np.asarray(lab).shape != (np.asarray(e).shape[0],):
                raise ValueError(
                    f"session {i}: labels shape {np.asarray(lab).shape} for "
                    f"{np.asarray(e).shape[0]} frames"
                )
        y = np.concatenate([np.asarray(a, dtype=np.int64) for a in lab_list])[finite]
        n_labels = int(y.max()) + 1 if y.size and y.max() >= 0 else 0
        if label_names is None:
            label_names = tuple(str(i) for i in range(n_labels))
        label_names = tuple(label_names)
        if n_labels > len(label_names):
            raise ValueError(f"label index {n_labels - 1} but only {len(label_names)} label names")
    else:
        label_names = tuple(label_names) if label_names is not None else ()

    if n <= minibatch_threshold:
        km = KMeans(n_clusters=k, n_init=n_init or 1, max_iter=max_iter, random_state=seed)
        method = "kmeans"
    else:
        km = MiniBatchKMeans(
            n_clusters=k,
            n_init=n_init or 10,
            batch_size=batch_size,
            random_state=seed,
            compute_labels=False,
        )
        method = "minibatch"
    km.fit(x)
    centers = np.asarray(km.cluster_centers_, dtype=np.float64)
    # Labels from the final centroids with the same rule as .assign, so that the counts used
    # for renumbering agree exactly with what assign() gives on the fitting data.
    raw = _nearest(x, centers)
    counts = np.bincount(raw, minlength=k)
    diff = x - centers[raw].astype(np.float32)
    inertia = float(np.einsum("ij,ij->", diff, diff, dtype=np.float64))
    del diff

    n_lab = len(label_names)
    if y is not None and n_lab:
        lab_counts = overlap_counts(raw, y, k, n_lab)
        has_label = lab_counts.sum(axis=1) > 0
        dominant = np.where(has_label, lab_counts.argmax(axis=1), -1)
    else:
        lab_counts = np.zeros((k, n_lab), dtype=np.int64)
        dominant = np.full(k, -1, dtype=np.int64)
    sort_key = np.where(dominant >= 0, dominant, n_lab)  # states without a label go last
    # np.lexsort: last key is primary; it is stable, so ties keep the cluster order.
    order = np.lexsort((-counts, sort_key))

    return Microstates(
        centroids=centers[order],
        dominant_label=dominant[order],
        label_names=label_names,
        counts=counts[order],
        label_counts=lab_counts[order],
        method=method,
        inertia=inertia,
        seed=seed,
        model_sha256=model_sha256,
    )


# --------------------------------------------------------------------------------------------
# groups of microstates (left port / centre port / right port / other)
# --------------------------------------------------------------------------------------------
