"""What ``dbm-predict`` checks before it reads a session or writes a table: the model file
(:func:`resolve_model_file`), the output folder (:func:`check_output_dir`) and that the
microstates belong to the model (:func:`choose_microstates`).

Microstates are k-means centroids in the embedding space of one model: on another model's
embedding their numbers mean nothing. They carry the fingerprint of the model they were
fitted on (``Microstates.model_sha256``, :func:`~dbm_lightning.checkpoints.model_sha256`);
for files saved without it, a run's ``microstates.npz`` is traced to the checkpoint of its
run that embeds the same microstates (``dbm-train`` and ``dbm-plots`` store them in the
checkpoint they were fitted on).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbm_lightning.analysis.microstates import Microstates
from dbm_lightning.analysis.run_microstates import CHECKPOINT_KEY, microstates_from_plain
from dbm_lightning.checkpoints import (
    NotACheckpointError,
    model_sha256,
    not_a_checkpoint,
    read_checkpoint,
)
from dbm_lightning.errors import DataFormatError
from dbm_lightning.runs import RunDir

NOT_A_MODEL = "not a dbm-train checkpoint (.ckpt) or model.joblib"


def _run_around(path: Path) -> RunDir | None:
    """The run folder holding ``path`` (``RUN/x``, ``RUN/checkpoints/x``,
    ``RUN/heldout/predictions/x``), if any."""
    for folder in list(path.parents)[:3]:
        run = RunDir(folder)
        if run.checkpoint_dir.is_dir() or run.model_file.is_file():
            return run
    return None


def _run_model(run: RunDir) -> Path | None:
    """The model file a run folder offers: ``RUN/model.joblib`` of a classic run, else its
    best (else last) checkpoint; ``None`` when it holds neither."""
    if run.model_file.is_file() and not run.checkpoint_dir.is_dir():
        return run.model_file
    try:
        return run.find_checkpoint()
    except FileNotFoundError:
        return run.model_file if run.model_file.is_file() else None


def what_to_pass(path: Path) -> str:
    """The advice after a wrong ``--ckpt``: this run's model when ``path`` lies in a run."""
    run = _run_around(path)
    found = _run_model(run) if run is not None else None
    if found is not None and found != path:
        return f"pass {found} (or the run folder {run.path})"
    return "pass RUN/checkpoints/best.ckpt or RUN/model.joblib of a dbm-train run (or RUN itself)"


