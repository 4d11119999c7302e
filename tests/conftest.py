"""Shared fixtures: paths (the repository, the real data in ../shared/data, skipped with a
reason when absent), tiny configs and factories of tiny sessions, DataModules and Trainers.

Plain helper code (DLC writers, in-memory sources, labelers) is in ``helpers.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from helpers import BlockLabeler, ListSource, grid_sessions

from dbm_lightning.data import DBMDataModule, SplitConfig
from dbm_lightning.features import FeatureConfig
from dbm_lightning.preprocess import PreprocessConfig
from dbm_lightning.session import Session

# The DBM networks are tiny: one thread is fastest and keeps the suite steady on 2 shared cores.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DBM_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

TINY_DATA = ("data.mice=2", "data.days=2", "data.frames=600", "data.window=100", "data.stride=50")


# ----------------------------------------------------------------------------- paths


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root folder (where ``benchmarks/`` and ``configs/`` are)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data_path() -> Path:
    """Where the real data is expected; it may not exist (see :func:`shared_data`)."""
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real data files, or a visible skip when this checkout has none beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set DBM_SHARED_DATA to point at it)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep every test's caches out of the user's home folder (one cache for the whole run)."""
    cache = tmp_path_factory.getbasetemp() / "dbm_cache"
    monkeypatch.setenv("DBM_LIGHTNING_CACHE", str(cache))


# ----------------------------------------------------------------------------- tiny configs


@pytest.fixture
def tiny_data() -> list[str]:
    """Hydra overrides for a tiny synthetic data set (2 mice x 2 days of 600 frames)."""
    return list(TINY_DATA)


# ----------------------------------------------------------------------------- factories


@pytest.fixture
def make_sessions() -> Callable[..., list[Session]]:
    """``make_sessions(mice=4, days=2, t=230)``: walk sessions ``m{m}_day{d}`` of mice m0..."""
    return grid_sessions


@pytest.fixture
def make_datamodule() -> Callable[..., DBMDataModule]:
    """``make_datamodule(sessions, **kwargs)``: a DBMDataModule over in-memory ``sessions``
    (block labels, distances + coordinates + pe_L=2, val mouse m1, test mouse m2, window 50,
    stride 30, batch 4); ``kwargs`` replace any of these."""

    def build(sessions: list[Session], **kwargs) -> DBMDataModule:
        args = dict(
            source=ListSource(sessions),
            labeler=BlockLabeler(),
            preprocess=PreprocessConfig(likelihood_threshold=0.6, max_gap=5),
            features=FeatureConfig(distances=True, coordinates=True, pe_L=2),
            split=SplitConfig(strategy="leave_mouse_out", val_mice=["m1"], test_mice=["m2"]),
            arena=None,
            window=50,
            stride=30,
            batch_size=4,
        )
        args.update(kwargs)
        return DBMDataModule(**args)

    return build


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., pl.Trainer]:
    """``make_trainer(logger=False, **kwargs)``: a quiet CPU Trainer rooted in ``tmp_path``."""

    def trainer(logger=False, **kwargs) -> pl.Trainer:
        defaults = dict(
            accelerator="cpu",
            devices=1,
            logger=logger,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            default_root_dir=str(tmp_path),
            log_every_n_steps=1,
        )
        defaults.update(kwargs)
        return pl.Trainer(**defaults)

    return trainer
