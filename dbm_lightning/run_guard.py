"""What a run may do to its output folder, decided before it writes anything there.

- :class:`RunLock`: an exclusive ``fcntl`` lock on ``RUN/.lock`` for the whole run, so a
  second live run into the same folder is refused; the kernel drops it when the process
  dies, however it dies, so a killed run never leaves a stale lock.
- :func:`claim_folder`: what the folder holds (:func:`folder_state`) against what was asked:
  a folder without a run's results (new, or a run that failed before training) is used; a
  finished run is refused (one :class:`~dbm_lightning.errors.RunFolderError` line) unless
  resumed (``ckpt_path=last``) or replaced (``overwrite=true``), and a sweep's job skips it
  when its configuration is the same; an interrupted run (checkpoints, no metrics) of the
  same configuration is resumed from ``last.ckpt`` (the same command again), one of another
  configuration refused.
- :func:`start_over`: the earlier outcome is cleared only once the new run has set up its
  data and checked its settings, the moment before it trains.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any

from dbm_lightning.errors import RunFolderError
from dbm_lightning.runs import RunDir

__all__ = ["Action", "FolderState", "RunLock", "claim_folder", "folder_state", "start_over"]

LOCK_FILE = ".lock"

IGNORED_DIFFERENCES = (
    "ckpt_path",
    "overwrite",
    "trainer.enable_progress_bar",
    "verbose",
)
"""Keys that may differ between a sweep job and the finished run it skips or resumes."""

PRODUCT_ONLY = ("microstates.enabled",)
"""Keys that change what a run makes beside its model, not the model: a finished run is the
same run whatever they say (``dbm-plots`` fits the microstates of any run)."""


class FolderState(str, Enum):
    """What an output folder holds."""

    NEW = "new"  # nothing of a run's results (perhaps Hydra's files, a config, a failure)
    FINISHED = "finished"  # a complete metrics.json
    INTERRUPTED = "interrupted"  # checkpoints or a model file, but no metrics.json


class Action(str, Enum):
    """What the run does with its folder."""

    START = "start"
    RESUME = "resume"
    SKIP = "skip"


class RunLock:
    """An exclusive lock on ``RUN/.lock`` held while the run lives (``with RunLock(run):``).

    The file names the holder (host, pid); a second process is refused with a
    :class:`~dbm_lightning.errors.RunFolderError` that names it."""

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self.path = run.path / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            self.run.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunFolderError(
                self.run.path, f"cannot write in this folder ({exc.strerror or exc})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunFolderError(
                self.run.path,
                f"another run is writing into this folder ({holder}); wait for it to end or "
                "choose another output folder",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def folder_state(run: RunDir) -> FolderState:
    """Whether ``run`` holds a finished run (a readable ``metrics.json``), an interrupted one
    (checkpoints or a model file without it), or nothing a run has to protect."""
    if run.read_metrics_or_none() is not None:
        return FolderState.FINISHED
    if run.model_file.is_file() or any(run.checkpoint_dir.glob("*.ckpt")):
        return FolderState.INTERRUPTED
    return FolderState.NEW


def _flat(cfg: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flat(value, f"{name}.")
        else:
            yield name, value


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The dotted keys whose values differ between two resolved run configs (the keys of
    :data:`IGNORED_DIFFERENCES`, :data:`PRODUCT_ONLY` and ``hydra`` aside)."""
    a, b = dict(_flat(old)), dict(_flat(new))
    keys = sorted(set(a) | set(b))
    return [
        k
        for k in keys
        if a.get(k) != b.get(k)
        and not k.startswith("hydra.")
        and not any(k == i or k.startswith(f"{i}.") for i in IGNORED_DIFFERENCES)
        and k not in PRODUCT_ONLY
    ]


def _completed(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """A recorded config with today's defaults filled in (a run written before a key
    existed is compared on what it meant), or as it is when it no longer validates."""
    from dbm_lightning.config_check import plain_config, validate_config

    try:
        return validate_config(plain_config(dict(cfg)))
    except Exception:  # noqa: BLE001 - an old config the schema refuses: compare it raw
        return cfg


def _same_config(run: RunDir, cfg: Mapping[str, Any], state: FolderState) -> None:
    """Refuse to skip or resume a run whose folder holds a run of another configuration."""
    import yaml  # PyYAML comes with omegaconf

    if not run.config_file.is_file():
        return  # nothing recorded to compare with (a run stopped before writing config.yaml)
    old = yaml.safe_load(run.config_file.read_text()) or {}  # the run's own, not Hydra's
    differ = config_differences(_completed(old), cfg)
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        raise RunFolderError(
            run.path,
            f"holds {'an' if state.value[0] in 'aeiou' else 'a'} {state.value} run of another "
            f"configuration (differs in {shown}); "
            "use another output folder, or add overwrite=true to replace it",
        )


def claim_folder(run: RunDir, cfg: Mapping[str, Any], sweep: bool = False) -> Action:
    """What this run does with its folder, before it writes anything there.

    ``cfg`` is the validated run config (``ckpt_path``, ``overwrite``); ``sweep``: the run is
    one job of a sweep, where a finished run of the same configuration is skipped (and
    ``ckpt_path=last`` resumes only the jobs that have a checkpoint). An interrupted run of
    the same configuration is resumed (the same command again); an explicit
    ``ckpt_path=last`` outside a sweep resumes whatever the folder holds (e.g. with more
    epochs). Raises :class:`~dbm_lightning.errors.RunFolderError` when the folder holds a
    finished run (outside a sweep and without ``ckpt_path=last``) or, to be skipped or
    resumed implicitly, a run of another configuration.
    """
    state = folder_state(run)
    resuming = str(cfg.get("ckpt_path") or "") == RunDir.LAST
    if cfg.get("overwrite"):
        return Action.RESUME if resuming else Action.START
    if state is FolderState.NEW:
        return Action.START if sweep or not resuming else Action.RESUME
    if resuming and not sweep:
        return Action.RESUME
    if state is FolderState.FINISHED and not sweep:
        raise RunFolderError(
            run.path,
            f"holds a finished run ({RunDir.METRICS}); choose another output folder, resume it "
            "with ckpt_path=last, or add overwrite=true to replace it",
        )
    _same_config(run, cfg, state)
    if state is FolderState.FINISHED:
        return Action.SKIP
    return Action.RESUME if run.last_checkpoint.is_file() else Action.START


def start_over(run: RunDir, action: Action, overwrite: bool) -> None:
    """Clear the earlier outcome (``metrics.json``, ``failed.json``) of the folder: the new
    run has set up its data and passed its checks and is about to train; keep a copy of
    Hydra's overrides as the run's own. The earlier run's products go too, so nothing of it
    is mixed with the new run's (checkpoints, model files, microstates, TensorBoard events,
    held-out tables, figures): with ``overwrite`` (and not resuming), and always when the
    folder held no results (a run that failed before its first checkpoint)."""
    fresh = folder_state(run) is FolderState.NEW
    run.clear_outcome()
    run.keep_overrides()
    if action is Action.RESUME or not (overwrite or fresh):
        return
    for path in run.products():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