def resolve_model_file(path: str | Path) -> Path:
    """The model file ``dbm-predict --ckpt`` names: a checkpoint, a ``model.joblib``, or a
    run folder (its best checkpoint, else last, else its ``model.joblib``).

    Raises
    ------
    FileNotFoundError
        When nothing is at ``path``.
    NotACheckpointError
        When it is a file of another kind (a JSON, a CSV, an empty file, an ``.npz``) or a
        folder that is no run; the message says what to pass instead.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        found = _run_model(RunDir(path))
        if found is None:
            raise NotACheckpointError(
                path,
                f"a folder, {NOT_A_MODEL}, and no run folder (no checkpoints/best.ckpt, "
                f"checkpoints/last.ckpt or model.joblib in it); {what_to_pass(path)}",
            )
        return found
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint; {what_to_pass(path)}")
    if path.suffix != ".joblib":
        kind = not_a_checkpoint(path)
        if kind is not None:
            raise NotACheckpointError(path, f"{NOT_A_MODEL} ({kind}); {what_to_pass(path)}")
    return path


def read_model_checkpoint(path: Path, read: Any = read_checkpoint) -> dict[str, Any]:
    """``read(path)`` (:func:`~dbm_lightning.checkpoints.read_checkpoint`), a file that is no
    checkpoint named with what to pass instead."""
    try:
        return read(path)
    except NotACheckpointError as exc:
        raise NotACheckpointError(
            path, f"{NOT_A_MODEL} ({exc.problem}); {what_to_pass(path)}"
        ) from None


def load_classic_model(path: Path) -> Any:
    """The classic model of a ``model.joblib``; a file that is no such pickle is named."""
    from dbm_lightning.runs import load_model

    try:
        return load_model(path)
    except (DataFormatError, FileNotFoundError):
        raise
    except Exception as exc:  # noqa: BLE001 - joblib/pickle raise anything on a foreign file
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
        raise NotACheckpointError(
            path, f"{NOT_A_MODEL} ({type(exc).__name__}: {detail}); {what_to_pass(path)}"
        ) from None


def check_output_dir(path: str | Path) -> Path:
    """``path`` as the output folder, checked before a model or session is read: an existing
    folder that can be written, or one that can be created (nothing is created here).

    Raises
    ------
    DataFormatError
        Naming ``path`` when it is a file, lies under a file, or cannot be written.
    """
    out = Path(path).expanduser()
    if out.is_symlink() and not out.exists():
        raise DataFormatError(out, "is a link to nothing; give an output folder")
    if out.exists() and not out.is_dir():
        raise DataFormatError(
            out, "is a file, not a folder; give a folder for the tables (created when missing)"
        )
    existing = out
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise DataFormatError(out, f"cannot be created: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "the folder" if existing == out else f"{existing}"
        raise DataFormatError(
            out, f"cannot be written: {where} is not writable (permissions, read-only disk)"
        )
    return out


# --------------------------------------------------------------------------------------------
# microstates and their model
# --------------------------------------------------------------------------------------------


@dataclass
class Fit:
    """The model some microstates were fitted on: its fingerprint, and its checkpoint when
    known."""

    sha256: str
    checkpoint: Path | None = None


class _Checkpoints:
    """Checkpoints read at most once each (the one being predicted with is already read)."""

    def __init__(self, ckpt: Path, checkpoint: Mapping[str, Any]) -> None:
        self._read: dict[Path, Mapping[str, Any] | None] = {ckpt.resolve(): checkpoint}

    def get(self, path: Path) -> Mapping[str, Any] | None:
        key = path.resolve()
        if key not in self._read:
            try:
                self._read[key] = read_checkpoint(path)
            except (DataFormatError, OSError):
                self._read[key] = None  # unreadable: it vouches for nothing
        return self._read[key]

    def embedded(self, path: Path) -> Microstates | None:
        """The microstates stored in checkpoint ``path``, if it has (readable) ones."""
        plain = (self.get(path) or {}).get(CHECKPOINT_KEY)
        try:
            return microstates_from_plain(plain) if plain else None
        except (KeyError, TypeError, ValueError):
            return None

    def sha256(self, path: Path) -> str:
        return model_sha256(self.get(path))


def _run_checkpoints(run: RunDir) -> list[Path]:
    """A run's best and last checkpoints (those that exist)."""
    return [c for c in (run.best_checkpoint, run.last_checkpoint) if c.is_file()]


def _fitted_on(ms: Microstates, source: Path | None, reads: _Checkpoints) -> Fit | None:
    """The model ``ms`` (read from ``source``) was fitted on: the fingerprint it records,
    else the checkpoint of its run folder that embeds the same microstates; ``None`` when
    neither tells."""
    if ms.model_sha256:
        named = None  # the checkpoint of the file's run with these weights, to name it
        if source is not None:
            named = next(
                (c for c in _run_checkpoints(RunDir(source.parent))
                 if reads.sha256(c) == ms.model_sha256),
                None,
            )  # fmt: skip
        return Fit(ms.model_sha256, named)
    if source is not None:
        for ckpt in _run_checkpoints(RunDir(source.parent)):
            stored = reads.embedded(ckpt)
            if stored is not None and stored.same_states(ms):
                return Fit(reads.sha256(ckpt), ckpt)
    return None


