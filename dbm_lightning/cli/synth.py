"""``dbm-synth``: write a synthetic operant-box dataset (DeepLabCut CSV + true labels).

Examples::

    dbm-synth --out data/synthetic                         # 8 mice x 7 days x 3,000 frames
    dbm-synth --out data/paper --frames 23000 --seed 1     # paper-scale sessions
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from dbm_lightning.session import DEFAULT_FPS
from dbm_lightning.synthetic import SyntheticConfig, mouse_names, write_dataset


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``dbm-synth``."""
    parser = argparse.ArgumentParser(
        prog="dbm-synth",
        description=(
            "Simulate mice in an operant box and write DeepLabCut CSV files "
            "({mouse}_day{day}.csv), their true behaviour ({mouse}_day{day}.labels.csv) "
            "and manifest.csv into a folder."
        ),
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument("--mice", type=int, default=8, help="number of mice (default 8)")
    parser.add_argument("--days", type=int, default=7, help="days per mouse (default 7)")
    parser.add_argument("--frames", type=int, default=3000, help="frames per session")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"frame rate (default {DEFAULT_FPS:g})"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dbm-synth``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = SyntheticConfig(
            mice=args.mice, days=args.days, frames=args.frames, seed=args.seed, fps=args.fps
        )
    except ValueError as exc:
        parser.error(str(exc))
    start = time.perf_counter()
    out = write_dataset(args.out, config)
    seconds = time.perf_counter() - start
    names = mouse_names(config.mice)
    n = config.mice * config.days
    print(
        f"wrote {n} sessions ({config.mice} mice x {config.days} days x {config.frames} frames, "
        f"seed {config.seed}) to {out} in {seconds:.1f} s:"
    )
    print(f"  {n} DeepLabCut CSV files   {names[0]}_day1.csv .. {names[-1]}_day{config.days}.csv")
    print(
        f"  {n} true-label files       {names[0]}_day1.labels.csv .. "
        f"{names[-1]}_day{config.days}.labels.csv"
    )
    print(f"  {out / 'manifest.csv'}  (path,mouse,day,condition)")
    print(f"  {out / 'synthetic_config.json'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
