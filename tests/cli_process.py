"""The project's commands (``dbm-train``, ``dbm-predict``, ...) run as real processes, without
paying the interpreter start and the 8 s import of torch + Lightning each time.

A ``multiprocessing`` fork server imports the command modules once; every command is a process
forked from it that sets its own environment, working folder, ``sys.argv`` and output files,
then calls the console script's entry point (read from the installed package's
``console_scripts``) and exits with its status: 2 for bad input, ``128 + N`` for a stop
signal, ``-N`` when killed by signal ``N``, as a process started by ``subprocess`` would. The
child is an ordinary process of its own: it can be signalled, killed, start worker processes
and leave files behind. ``tests/test_train_cli.py`` still runs the installed console script
itself once, so the entry point is covered as users start it.
"""

from __future__ import annotations

import atexit
import importlib
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from importlib.metadata import entry_points
from pathlib import Path

__all__ = ["CliProcess", "run_cli", "start_cli"]

PRELOAD = [
    "dbm_lightning.cli.train",
    "dbm_lightning.cli.predict",
    "dbm_lightning.cli.report",
    "dbm_lightning.cli.evaluate",
    "dbm_lightning.cli.plots",
    "dbm_lightning.cli.synth",
    "dbm_lightning.training",
]
_CONTEXT: multiprocessing.context.BaseContext | None = None


def _context() -> multiprocessing.context.BaseContext:
    global _CONTEXT
    if _CONTEXT is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        _CONTEXT = context
    return _CONTEXT


def _entry_point(command: str) -> str:
    for entry in entry_points(group="console_scripts"):
        if entry.name == command:
            return entry.value
    raise ValueError(f"{command} is not an installed console script")


def _main(
    entry: str,
    argv: list[str],
    env: dict[str, str],
    cwd: str | None,
    out: str,
    err: str,
    new_session: bool,
) -> None:
    """The command in this (forked) process, then exit as the console script would."""
    if new_session:
        os.setsid()
    os.environ.clear()
    os.environ.update(env)
    if cwd:
        os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - the process's own
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    module, function = entry.split(":")
    sys.argv = [argv[0], *argv[1:]]
    status = 0
    try:
        getattr(importlib.import_module(module), function)()
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            status = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except KeyboardInterrupt:
        status = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001 - reported as the interpreter would
        traceback.print_exc()
        status = 1
    # what the interpreter does at exit: threads' exit hooks (loky's executor) and joins, then
    # the atexit functions (logging, ...)
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class CliProcess:
    """A command started by :func:`start_cli`; the interface of ``subprocess.Popen`` that the
    tests use (``pid``, ``poll``, ``wait``, ``communicate``, ``send_signal``, ``kill``,
    ``returncode``), with text output."""

    def __init__(self, command: str, args: list[str], env: dict[str, str] | None, cwd, new_session):
        self._files = tempfile.TemporaryDirectory(prefix="dbm-cli-")
        self._out = Path(self._files.name) / "stdout"
        self._err = Path(self._files.name) / "stderr"
        self.args = [command, *args]
        self._process = _context().Process(
            target=_main,
            args=(
                _entry_point(command),
                self.args,
                dict(os.environ if env is None else env),
                None if cwd is None else str(cwd),
                str(self._out),
                str(self._err),
                new_session,
            ),
        )
        self._process.start()
        self.pid = self._process.pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None and not self._process.is_alive():
            self._process.join()
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.is_alive():
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self.poll()

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        self.wait(timeout)
        return self.stdout, self.stderr

    @property
    def stdout(self) -> str:
        return self._out.read_text() if self._out.is_file() else ""

    @property
    def stderr(self) -> str:
        return self._err.read_text() if self._err.is_file() else ""

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def start_cli(
    command: str,
    args: list[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    new_session: bool = False,
) -> CliProcess:
    """Start ``command args`` (an installed console script, e.g. ``"dbm-train"``)."""
    return CliProcess(command, list(args), env, cwd, new_session)


def run_cli(
    command: str,
    args: list[str],
    timeout: float = 300,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess:
    """Run ``command args`` to the end, as ``subprocess.run(..., capture_output=True,
    text=True, timeout=timeout)`` would."""
    proc = start_cli(command, args, env=env, cwd=cwd)
    started = time.monotonic()
    try:
        stdout, stderr = proc.communicate(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(30)
        raise subprocess.TimeoutExpired(proc.args, time.monotonic() - started) from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