def _load_given(given: str | Path) -> tuple[Microstates, Path]:
    path = Path(given).expanduser()
    if path.is_dir():
        if not RunDir(path).microstates_file.is_file():
            raise DataFormatError(path, "a folder without microstates.npz; give a microstates.npz")
        path = RunDir(path).microstates_file
    if path.is_file() and path.suffix not in (".npz", ".json"):
        raise DataFormatError(
            path, "not a microstates file; give the microstates.npz written beside a run"
        )
    return Microstates.load(path), Microstates._paths(path)[0]


def choose_microstates(
    ckpt: Path,
    checkpoint: Mapping[str, Any],
    given: Microstates | str | Path | None,
    stacklevel: int = 2,
) -> tuple[Microstates | None, str | None]:
    """The microstates to assign with the model of checkpoint ``ckpt`` (read as
    ``checkpoint``), and where they come from.

    ``given`` (an object or a ``microstates.npz``) is used when it was fitted on this model,
    refused (``DataFormatError`` naming both files) when fitted on another, and used with a
    warning when it does not say. Without ``given``: the microstates stored in the
    checkpoint; else those of its run folder when fitted on these very weights; else none,
    with a warning that says why the ``microstate`` column is -1.
    """
    reads = _Checkpoints(ckpt, checkpoint)
    if given is not None:
        if isinstance(given, Microstates):
            ms, source = given, None
        else:
            ms, source = _load_given(given)
        fit = _fitted_on(ms, source, reads)
        name = str(source) if source is not None else "the microstates given"
        if fit is None:
            warnings.warn(
                f"{name}: microstates saved without the fingerprint of the model they were "
                f"fitted on (an older dbm-lightning): not checked against {ckpt}; using them",
                stacklevel=stacklevel,
            )
        elif fit.sha256 != reads.sha256(ckpt):
            where = f" ({fit.checkpoint})" if fit.checkpoint is not None else ""
            advice = [f"use them with --ckpt {fit.checkpoint}"] if fit.checkpoint else []
            if reads.embedded(ckpt) is not None:
                advice.append(f"leave out --microstates to use {ckpt.name}'s own")
            else:
                advice.append("fit this model's with `dbm-plots RUN`")
            raise DataFormatError(
                source,
                f"microstates fitted on another model{where}, not on {ckpt}: their numbers "
                f"mean nothing on this model's embedding; {', or '.join(advice)}",
            )
        return ms, name
    stored = reads.embedded(ckpt)
    if stored is not None:
        return stored, str(ckpt)

    # none stored: those of its run (fitted on best.ckpt), if fitted on these very weights
    candidates: list[tuple[Microstates, Fit, Path]] = []
    if ckpt.parent.name == RunDir.CHECKPOINTS:
        run = RunDir(ckpt.parent.parent)
        for c in _run_checkpoints(run):
            ms = reads.embedded(c)
            if ms is not None:
                candidates.append((ms, Fit(reads.sha256(c), c), c))
        if run.microstates_file.is_file():
            try:
                ms = Microstates.load(run.microstates_file)
            except (DataFormatError, OSError):
                ms = None
            if ms is not None and not any(ms.same_states(m) for m, _, _ in candidates):
                fit = _fitted_on(ms, run.microstates_file, reads)
                if fit is not None:
                    candidates.append((ms, fit, run.microstates_file))
    for ms, fit, where in candidates:
        if fit.sha256 == reads.sha256(ckpt):
            return ms, str(where)  # e.g. last.ckpt holding best.ckpt's weights
    if candidates:
        _, fit, where = candidates[0]
        on = fit.checkpoint.name if fit.checkpoint is not None else f"another model ({where})"
        use = f"; use --ckpt {fit.checkpoint}" if fit.checkpoint is not None else ""
        warnings.warn(
            f"{ckpt}: microstates were fitted on {on}; {ckpt.name} has none (other weights): "
            f"the microstate column is -1{use}",
            stacklevel=stacklevel,
        )
        return None, None
    warnings.warn(
        f"{ckpt}: the checkpoint holds no microstates (fit them with `dbm-plots RUN_DIR`); "
        "the microstate column is -1",
        stacklevel=stacklevel,
    )
    return None, None
