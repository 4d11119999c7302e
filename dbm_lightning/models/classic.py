"""The classic baseline: scikit-learn trees on engineered per-frame features.

What users of B-SOiD, A-SOiD or SimBA would otherwise run: a random forest (or gradient
boosting) on each frame's features plus rolling-window statistics of them. ``dbm-train
model=random_forest`` (or ``model=gradient_boosting``) trains it on the same sessions, split
and standardised features as the deep models, evaluates it on the same frames with the same
metric code (:func:`dbm_lightning.models.metrics.named_frame_metrics`) and writes the same
``metrics.json`` and TensorBoard layout, so ``dbm-report`` and TensorBoard put deep and classic
runs side by side (``dbm-train -m model=dbm_baseline,random_forest seed=0,1,2``).

- :func:`rolling_features`: a session's features ``(T, F)`` plus their centred rolling mean and
  standard deviation over each window -> ``(T, F * (1 + 2 * len(windows)))``;
  :func:`rolling_feature_names` names the columns.
- :data:`CLASSIC_MODELS`: ``model.name`` -> wrapper class; the constructor's arguments are the
  ``model`` config keys (the config schema is built from the signature).
- :class:`ClassicPredictor`: a fitted model behind the interface every trained model offers
  prediction (``hparams`` with the pipeline state and class names, ``predict_session``).
- :func:`evaluate_sessions`: the per-frame metrics of a fitted model on prepared sessions.

:func:`dbm_lightning.training.run_training` fits and evaluates it (the one runner of both model
families) and saves it in the run folder as ``model.joblib``.

The classic arm is fitted in one go: the ``optim``, ``loss``, ``trainer``, ``callbacks``,
``microstates`` and ``augment`` groups are ignored (class weighting is ``model.class_weight``;
pose augmentation applies to the deep models' training batches only), and ``ckpt_path`` is
refused. ``data.window``/``stride`` only shape the deep models' windows: the classic model sees
whole sessions. ``test_after_fit`` and ``logger`` are honoured.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from dbm_lightning.data import PreparedSession

__all__ = [
    "CLASSIC_MODELS",
    "ClassicModel",
    "GradientBoostingModel",
    "MajorityModel",
    "RandomForestModel",
    "ClassicPredictor",
    "build_classic",
    "evaluate_sessions",
    "load_classic",
    "rolling_feature_names",
    "rolling_features",
]

DEFAULT_WINDOWS = (5, 15, 45)
"""Rolling windows in frames (1/6, 1/2 and 1.5 s at 30 fps)."""

PREDICT_CHUNK = 65_536
"""Frames per block when a long session is featurised and predicted (bounds memory)."""

LOSS_EPS = 1e-7
"""Probabilities are clipped to ``[LOSS_EPS, 1]`` for the log loss (trees predict hard 0)."""


# --------------------------------------------------------------------------- features


def _check_windows(windows: Sequence[int]) -> tuple[int, ...]:
    ok = all(
        isinstance(w, int | np.integer) and not isinstance(w, bool) and w >= 1 for w in windows
    )
    if not ok:
        raise ValueError(f"rolling windows must be positive integers, got {list(windows)}")
    return tuple(int(w) for w in windows)


def _bounds(n: int, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges ``[lo, hi)`` of the centred window of every frame, clipped to the session
    (pandas' ``rolling(window, center=True, min_periods=1)``: ``window // 2`` frames before,
    ``(window - 1) // 2`` after)."""
    t = np.arange(n)
    lo = np.maximum(t - window // 2, 0)
    hi = np.minimum(t + (window - 1) // 2 + 1, n)
    return lo, hi


def rolling_features(
    features: np.ndarray,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """A session's per-frame features plus their centred rolling mean and standard deviation.

    Parameters
    ----------
    features
        ``(T, F)`` features of one session, frames in order.
    windows
        Window lengths in frames. Each window is centred on its frame (``w // 2`` frames before,
        ``(w - 1) // 2`` after, as pandas' ``rolling(w, center=True)``) and shrinks at the
        session's edges: the statistics are over the frames that exist.
    valid
        Optional ``(T,)`` bool: frames to leave out of the statistics (missing pose). Frames
        with a non-finite feature are left out too. A left-out frame's own columns are 0 (the
        data module's value for invalid frames); a window without any frame left gives 0.

    Returns
    -------
    ``(T, F * (1 + 2 * len(windows)))`` float32: the features, then for each window the means
    of all features and their standard deviations (population, ``ddof=0``), in the order of
    :func:`rolling_feature_names`. Computed from cumulative sums (float64), no loop over frames.
    """
    windows = _check_windows(windows)
    x = np.asarray(features)
    if x.ndim != 2:
        raise ValueError(f"features must be (T, F), got shape {x.shape}")
    n, f = x.shape
    ok = np.isfinite(x).all(axis=1)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.shape != (n,):
            raise ValueError(f"valid must have shape ({n},), got {valid.shape}")
        ok &= valid
    all_ok = bool(ok.all())
    x = x.astype(np.float64, copy=True)
    if not all_ok:
        x[~ok] = 0.0
    out = np.empty((n, f * (1 + 2 * len(windows))), dtype=np.float32)
    out[:, :f] = x
    if n == 0 or not windows:
        return out
    # centred on the session mean: smaller cumulative sums, less cancellation in the variance
    centre = x[ok].mean(axis=0) if ok.any() else np.zeros(f)
    xc = x - centre
    if not all_ok:
        xc[~ok] = 0.0
    zero = np.zeros((1, f))
    c1 = np.concatenate([zero, np.cumsum(xc, axis=0)])
    c2 = np.concatenate([zero, np.cumsum(xc * xc, axis=0)])
    cn = None if all_ok else np.concatenate([[0], np.cumsum(ok)])
    for i, w in enumerate(windows):
        lo, hi = _bounds(n, w)
        count = (hi - lo if cn is None else cn[hi] - cn[lo]).astype(np.float64)[:, None]
        safe = np.maximum(count, 1.0)
        mean = (c1[hi] - c1[lo]) / safe
        var = np.maximum((c2[hi] - c2[lo]) / safe - mean * mean, 0.0)
        var[(count <= 1)[:, 0]] = 0.0  # exactly 0 for one frame, not rounding noise
        start = f * (1 + 2 * i)
        out[:, start : start + f] = np.where(count > 0, mean + centre, 0.0)
        out[:, start + f : start + 2 * f] = np.sqrt(var)
    return out


def rolling_feature_names(names: Sequence[str], windows: Sequence[int] = DEFAULT_WINDOWS) -> list:
    """Column names of :func:`rolling_features`: ``names``, then per window ``<name>_mean<w>``
    for every feature and ``<name>_std<w>`` for every feature."""
    names = [str(n) for n in names]
    out = list(names)
    for w in _check_windows(windows):
        out += [f"{n}_mean{w}" for n in names]
        out += [f"{n}_std{w}" for n in names]
    return out


def rolling_blocks(
    features: np.ndarray,
    windows: Sequence[int],
    valid: np.ndarray | None,
    chunk: int | None = PREDICT_CHUNK,
) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block)`` pairs covering :func:`rolling_features` of a session in blocks of
    ``chunk`` frames, each computed with enough context that it equals the whole-session
    result up to float rounding (``None``: one block)."""
    n = len(features)
    margin = max(windows, default=0) // 2 + 1
    step = n if chunk is None else max(int(chunk), 1)
    for start in range(0, max(n, 1), max(step, 1)):
        stop = min(start + step, n)
        lo, hi = max(start - margin, 0), min(stop + margin, n)
        block = rolling_features(features[lo:hi], windows, None if valid is None else valid[lo:hi])
        yield start, block[start - lo : stop - lo]


# --------------------------------------------------------------------------- models


class ClassicModel:
    """A scikit-learn classifier on :func:`rolling_features` of a run's per-frame features.

    Subclasses give the estimator (:meth:`make_estimator`); their constructor's arguments are
    the ``model`` config keys. After :meth:`fit`: ``estimator_``, ``classes_`` (the class
    indices seen in training), ``n_classes``, ``class_names``, ``n_input_features``,
    ``feature_names_`` (engineered), ``train_frames_`` and ``fit_time_s_``; the runner
    also stores ``pipeline_state`` (``DBMDataModule.pipeline_state()``, so new sessions can be
    prepared as for a checkpoint) and ``run_config``.
    """

    name: ClassVar[str] = ""

    def __init__(
        self,
        class_weight: str | None = None,
        rolling_windows: Sequence[int] = DEFAULT_WINDOWS,
        max_train_frames: int | None = 100_000,
        n_jobs: int | None = 1,
    ) -> None:
        if class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be null or 'balanced', got {class_weight!r}")
        if max_train_frames is not None and int(max_train_frames) < 1:
            raise ValueError(f"max_train_frames must be >= 1 or null, got {max_train_frames}")
        self.class_weight = class_weight
        self.rolling_windows = _check_windows(rolling_windows)
        self.max_train_frames = None if max_train_frames is None else int(max_train_frames)
        self.n_jobs = n_jobs
        self.estimator_: Any = None
        self.pipeline_state: dict[str, Any] | None = None
        self.run_config: dict[str, Any] | None = None

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to ``path`` (joblib, compressed; atomically)."""
        import joblib

        from dbm_lightning.atomic import write_atomic

        return write_atomic(Path(path), lambda tmp: joblib.dump(self, tmp, compress=3))

    # -- subclass API

    def make_estimator(self, seed: int) -> Any:
        """The unfitted scikit-learn estimator (``random_state = seed``)."""
        raise NotImplementedError

    def hparams(self) -> dict[str, Any]:
        """The constructor arguments (the ``model`` config keys but ``name``)."""
        import inspect

        out = {}
        for key in inspect.signature(type(self).__init__).parameters:
            if key != "self":
                value = getattr(self, key)
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    # -- features

    def transform(self, features: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """:func:`rolling_features` with this model's windows."""
        return rolling_features(features, self.rolling_windows, valid)

    # -- fit / predict

    def fit(
        self,
        sessions: Sequence[PreparedSession],
        n_classes: int,
        class_names: Sequence[str] | None = None,
        feature_names: Sequence[str] | None = None,
        seed: int = 0,
    ) -> ClassicModel:
        """Fit on the labelled frames (label >= 0) of ``sessions`` (full sessions: the rolling
        statistics see their neighbours), a seeded random subsample of ``max_train_frames`` of
        them when there are more."""
        if not sessions:
            raise ValueError("no training sessions to fit the classic model on")
        n_input = int(sessions[0].features.shape[1])
        counts = np.array([int((s.labels >= 0).sum()) for s in sessions], dtype=np.int64)
        total = int(counts.sum())
        if total == 0:
            raise ValueError("the training sessions have no labelled frame")
        rng = np.random.default_rng(seed)
        keep = total if self.max_train_frames is None else min(total, self.max_train_frames)
        chosen = np.sort(rng.choice(total, keep, replace=False)) if keep < total else None
        width = n_input * (1 + 2 * len(self.rolling_windows))
        X = np.empty((keep, width), dtype=np.float32)
        y = np.empty(keep, dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        row = 0
        for s, first, last in zip(sessions, offsets[:-1], offsets[1:], strict=True):
            if chosen is None:
                pick = np.arange(last - first)
            else:
                pick = chosen[np.searchsorted(chosen, first) : np.searchsorted(chosen, last)]
                pick = pick - first
            if not len(pick):
                continue
            frames = np.flatnonzero(s.labels >= 0)[pick]  # frame indices, sorted
            for start, block in rolling_blocks(s.features, self.rolling_windows, s.valid):
                sel = frames[(frames >= start) & (frames < start + len(block))]
                X[row : row + len(sel)] = block[sel - start]
                y[row : row + len(sel)] = s.labels[sel]
                row += len(sel)
        assert row == keep
        self.n_classes = int(n_classes)
        self.class_names = (
            [str(c) for c in class_names]
            if class_names is not None
            else [f"class_{i}" for i in range(self.n_classes)]
        )
        self.n_input_features = n_input
        self.feature_names_ = rolling_feature_names(
            feature_names if feature_names is not None else [f"f{i}" for i in range(n_input)],
            self.rolling_windows,
        )
        estimator = self.make_estimator(seed)
        started = time.perf_counter()
        with self._threads():
            estimator.fit(X, y)
        self.fit_time_s_ = time.perf_counter() - started
        self.estimator_ = estimator
        self.classes_ = np.asarray(estimator.classes_, dtype=np.int64)
        self.train_frames_ = keep
        self.seed_ = int(seed)
        return self

    def _threads(self) -> Any:
        """A context limiting OpenMP threads to ``n_jobs`` (histogram gradient boosting)."""
        from contextlib import nullcontext

        return nullcontext()

    def predict_proba(
        self, features: np.ndarray, valid: np.ndarray | None = None, chunk: int | None = None
    ) -> np.ndarray:
        """Class probabilities ``(T, n_classes)`` (float32) of every frame of one session
        (``features`` ``(T, n_input_features)``, whole session in frame order), computed in
        blocks of ``chunk`` frames (default :data:`PREDICT_CHUNK`; the same result up to float
        rounding of the rolling statistics)."""
        if self.estimator_ is None:
            raise RuntimeError("fit the model first")
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_input_features:
            raise ValueError(f"features must be (T, {self.n_input_features}), got {x.shape}")
        out = np.zeros((len(x), self.n_classes), dtype=np.float32)
        if len(x) == 0:
            return out
        with self._threads():
            for start, block in rolling_blocks(
                x, self.rolling_windows, valid, chunk or PREDICT_CHUNK
            ):
                out[start : start + len(block), self.classes_] = self.estimator_.predict_proba(
                    block
                )
        return out

    def predict(
        self, features: np.ndarray, valid: np.ndarray | None = None, chunk: int | None = None
    ) -> np.ndarray:
        """The most probable class index ``(T,)`` int64 of every frame of one session."""
        return self.predict_proba(features, valid, chunk).argmax(axis=1).astype(np.int64)


class RandomForestModel(ClassicModel):
    """``sklearn.ensemble.RandomForestClassifier`` on rolling features (``model=random_forest``).

    ``n_estimators``, ``max_depth``, ``min_samples_leaf``, ``max_features``, ``class_weight``
    (``None`` | ``"balanced"``) and ``n_jobs`` go to scikit-learn; ``rolling_windows`` (frames)
    and ``max_train_frames`` (``None`` = all labelled training frames) to :class:`ClassicModel`.
    """

    name = "random_forest"

    def __init__(
        self,
        n_estimators: int = 100,
        max_depth: int | None = None,
        min_samples_leaf: int = 2,
        max_features: str | float | int | None = "sqrt",
        class_weight: str | None = None,
        rolling_windows: Sequence[int] = DEFAULT_WINDOWS,
        max_train_frames: int | None = 100_000,
        n_jobs: int | None = 1,
    ) -> None:
        super().__init__(class_weight, rolling_windows, max_train_frames, n_jobs)
        self.n_estimators = int(n_estimators)
        self.max_depth = None if max_depth is None else int(max_depth)
        self.min_samples_leaf = int(min_samples_leaf)
        self.max_features = max_features

    def make_estimator(self, seed: int) -> Any:
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            class_weight=self.class_weight,
            n_jobs=self.n_jobs,
            random_state=int(seed),
        )


class GradientBoostingModel(ClassicModel):
    """``sklearn.ensemble.HistGradientBoostingClassifier`` on rolling features
    (``model=gradient_boosting``), without early stopping (every run fits ``max_iter``
    boosting rounds on all its training frames; the validation split stays for evaluation).

    ``max_iter``, ``learning_rate``, ``max_leaf_nodes``, ``min_samples_leaf``,
    ``l2_regularization`` and ``class_weight`` go to scikit-learn; ``n_jobs`` caps its OpenMP
    threads (``-1``/``None``: no cap).
    """

    name = "gradient_boosting"

    def __init__(
        self,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int | None = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        class_weight: str | None = None,
        rolling_windows: Sequence[int] = DEFAULT_WINDOWS,
        max_train_frames: int | None = 100_000,
        n_jobs: int | None = 1,
    ) -> None:
        super().__init__(class_weight, rolling_windows, max_train_frames, n_jobs)
        self.max_iter = int(max_iter)
        self.learning_rate = float(learning_rate)
        self.max_leaf_nodes = None if max_leaf_nodes is None else int(max_leaf_nodes)
        self.min_samples_leaf = int(min_samples_leaf)
        self.l2_regularization = float(l2_regularization)

    def make_estimator(self, seed: int) -> Any:
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            class_weight=self.class_weight,
            early_stopping=False,
            random_state=int(seed),
        )

    def _threads(self) -> Any:
        from threadpoolctl import threadpool_limits

        limit = None if self.n_jobs in (None, -1) else int(self.n_jobs)
        return threadpool_limits(limits=limit, user_api="openmp")


class MajorityModel(ClassicModel):
    """The floor every model must beat: the most frequent class of the training frames on
    every frame (``sklearn.dummy.DummyClassifier``, ``model=majority``). Its macro F1 and
    balanced accuracy show what a score worth nothing looks like on this data."""

    name = "majority"

    def __init__(self, max_train_frames: int | None = None) -> None:
        super().__init__(None, (1,), max_train_frames, 1)  # the features are not used

    def make_estimator(self, seed: int) -> Any:
        from sklearn.dummy import DummyClassifier

        return DummyClassifier(strategy="most_frequent")


CLASSIC_MODELS: dict[str, type[ClassicModel]] = {
    "random_forest": RandomForestModel,
    "gradient_boosting": GradientBoostingModel,
    "majority": MajorityModel,
}
"""``model.name`` -> classic model class (its constructor's arguments are the config keys)."""


def build_classic(model_cfg: Mapping[str, Any]) -> ClassicModel:
    """The classic model of a ``model`` config group (``name`` plus constructor arguments)."""
    cfg = dict(model_cfg)
    name = cfg.pop("name")
    if name not in CLASSIC_MODELS:
        raise ValueError(f"unknown classic model {name!r}; known: {', '.join(CLASSIC_MODELS)}")
    return CLASSIC_MODELS[name](**cfg)


def load_classic(path: str | Path) -> ClassicModel:
    """A fitted classic model saved by a classic run (its ``model.joblib``).

    The file is a pickle (joblib): loading it runs code it names. Only load files you made
    yourself or trust.
    """
    import joblib

    model = joblib.load(Path(path))
    if not isinstance(model, ClassicModel):
        raise TypeError(f"{path}: not a classic dbm-lightning model ({type(model).__name__})")
    return model


def evaluate_sessions(
    model: ClassicModel, sessions: Sequence[PreparedSession], stage: str
) -> tuple[dict[str, float], np.ndarray | None]:
    """Per-frame metrics of ``model`` on ``sessions``' labelled frames, named and computed as
    the deep runs' (``<stage>/loss``, ``acc``, ``balanced_acc``, ``macro_f1``,
    ``f1/<class>``), and the confusion counts (rows = true class); ``({}, None)`` when no frame
    is labelled. The loss is the mean negative log-probability of the true class
    (probabilities clipped at :data:`LOSS_EPS`), unweighted."""
    import torch

    from dbm_lightning.models.metrics import named_frame_metrics

    c = model.n_classes
    confusion = np.zeros(c * c, dtype=np.int64)
    nll, frames = 0.0, 0
    for s in sessions:
        mask = s.labels >= 0
        if not mask.any():
            continue
        probs = model.predict_proba(s.features, s.valid)
        target = s.labels[mask]
        pred = probs[mask].argmax(axis=1)
        confusion += np.bincount(target * c + pred, minlength=c * c)
        p_true = probs[mask][np.arange(len(target)), target].astype(np.float64)
        nll -= float(np.log(np.clip(p_true, LOSS_EPS, 1.0)).sum())
        frames += len(target)
    if frames == 0:
        return {}, None
    cm = confusion.reshape(c, c)
    named = named_frame_metrics(torch.from_numpy(cm), model.class_names)
    out = {f"{stage}/loss": nll / frames, **{f"{stage}/{k}": v for k, v in named.items()}}
    return out, cm


class ClassicPredictor:
    """A fitted classic model behind the interface prediction and the run folder use for every
    trained model: ``hparams`` with the pipeline state and class names, and
    ``predict_session(features, valid) -> (probs (T, C), embedding (T, 0))``. A forest has no
    per-frame embedding, so its predictions carry no microstates.

    ``model.joblib`` is a pickle: loading it runs code it names. Only load your own runs.
    """

    def __init__(self, model: ClassicModel) -> None:
        if not model.pipeline_state:
            raise ValueError("the classic model has no pipeline_state (train it with dbm-train)")
        self.model = model
        self.hparams = {
            "pipeline_state": dict(model.pipeline_state),
            "class_names": list(model.class_names),
        }

    def predict_session(
        self, features: np.ndarray, valid: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities of every frame and an empty ``(T, 0)`` embedding."""
        probs = self.model.predict_proba(features, valid)
        return probs, np.zeros((len(probs), 0), dtype=np.float32)
