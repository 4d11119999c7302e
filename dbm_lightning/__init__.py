"""dbm-lightning: Deep Behavior Mapping with PyTorch Lightning and Hydra.

The library works without Hydra: read sessions with :mod:`dbm_lightning.io`, clean them
with :mod:`dbm_lightning.preprocess`, label them with :mod:`dbm_lightning.labeling`, turn
them into features with :mod:`dbm_lightning.features` and serve them to Lightning with
:mod:`dbm_lightning.data`. The command-line apps in :mod:`dbm_lightning.cli` wrap it.
"""

from dbm_lightning.errors import DataFormatError
from dbm_lightning.session import Session

__all__ = ["DataFormatError", "Session"]
__version__ = "0.1.0"
