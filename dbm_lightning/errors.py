"""Errors raised for bad input: a file (:class:`DataFormatError`) or a config key
(:class:`ConfigError`), each named with what is wrong with it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class DataFormatError(ValueError):
    """A file could not be read as the expected format.

    The message always starts with the file's path, then says what is wrong, so that a user
    with dozens of sessions knows which file to look at.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = str(self.path) if self.path is not None else "<in memory>"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple:
        # picklable, so a launcher running the job in another process can hand it back
        return (type(self), (self.path, self.problem))


class ConfigError(ValueError):
    """A configuration mistake; the message starts with the dotted key.

    ``key`` and ``problem`` are those of the first mistake, ``problems`` lists all of them
    (``(key, problem)`` pairs, in config order); the message joins them with ``"; "``.
    """

    def __init__(self, key: str, problem: str, more: Sequence[tuple[str, str]] = ()) -> None:
        self.key = key
        self.problem = problem
        self.problems = [(key, problem), *more]
        super().__init__("; ".join(f"{k}: {p}" for k, p in self.problems))

    def __reduce__(self) -> tuple:
        # picklable, so a launcher running the job in another process (joblib, submitit)
        # can hand the error back
        return (type(self), (self.key, self.problem, self.problems[1:]))


class RunFolderError(ValueError):
    """A run folder this run may not use: it holds another run's results, or another live run
    holds its lock. The message starts with the folder's path and says what to do instead."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.problem))
