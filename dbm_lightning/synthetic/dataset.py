"""Synthetic datasets on disk: DeepLabCut CSV (single- or multi-animal) and true-label files,
the manifest, and a cache folder keyed on the configuration (:func:`ensure_dataset`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from dbm_lightning.io.cache import cache_root as _cache_root
from dbm_lightning.io.csv_writer import csv_bytes
from dbm_lightning.synthetic.model import (
    BODYPARTS,
    GENERATOR_VERSION,
    SCORER,
    TRUE_BEHAVIOURS,
    SyntheticConfig,
    condition_of,
    config_dict,
)
from dbm_lightning.synthetic.sessions import session_data, session_ids


def write_dlc_csv(
    path: str | Path,
    pose: np.ndarray,
    likelihood: np.ndarray,
    bodyparts: tuple[str, ...] = BODYPARTS,
    scorer: str = SCORER,
    individuals: Sequence[str] | None = None,
) -> None:
    """Write a single-animal DeepLabCut CSV (header rows ``scorer``, ``bodyparts``,
    ``coords``; first column the frame index; x, y with 3 decimals, likelihood with 4).

    With ``individuals``, a multi-animal (maDLC) CSV: header rows ``scorer``, ``individuals``,
    ``bodyparts``, ``coords``; ``pose`` then holds ``len(individuals) x len(bodyparts)`` parts,
    individual-major (every part of the first individual, then of the second, ...), and the
    columns follow that order, x, y, likelihood per part.
    """
    t, p, _ = pose.shape
    n_ind = len(individuals) if individuals else 1
    if p != n_ind * len(bodyparts):
        raise ValueError(
            f"pose has {p} parts, expected {n_ind} individual(s) x {len(bodyparts)} body parts"
        )
    header = [",".join(["scorer"] + [scorer] * (3 * p))]
    if individuals:
        per_individual = 3 * len(bodyparts)
        header.append(
            ",".join(["individuals"] + [i for i in individuals for _ in range(per_individual)])
        )
    header += [
        ",".join(["bodyparts"] + [b for _ in range(n_ind) for b in bodyparts for _ in range(3)]),
        ",".join(["coords"] + ["x", "y", "likelihood"] * p),
    ]
    columns: dict[str, np.ndarray] = {"frame": np.arange(t)}
    places: dict[str, int] = {}
    for i in range(p):
        for coord, values, decimals in (
            ("x", pose[:, i, 0], 3),
            ("y", pose[:, i, 1], 3),
            ("likelihood", likelihood[:, i], 4),
        ):
            columns[f"{i}_{coord}"] = np.asarray(values, dtype=np.float64)
            places[f"{i}_{coord}"] = decimals
    body = csv_bytes(columns, decimals=places, line_end="\n", header=False)
    Path(path).write_bytes("\n".join(header).encode() + b"\n" + body)


def _write_labels(path: Path, labels: np.ndarray, names: Sequence[str] = TRUE_BEHAVIOURS) -> None:
    """``frame,label`` with the true behaviour's name of every frame."""
    columns = {
        "frame": np.arange(len(labels)),
        "label": pd.Categorical.from_codes(labels, categories=list(names)),
    }
    Path(path).write_bytes(csv_bytes(columns, line_end="\n"))


def write_dataset(out_dir: str | Path, config: SyntheticConfig | None = None) -> Path:
    """Write every session of ``config`` into ``out_dir`` and return it.

    Files: ``{mouse}_day{day}.csv`` (DeepLabCut CSV, scorer ``DLC_synthetic``; with two
    animals ``{pair}_day{day}.csv``, multi-animal, individuals ``a`` and ``b``),
    ``{mouse}_day{day}.labels.csv`` (``frame,label`` with the true behaviour names),
    ``manifest.csv`` (``path,mouse,day,condition``, paths relative to ``out_dir``, plus an
    ``fps`` column, each session's frame rate, with a domain shift or two animals) and
    ``synthetic_config.json`` (the configuration and generator version); with a domain shift
    also ``domain_shift.json`` (each mouse's :meth:`~DomainShift.to_dict`).
    """
    config = config or SyntheticConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with_fps = config.domain_shift > 0 or config.animals > 1
    manifest = ["path,mouse,day,condition" + (",fps" if with_fps else "")]
    shifts = {}
    for mi, mouse in enumerate(session_ids(config)):
        condition = condition_of(mi, config.mice)
        for day in range(1, config.days + 1):
            data = session_data(config, mi, day)
            stem = f"{mouse}_day{day}"
            write_dlc_csv(
                out / f"{stem}.csv",
                data.pose,
                data.likelihood,
                data.parts,
                individuals=data.individuals or None,
            )
            _write_labels(out / f"{stem}.labels.csv", data.labels, data.label_names)
            row = f"{stem}.csv,{mouse},{day},{condition}"
            manifest.append(row + (f",{data.fps!r}" if with_fps else ""))
        if config.domain_shift > 0:
            shifts[mouse] = data.shift.to_dict(data.fps)
    (out / "synthetic_config.json").write_text(
        json.dumps({"generator_version": GENERATOR_VERSION, **config_dict(config)}, indent=2) + "\n"
    )
    if shifts:
        (out / "domain_shift.json").write_text(json.dumps(shifts, indent=2) + "\n")
    # The manifest last: its presence marks a complete dataset.
    (out / "manifest.csv").write_text("\n".join(manifest) + "\n")
    return out


def config_key(config: SyntheticConfig) -> str:
    """Short hash of the configuration and the generator version (the cache folder name)."""
    payload = json.dumps({"v": GENERATOR_VERSION, **config_dict(config)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def ensure_dataset(
    config: SyntheticConfig | None = None, cache_root: str | Path | None = None
) -> Path:
    """The folder of the dataset of ``config``, generated on first use.

    The folder is ``<cache_root>/synthetic/<key>`` (``cache_root`` defaults to
    :func:`dbm_lightning.io.cache.cache_root`, i.e. ``$DBM_LIGHTNING_CACHE`` or
    ``~/.cache/dbm_lightning``; ``key`` = :func:`config_key`). It is written into a temporary
    sibling and renamed into place, so an interrupted run never leaves a partial dataset; a
    later call finds it and returns at once.
    """
    config = config or SyntheticConfig()
    base = (Path(cache_root).expanduser() if cache_root else _cache_root()) / "synthetic"
    target = base / config_key(config)
    if (target / "manifest.csv").is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        write_dataset(tmp, config)
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "manifest.csv").is_file():  # not a concurrent winner: a real error
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
