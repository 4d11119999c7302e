"""A quiet console: the third-party notices that say nothing about the run are filtered out.

Only these, each matched on its own text: Lightning's litlogger advert, its GPU / TPU / HPU
availability lines (the accelerator is in the config), its "Seed set to" line (the seed is
too), its hint to prepend ``srun`` (shown on any machine with SLURM installed; the project
launches SLURM jobs through submitit), its advice to lower ``log_every_n_steps`` (every metric
here is logged once per epoch) and PyTorch's ``LeafSpec`` deprecation warning from Lightning's
own code. Everything else, warnings included, is shown. ``verbose=true`` shows them all.
"""

from __future__ import annotations

import logging
import re
import warnings

__all__ = ["NOTICES", "quiet_third_party"]

NOTICES: tuple[str, ...] = (
    r"💡 Tip: .*litlogger",
    r"(GPU|TPU|HPU) available: ",
    r"Seed set to \d+",
    r"The `srun` command is available on your system but is not used",
    r"The number of training batches \(\d+\) is smaller than the logging interval",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    # DDP: the epoch metrics are computed from counts summed over the processes already
    r"It is recommended to use `self.log\('[^']*', \.\.\., sync_dist=True\)`",
)
"""The filtered notices (regular expressions searched in the message)."""

_PATTERN = re.compile("|".join(NOTICES))
_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "pytorch_lightning.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning_fabric.utilities.seed",
    "lightning.fabric.utilities.seed",
)


class _DropNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _PATTERN.search(record.getMessage())


_FILTER = _DropNotices()


def quiet_third_party(verbose: bool = False) -> None:
    """Filter the :data:`NOTICES` out of this process's logging and warnings (idempotent;
    ``verbose``: filter nothing)."""
    if verbose:
        return
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for notice in NOTICES:
        warnings.filterwarnings("ignore", message=f".*{notice}")
