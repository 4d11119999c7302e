"""``dbm-train``: train a DBM model; a thin Hydra wrapper over
:func:`dbm_lightning.training.run_training`.

Examples::

    dbm-train                                        # baseline on the built-in synthetic data
    dbm-train model=dbm_modified features.pe_L=6     # modified DBM + positional encoding
    dbm-train data=dbm_mat data.path=DBM_sample_data.mat
    dbm-train data=dlc data.path=/path/to/dlc_folder
    dbm-train -m features.pe_L=0,2,4 seed=0,1,2      # a sweep; compare in TensorBoard
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig
from omegaconf.errors import MissingMandatoryValue

from dbm_lightning.cli.config import composition_problems, conf_dir
from dbm_lightning.errors import ConfigError, DataFormatError
from dbm_lightning.runs import RunDir

log = logging.getLogger("dbm-train")

USER_ERRORS = (ConfigError, DataFormatError, MissingMandatoryValue, FileNotFoundError)
"""Errors caused by the input or the command line rather than by the code."""


def _user_message(exc: Exception) -> str:
    """What to tell the user about ``exc``, with the fix when it is a missing setting."""
    if isinstance(exc, MissingMandatoryValue):
        key = getattr(exc, "full_key", None) or "a required value"
        return f"{key} is required, e.g. dbm-train {key}=... (the config marks it ???)"
    return str(exc)


def train_from_hydra(cfg: DictConfig) -> float:
    """Run one training job in Hydra's output directory; return the best validation accuracy
    (the value an optimising sweeper maximises)."""
    from dbm_lightning.training import run_training

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        metrics = run_training(cfg, output_dir)
    except Exception as exc:
        # A failed run leaves its reason beside its config; the other runs of a sweep go on.
        RunDir(output_dir).write_failure(exc)
        if hydra_cfg.mode == RunMode.RUN and isinstance(exc, USER_ERRORS):
            # bad input or a missing setting: one clear line, no traceback
            print(f"dbm-train: {_user_message(exc)}", file=sys.stderr)
            raise SystemExit(2) from None
        raise
    log.info("metrics: %s", RunDir(output_dir).metrics_file)
    if metrics.get("tensorboard_dir"):
        print(
            f"TensorBoard logs: {metrics['tensorboard_dir']}\n  tensorboard --logdir {output_dir}"
        )
    return float(metrics["val_best"]["acc"])


def main() -> None:
    """Console entry point: what Hydra would refuse on the command line (an unknown option or
    key, a wrong type) is reported first, every mistake on one line, exit status 2."""
    problems = composition_problems(sys.argv[1:])
    if problems:
        text = "; ".join(f"{key}: {problem}" for key, problem in problems)
        print(f"dbm-train: {text}", file=sys.stderr)
        raise SystemExit(2)
    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(
        train_from_hydra
    )
    app()


if __name__ == "__main__":
    main()
