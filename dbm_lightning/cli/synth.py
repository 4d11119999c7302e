"""``dbm-synth``: write a synthetic operant-box dataset (DeepLabCut CSV + true labels).

Examples::

    dbm-synth --out data/synthetic                         # 8 mice x 7 days x 3,000 frames
    dbm-synth --out data/paper --frames 23000 --seed 1     # paper-scale sessions
    dbm-synth --out data/shifted --domain-shift 1          # every mouse its own camera, fps, ..
    dbm-synth --out data/pairs --animals 2                 # 8 pairs, multi-animal DLC CSV
    dbm-synth --out data/paper --frames 23000 --steady grooming   # grooming never changes
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from dbm_lightning.session import DEFAULT_FPS
from dbm_lightning.synthetic import INDIVIDUALS, SyntheticConfig, session_ids, write_dataset


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``dbm-synth``."""
    parser = argparse.ArgumentParser(
        prog="dbm-synth",
        description=(
            "Simulate mice in an operant box and write DeepLabCut CSV files "
            "({mouse}_day{day}.csv), their true behaviour ({mouse}_day{day}.labels.csv) "
            "and manifest.csv into a folder. With --animals 2, pairs of mice "
            "({pair}_day{day}.csv, multi-animal CSV, individuals a and b) labelled with pair "
            "behaviours (apart, approach, follow, contact)."
        ),
    )
    parser.add_argument("--out", required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--mice", type=int, default=8, help="number of mice, or of pairs with --animals 2"
    )
    parser.add_argument("--days", type=int, default=7, help="days per mouse (default 7)")
    parser.add_argument("--frames", type=int, default=3000, help="frames per session")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"frame rate (default {DEFAULT_FPS:g})"
    )
    parser.add_argument(
        "--animals", type=int, default=1, help="animals per session: 1 (default) or 2 (pairs)"
    )
    parser.add_argument(
        "--domain-shift",
        type=float,
        default=0.0,
        help="per-mouse body size, camera, frame rate and noise shift in [0, 1] (default 0)",
    )
    parser.add_argument(
        "--landmarks",
        action="store_true",
        help="also track the three ports as fixed points (left_port, centre_port, right_port)",
    )
    parser.add_argument(
        "--swap-rate",
        type=float,
        default=0.0,
        help="identity swaps per 1,000 frames with --animals 2 (default 0)",
    )
    parser.add_argument(
        "--steady",
        nargs="+",
        default=[],
        metavar="BEHAVIOUR",
        help="behaviours whose share stays as on day 1 in every mouse (a negative control for "
        "group statistics; e.g. grooming), one animal only",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dbm-synth``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = SyntheticConfig(
            mice=args.mice,
            days=args.days,
            frames=args.frames,
            seed=args.seed,
            fps=args.fps,
            animals=args.animals,
            domain_shift=args.domain_shift,
            swap_rate=args.swap_rate,
            landmarks=args.landmarks,
            steady=tuple(args.steady),
        )
    except ValueError as exc:
        parser.error(str(exc))
    from dbm_lightning.errors import DataFormatError
    from dbm_lightning.prediction.guards import check_output_dir

    try:
        check_output_dir(args.out)
    except DataFormatError as exc:
        parser.error(f"--out {exc}")
    start = time.perf_counter()
    out = write_dataset(args.out, config)
    seconds = time.perf_counter() - start
    names = session_ids(config)
    n = config.mice * config.days
    pairs = config.animals == 2
    who = f"{config.mice} pairs" if pairs else f"{config.mice} mice"
    print(
        f"wrote {n} sessions ({who} x {config.days} days x {config.frames} frames, "
        f"seed {config.seed}) to {out} in {seconds:.1f} s:"
    )
    kind = f"multi-animal DeepLabCut CSV files (individuals {', '.join(INDIVIDUALS)})"
    print(
        f"  {n} {kind if pairs else 'DeepLabCut CSV files  '} "
        f"{names[0]}_day1.csv .. {names[-1]}_day{config.days}.csv"
    )
    print(
        f"  {n} true-label files       {names[0]}_day1.labels.csv .. "
        f"{names[-1]}_day{config.days}.labels.csv"
        + ("  (apart, approach, follow, contact)" if pairs else "")
    )
    with_fps = config.domain_shift > 0 or pairs
    print(f"  {out / 'manifest.csv'}  (path,mouse,day,condition{',fps' if with_fps else ''})")
    print(f"  {out / 'synthetic_config.json'}")
    if config.domain_shift > 0:
        shifts = json.loads((out / "domain_shift.json").read_text())
        rates = sorted({s["fps"] for s in shifts.values()})
        scales = [s["camera_scale"] for s in shifts.values()]
        print(
            f"  {out / 'domain_shift.json'}  (domain shift {config.domain_shift:g}: frame rates "
            f"{', '.join(f'{r:g}' for r in rates)} fps; camera scale "
            f"x{min(scales):.2f}..{max(scales):.2f})"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
