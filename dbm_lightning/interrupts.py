"""Stopping a run from outside: SIGTERM (``kill``, ``docker stop``, a scheduler) and SIGINT
(Ctrl-C) become :class:`RunInterrupted`, so the run ends with ``failed.json`` and a non-zero
exit status (128 + the signal's number, as a shell reports it) instead of Lightning's
"graceful" exit 0; ``checkpoints/last.ckpt`` holds the latest finished epoch and
``ckpt_path=last`` resumes from it.

:func:`exit_with_parent` makes a sweep's worker process stop the same way when the process
that launched it dies (a joblib worker outlives a SIGKILLed parent otherwise).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["RunInterrupted", "exit_with_parent", "ignore_stop_signals", "stop_on_signals"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

_reason: dict[str, str] = {}
_watching = threading.Event()


class RunInterrupted(BaseException):
    """The run was stopped by a signal. A ``BaseException`` (like ``KeyboardInterrupt``), so
    no ``except Exception`` on the way swallows it."""

    def __init__(self, signum: int, reason: str | None = None) -> None:
        self.signum = int(signum)
        self.reason = reason
        name = signal.Signals(self.signum).name
        super().__init__(f"stopped by {name}" + (f": {reason}" if reason else ""))

    @property
    def orphaned(self) -> bool:
        """Whether the signal came from :func:`exit_with_parent` (the launcher is gone)."""
        return self.reason is not None

    @property
    def exit_status(self) -> int:
        """``128 + signal number`` (SIGTERM 143, SIGINT 130)."""
        return 128 + self.signum

    def __reduce__(self) -> tuple:
        return (type(self), (self.signum, self.reason))


_installed_by: dict[str, int] = {}


def _raise(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _installed_by.get("pid"):  # a forked child (a DataLoader worker)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    ignore_stop_signals()  # a second signal during the clean-up does not cut it short
    raise RunInterrupted(signum, _reason.pop("reason", None))


def ignore_stop_signals() -> None:
    """Ignore SIGTERM and SIGINT from now on (while a stopped run writes its record)."""
    if threading.current_thread() is threading.main_thread():
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`RunInterrupted` in the main thread
    (a no-op outside the main thread, where Python cannot take signals); the earlier
    handlers come back afterwards. Lightning adds its own SIGTERM handler during ``fit`` and
    calls this one after it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    _installed_by["pid"] = os.getpid()
    for s in STOP_SIGNALS:
        signal.signal(s, _raise)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def exit_with_parent(poll_s: float = 1.0, grace_s: float = 60.0) -> None:
    """Watch the parent process from a daemon thread; when it is gone (this process was
    re-parented), send this process SIGTERM, which :func:`stop_on_signals` turns into
    :class:`RunInterrupted`; a process still alive ``grace_s`` later (stuck in C code) exits
    with status 143. Started once per process."""
    if _watching.is_set():
        return
    _watching.set()
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        _reason["reason"] = f"the process that launched this job (pid {parent}) is gone"
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(grace_s)
        os._exit(128 + signal.SIGTERM)

    threading.Thread(target=watch, name="dbm-exit-with-parent", daemon=True).start()
