"""Data preparation and training throughput at the paper's scale (8 mice x 7 days x 23,000
frames, ~1.3 M frames) on this machine's CPU.

Run: ``python benchmarks/bench_training.py [--frames 23000] [--epochs 1]``. Prints the time and
peak memory of ``DBMDataModule.setup()`` (load, clean, label, features, standardise, windows)
and the training throughput (valid frames per second) of the baseline and modified DBM.
"""

from __future__ import annotations

import argparse
import resource
import time

import pytorch_lightning as pl

from dbm_lightning.data import DBMDataModule, SplitConfig, SyntheticSource
from dbm_lightning.features import FeatureConfig
from dbm_lightning.labeling import build_labeler
from dbm_lightning.models import DBMClassifier
from dbm_lightning.preprocess import ArenaBounds


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mice", type=int, default=8)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--frames", type=int, default=23000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--pe-L", type=int, default=6)
    args = parser.parse_args()

    import yaml

    from dbm_lightning.cli.config import conf_dir

    labels = yaml.safe_load((conf_dir() / "labels" / "operant_box.yaml").read_text())
    source = SyntheticSource(mice=args.mice, days=args.days, frames=args.frames, seed=0)
    t0 = time.perf_counter()
    source.load()
    size = f"{args.mice}x{args.days}x{args.frames}"
    print(f"generate + load {size}: {time.perf_counter() - t0:.1f} s")
    dm = DBMDataModule(
        source=source,
        labeler=build_labeler(labels),
        features=FeatureConfig(pe_L=args.pe_L),
        split=SplitConfig(strategy="trials", val_fraction=0.1),
        arena=ArenaBounds(0, 640, 0, 480),
    )
    t0 = time.perf_counter()
    dm.setup("fit")
    n_frames = sum(dm.summary()["frames"].values())
    print(
        f"setup (clean, label, {dm.n_features} features, standardise, windows) of {n_frames:,} "
        f"frames: {time.perf_counter() - t0:.1f} s, peak RSS {peak_rss_mib():.0f} MiB"
    )
    models = (("dbm_baseline", {}), ("dbm_modified", {"lstm_layers": 2, "dropout": 0.2}))
    for name, kwargs in models:
        module = DBMClassifier(
            net_name=name,
            net_kwargs=kwargs,
            n_features=dm.n_features,
            n_classes=dm.n_classes,
            class_names=list(dm.class_names),
        )
        trainer = pl.Trainer(
            max_epochs=args.epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
        )
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        wall = time.perf_counter() - t0
        print(
            f"{name}: {args.epochs} epoch(s) in {wall:.1f} s, "
            f"{module.train_frames_per_s:,.0f} training frames/s (in training steps), "
            f"{module.train_frames_seen / wall:,.0f} frames/s overall, "
            f"peak RSS {peak_rss_mib():.0f} MiB"
        )


if __name__ == "__main__":
    main()
