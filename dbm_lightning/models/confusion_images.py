"""Confusion-matrix images in TensorBoard, drawn in a thread beside the training.

Drawing one (matplotlib, about 0.3 s on one core) in the training loop would stop it; torch
releases the interpreter lock while it trains, so one thread per process draws them while the
next epoch runs. :meth:`ConfusionImages.wait` returns once every image is written (call it
before the loggers close).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from dbm_lightning.analysis.plots import confusion_matrix_figure

__all__ = ["ConfusionImages"]

_THREAD: ThreadPoolExecutor | None = None


def _thread() -> ThreadPoolExecutor:
    """The one thread that draws this process's images (each figure is its own Agg canvas)."""
    global _THREAD
    if _THREAD is None:
        _THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbm-figures")
    return _THREAD


class ConfusionImages:
    """The images a module has asked for and not yet seen written."""

    def __init__(self) -> None:
        self._jobs: list[Future] = []

    def draw(
        self,
        loggers: Sequence[Any],
        tag: str,
        confusion: np.ndarray,
        class_names: Sequence[str],
        title: str,
        step: int,
    ) -> None:
        """Draw ``confusion`` (rows = true class) as image ``tag`` at ``step`` on every
        TensorBoard logger of ``loggers`` (``logger.experiment.add_figure``)."""
        if not loggers:
            return
        names = list(class_names)

        def draw() -> None:
            for logger in loggers:
                fig = confusion_matrix_figure(confusion, names, title=title)
                logger.experiment.add_figure(tag, fig, global_step=step, close=True)

        self._jobs.append(_thread().submit(draw))

    def wait(self) -> None:
        """Return once every image asked for is written (re-raising a drawing error)."""
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.result()
