"""Where the Hydra configs live, and composing them from Python (tests, notebooks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CONF_ENV = "DBM_LIGHTNING_CONF"


def conf_dir() -> Path:
    """The ``conf/`` folder: ``$DBM_LIGHTNING_CONF`` if set, else the repository's ``conf/``."""
    env = os.environ.get(CONF_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "conf"
    if not (path / "train.yaml").is_file():
        raise FileNotFoundError(
            f"{path}: no train.yaml here; install the package in editable mode from its "
            f"repository (pip install -e .) or point {CONF_ENV} at the conf/ folder"
        )
    return path


def compose_config(overrides: list[str] | None = None, config_name: str = "train") -> Any:
    """The composed config (an OmegaConf ``DictConfig``) for ``overrides``, as ``dbm-train``
    would see it (without the ``hydra`` node)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(
            config_name=config_name, overrides=overrides or [], return_hydra_config=False
        )
