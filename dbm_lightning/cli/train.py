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
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from dbm_lightning.cli.config import conf_dir
from dbm_lightning.runs import write_failure

log = logging.getLogger("dbm-train")


def train_from_hydra(cfg: DictConfig) -> float:
    """Run one training job in Hydra's output directory; return the best validation accuracy
    (the value an optimising sweeper maximises)."""
    from dbm_lightning.training import run_training

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        metrics = run_training(cfg, output_dir)
    except Exception as exc:
        # A failed run leaves its reason beside its config; the other runs of a sweep go on.
        write_failure(output_dir, exc)
        raise
    log.info("metrics: %s", output_dir / "metrics.json")
    if metrics.get("tensorboard_dir"):
        print(
            f"TensorBoard logs: {metrics['tensorboard_dir']}\n  tensorboard --logdir {output_dir}"
        )
    return float(metrics["val_best"]["acc"])


def main() -> None:
    """Console entry point."""
    app = hydra.main(version_base="1.3", config_path=str(conf_dir()), config_name="train")(
        train_from_hydra
    )
    app()


if __name__ == "__main__":
    main()
