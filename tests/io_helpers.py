"""Writers of small DeepLabCut files in the real DLC layouts, for the io tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

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
