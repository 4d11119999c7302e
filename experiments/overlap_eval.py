"""How much overlapping-window inference changes a trained model's held-out scores.

Usage: ``python experiments/overlap_eval.py RUN_DIR [RUN_DIR ...] [--strides 200 100 50]``

For each run, rebuilds its data module from the run's config, loads ``checkpoints/best.ckpt``
and scores the validation and test sessions with
``DBMClassifier.predict_session(features, window=W, stride=S)`` for every stride ``S`` (``W`` =
the training window; ``S = W`` tiles the windows). Prints one markdown row per run and stride:
per-frame accuracy and macro F1 over the labelled frames, and the same on the frames within 10
% of a window length of a tiled window's edge (the frames that tiling predicts without context
on one side).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from dbm_lightning.build import build_datamodule
from dbm_lightning.models.metrics import metrics_from_confusion
from dbm_lightning.runs import RunDir, load_model


def _scores(labels: np.ndarray, pred: np.ndarray, n_classes: int) -> tuple[float, float]:
    keep = labels >= 0
    codes = labels[keep] * n_classes + pred[keep]
    confusion = np.bincount(codes, minlength=n_classes * n_classes).reshape(n_classes, -1)
    m = metrics_from_confusion(torch.from_numpy(confusion))
    return 100 * float(m["acc"]), 100 * float(m["macro_f1"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--strides", nargs="+", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| run | stride | acc (%) | macro F1 (%) | acc near tiled edges (%) |")
    print("|---|---|---|---|---|")
    for run in args.runs:
        dm = build_datamodule(RunDir(run).read_config())
        dm.setup()
        module = load_model(run / "checkpoints" / "best.ckpt")
        window = dm.window
        strides = args.strides or [window, window // 2, window // 4]
        sessions = dm.predict_sessions(split="val") + dm.predict_sessions(split="test")
        margin = max(1, window // 10)
        for stride in strides:
            labels, preds, edge = [], [], []
            for s in sessions:
                probs, _ = module.predict_session(s.features, window=window, stride=stride)
                pos = np.arange(len(s.labels)) % window
                labels.append(s.labels)
                preds.append(probs.argmax(axis=1))
                edge.append((pos < margin) | (pos >= window - margin))
            y, p, e = np.concatenate(labels), np.concatenate(preds), np.concatenate(edge)
            acc, f1 = _scores(y, p, dm.n_classes)
            edge_acc, _ = _scores(np.where(e, y, -1), p, dm.n_classes)
            name = f"{run.parent.name}/{run.name.split('_')[0]}"
            print(f"| {name} | {stride} | {acc:.2f} | {f1:.2f} | {edge_acc:.2f} |")


if __name__ == "__main__":
    main()
