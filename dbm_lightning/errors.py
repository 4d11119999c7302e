"""Errors raised for bad input: each names the file and what is wrong with it."""

from __future__ import annotations

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
