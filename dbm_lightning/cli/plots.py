"""``dbm-plots RUN_DIR``: every figure of a training run (label and microstate rasters,
% label per microstate, head position by microstate, occupancy grid, share of time in
microstate groups per mouse and day, transition matrix, validation confusion matrix) as PNG in
``RUN_DIR/figures`` and in the run's TensorBoard log. Fits the microstates (k-means on the
LSTM embedding of all sessions) unless the checkpoint already holds them for the same k, and
stores them in the run directory and the checkpoint for ``dbm-predict``. Prints a progress
line per step and figure on stderr, then the files written, one per line, on stdout."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from dbm_lightning.errors import DataFormatError


def main(argv: list[str] | None = None) -> int:
    """Run ``dbm-plots``; return the exit status (0 ok, 2 bad input)."""
    p = argparse.ArgumentParser(prog="dbm-plots", description=__doc__)
    p.add_argument("run_dir", type=Path, help="a dbm-train output directory")
    p.add_argument("--out", type=Path, default=None, help="folder for the PNGs (RUN_DIR/figures)")
    p.add_argument("--k", type=int, default=50, help="number of microstates (default 50)")
    p.add_argument("--seed", type=int, default=0, help="k-means seed")
    p.add_argument("--refit", action="store_true", help="refit the microstates even if stored")
    p.add_argument("--no-tensorboard", action="store_true", help="PNG files only")
    args = p.parse_args(argv)
    if args.k < 2:
        print("dbm-plots: error: --k must be >= 2", file=sys.stderr)
        return 2
    start = time.monotonic()

    def progress(msg: str) -> None:
        print(f"dbm-plots [{time.monotonic() - start:5.1f} s] {msg}", file=sys.stderr, flush=True)

    progress("loading torch, Lightning and the model code")
    from dbm_lightning.analysis.figures import make_run_figures

    try:
        paths = make_run_figures(
            args.run_dir,
            args.out,
            k=args.k,
            seed=args.seed,
            refit=args.refit,
            tensorboard=not args.no_tensorboard,
            progress=progress,
        )
    except (DataFormatError, FileNotFoundError, ValueError) as exc:
        print(f"dbm-plots: error: {exc}", file=sys.stderr)
        return 2
    progress(f"done: {len(paths)} files written")
    for path in paths:
        print(path)
    return 0


def cli() -> None:
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
