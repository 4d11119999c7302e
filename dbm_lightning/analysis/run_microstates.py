"""The microstates of a trained run: fitted on the model's per-frame embedding over the run's
sessions (:func:`extract_run_microstates`), saved beside the run and inside its checkpoint so
that ``dbm-predict`` finds them (:func:`embed_microstates_in_checkpoint`,
:func:`load_microstates_from_checkpoint`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dbm_lightning.analysis.microstates import Microstates, fit_microstates
from dbm_lightning.atomic import write_atomic
from dbm_lightning.checkpoints import model_sha256, read_checkpoint
from dbm_lightning.models.inference import run_model
from dbm_lightning.runs import RunDir

CHECKPOINT_KEY = "dbm_microstates"
"""Key of the microstates inside a checkpoint file (plain lists, no numpy pickles)."""
CKPT_FORMAT_VERSION = 1


def microstates_to_plain(ms: Microstates) -> dict[str, Any]:
    """JSON-like dict of plain lists (loadable with ``torch.load(weights_only=True)``)."""
    return {
        "format_version": CKPT_FORMAT_VERSION,
        "centroids": ms.centroids.tolist(),
        "dominant_label": ms.dominant_label.tolist(),
        "label_names": list(ms.label_names),
        "counts": ms.counts.tolist(),
        "label_counts": ms.label_counts.tolist(),
        "method": ms.method,
        "inertia": float(ms.inertia) if np.isfinite(ms.inertia) else None,
        "seed": int(ms.seed),
    }


def microstates_from_plain(d: dict[str, Any]) -> Microstates:
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
    ckpt[CHECKPOINT_KEY] = microstates_to_plain(ms)
    return write_atomic(path, lambda tmp: torch.save(ckpt, tmp))


def load_microstates_from_checkpoint(ckpt_path: str | Path) -> Microstates | None:
    """The microstates stored in a checkpoint by :func:`embed_microstates_in_checkpoint`,
    or ``None`` when it holds none."""

    d = read_checkpoint(ckpt_path).get(CHECKPOINT_KEY)
    return microstates_from_plain(d) if d else None


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
        k-means settings (:func:`dbm_lightning.analysis.microstates.fit_microstates`); the labels
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
        p, e = run_model(module, f)
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
            model_sha256=model_sha256(module) if hasattr(module, "state_dict") else None,
        )
        if run_dir is not None:
            npz = microstates.save(RunDir(run_dir).microstates_stem)
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
