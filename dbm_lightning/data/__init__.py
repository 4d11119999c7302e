"""From sessions to training batches: windows, splits, sources, the per-session pipeline and
the LightningDataModule (one module each)."""

from dbm_lightning.data.datamodule import DBMDataModule, EpochShuffleSampler
from dbm_lightning.data.pipeline import PreparedSession, prepare_session
from dbm_lightning.data.sources import (
    SOURCES,
    DataSource,
    DBMMatSource,
    DLCFolderSource,
    SyntheticSource,
)
from dbm_lightning.data.splits import (
    SPLITS,
    STRATEGIES,
    SplitConfig,
    SplitLeakError,
    check_split,
    kfold_mouse_groups,
    split_sessions,
)
from dbm_lightning.data.windows import (
    LoaderConfig,
    WindowBatch,
    WindowDataset,
    make_windows,
    window_starts,
)
from dbm_lightning.session import DEFAULT_FPS

__all__ = [
    "DEFAULT_FPS",
    "SOURCES",
    "SPLITS",
    "STRATEGIES",
    "DBMDataModule",
    "DBMMatSource",
    "DLCFolderSource",
    "DataSource",
    "EpochShuffleSampler",
    "LoaderConfig",
    "PreparedSession",
    "SplitConfig",
    "SplitLeakError",
    "SyntheticSource",
    "WindowBatch",
    "WindowDataset",
    "check_split",
    "kfold_mouse_groups",
    "make_windows",
    "prepare_session",
    "split_sessions",
    "window_starts",
]
