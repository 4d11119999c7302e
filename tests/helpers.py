"""Plain helpers shared by the tests (no fixtures here: those live in ``conftest.py``).

* DeepLabCut writers in the real DLC layouts, for the io tests;
* tiny in-memory sessions, a source and labelers, for the data, egocentric, augmentation
  and inference tests;
* the random tensors of the model tests.

Test modules import from here; this module imports no test module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, TensorDataset

from dbm_lightning.io import LoadResult
from dbm_lightning.session import Session

# ------------------------------------------------------------------ DeepLabCut files

SCORER = "DLC_resnet50_testMar1shuffle1_1000"


def dlc_frame(
    pose: np.ndarray,
    likelihood: np.ndarray,
    bodyparts: list[str],
    individuals: list[str] | None = None,
    scorer: str = SCORER,
) -> pd.DataFrame:
    """DataFrame with DLC's MultiIndex columns.

    ``pose`` is (T, P, 2) single-animal or (T, I, P, 2) multi-animal (then ``individuals``).
    """
    t = pose.shape[0]
    if individuals is None:
        pose, likelihood, inds = pose[:, None], likelihood[:, None], [None]
    else:
        inds = individuals
    cols, data = [], []
    for i, ind in enumerate(inds):
        for p, part in enumerate(bodyparts):
            for coord, values in (
                ("x", pose[:, i, p, 0]),
                ("y", pose[:, i, p, 1]),
                ("likelihood", likelihood[:, i, p]),
            ):
                cols.append((scorer, part, coord) if ind is None else (scorer, ind, part, coord))
                data.append(values)
    names = ["scorer", "bodyparts", "coords"]
    if individuals is not None:
        names.insert(1, "individuals")
    columns = pd.MultiIndex.from_tuples(cols, names=names)
    return pd.DataFrame(np.stack(data, axis=1).reshape(t, -1), columns=columns)


def write_dlc_csv(path: Path, df: pd.DataFrame) -> Path:
    """Write ``df`` exactly as DeepLabCut does (header rows, then ``frame,values...``)."""
    df.to_csv(path)
    return path


def write_dlc_h5(path: Path, df: pd.DataFrame, key: str = "df_with_missing") -> Path:
    """Write ``df`` as DeepLabCut does (PyTables table)."""
    df.to_hdf(path, key=key, format="table", mode="w")
    return path


def random_pose(
    t: int = 20, parts: int = 3, seed: int = 0, individuals: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Random pose/likelihood arrays ((T,[I,]P,2), (T,[I,]P))."""
    rng = np.random.default_rng(seed)
    shape = (t, parts) if individuals is None else (t, individuals, parts)
    return rng.uniform(0, 500, shape + (2,)), rng.uniform(0, 1, shape)


# ------------------------------------------------------------------ in-memory sessions

PARTS = ("head", "nose", "left_ear", "right_ear", "body_centre", "tail_base")


def walk_session(
    name: str,
    t: int,
    seed: int,
    mouse: str | None = None,
    day: int | None = None,
    fps: float = 30.0,
    long_gap: bool = False,
) -> Session:
    """A random walk of 6 parts around a centre, likelihoods mostly high (a few short
    dropouts; with ``long_gap``, part 2 also missing for 12 frames from ``t // 3``)."""
    rng = np.random.default_rng(seed)
    centre = np.cumsum(rng.normal(0, 3, (t, 2)), axis=0) + [320, 240]
    offsets = rng.normal(0, 15, (1, len(PARTS), 2))
    pose = centre[:, None, :] + offsets + rng.normal(0, 1, (t, len(PARTS), 2))
    lik = rng.uniform(0.7, 1.0, (t, len(PARTS)))
    lik[rng.random((t, len(PARTS))) < 0.02] = 0.1  # short dropouts (interpolated)
    if long_gap:
        lik[t // 3 : t // 3 + 12, 2] = 0.0  # one long gap: invalid frames
    return Session(
        pose=pose,
        likelihood=lik,
        bodyparts=PARTS,
        name=name,
        mouse=mouse,
        day=day,
        fps=fps,
        source=Path(f"/nowhere/{name}.csv"),
    )


def grid_sessions(mice: int = 4, days: int = 2, t: int = 230) -> list[Session]:
    """``mice`` x ``days`` walk sessions named ``m{m}_day{d}`` (mouse m's are 17*m longer)."""
    out = []
    for m in range(mice):
        for d in range(days):
            out.append(walk_session(f"m{m}_day{d + 1}", t + 17 * m, 10 * m + d, f"m{m}", d + 1))
    return out


@dataclass
class ListSource:
    """A source of in-memory sessions that counts its loads."""

    sessions: list
    skipped: list | None = None
    calls: int = 0

    def load(self, cache_dir=None) -> LoadResult:
        self.calls += 1
        return LoadResult(sessions=list(self.sessions), skipped=list(self.skipped or []))


@dataclass
class BlockLabeler:
    """Labels in blocks of 25 frames cycling through 3 classes."""

    label_names: tuple = ("a", "b", "c")

    def label(self, session: Session) -> Session:
        lab = (np.arange(session.n_frames) // 25) % 3
        return session.with_labels(lab, self.label_names)


@dataclass
class StepLabeler:
    """Labels in blocks of 20 frames cycling through 3 classes."""

    label_names: tuple = ("a", "b", "c")

    def label(self, session: Session) -> Session:
        return session.with_labels((np.arange(session.n_frames) // 20) % 3, self.label_names)


# ------------------------------------------------------------------ model tensors

F_IN, C = 6, 4
CLASS_NAMES = ["rest", "locomotion", "left_port", "other"]


def random_loaders(n: int = 16, w: int = 12, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Seeded random (n, w, F_IN) windows with C classes, the first 2 frames unlabelled."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, w, F_IN, generator=g)
    y = torch.randint(0, C, (n, w), generator=g)
    y[:, :2] = -1  # missing / unlabelled frames
    train = DataLoader(TensorDataset(x, y), batch_size=4, shuffle=True)
    val = DataLoader(TensorDataset(x[:8], y[:8]), batch_size=4)
    return train, val


TINY_DATA = [
    "data.mice=3",
    "data.days=1",
    "data.frames=400",
    "data.window=100",
    "data.stride=50",
]
"""dbm-train overrides of a tiny synthetic data set: 3 sessions of 400 frames."""
