"""``dbm-summarise``: time budgets, bouts, transitions and group statistics per mouse, day and
condition from ``dbm-predict`` output, and pose snippets of chosen behaviours.

Examples::

    dbm-summarise predictions/                       # mouse/day/condition from manifest.csv
    dbm-summarise predictions/ --manifest study.csv --test welch --out results/summary
    dbm-summarise predictions/ --unit microstate --snippets ms03 ms07
    dbm-summarise predictions/ --pattern "{mouse}_{condition}_day{day}" --snippets all
    dbm-summarise predictions/ --video "{base}.mp4" --overlay m01_day7    # needs [video]

Writes ``time_budget.csv``/``.parquet`` (one row per session x behaviour), ``transitions.*``,
``within_day_tests.*`` and ``mixed_model.*`` (with two or more conditions), ``by_day.png``,
``transition_graph.png``, ``snippets/<behaviour>.gif``, ``trajectories.png``, ``summary.md`` and
``summarise.json`` into ``--out`` (default ``PRED_DIR/summary``). Bad input exits with status 2
and one line on stderr naming the file or option, before anything is written; nothing a
previous summary did not write is overwritten.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from dbm_lightning.errors import DataFormatError


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``dbm-summarise``."""
    p = argparse.ArgumentParser(
        prog="dbm-summarise",
        description="Summarise dbm-predict output per session, mouse, day and condition.",
    )
    p.add_argument("pred_dir", type=Path, help="a folder written by dbm-predict --out")
    p.add_argument("--out", type=Path, default=None, help="output folder (PRED_DIR/summary)")
    p.add_argument(
        "--unit",
        choices=("label", "microstate"),
        default="label",
        help="count the predicted behaviours (default) or the microstates",
    )
    p.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="CSV with path,mouse,day,condition (+ any columns) of the pose files (default: "
        "the manifest.csv beside the pose files, else the file names)",
    )
    p.add_argument(
        "--pattern",
        default=None,
        help="session-name pattern with {mouse}, {day}, {condition} (and other fields), e.g. "
        "'{mouse}_day{day}'",
    )
    p.add_argument("--fps", type=float, default=None, help="frame rate (default: dbm-predict's)")
    p.add_argument(
        "--measure",
        default="percent_time",
        help="time-budget column the statistics and by-day figure use (percent_time, bouts, "
        "mean_bout_s, median_bout_s, latency_s, ...)",
    )
    p.add_argument(
        "--test",
        choices=("mannwhitney", "welch"),
        default="mannwhitney",
        help="conditions within a day: Mann-Whitney U (default) or Welch's t",
    )
    p.add_argument(
        "--reference", default=None, help="reference condition of the mixed model (control)"
    )
    p.add_argument(
        "--snippets",
        nargs="+",
        default=[],
        metavar="NAME",
        help="behaviours (or microstates) to animate from the pose; 'all' for every one",
    )
    p.add_argument(
        "--snippet-format",
        choices=("gif", "mp4"),
        default="gif",
        help="gif (needs nothing) or mp4 (needs ffmpeg, or the video extra)",
    )
    p.add_argument(
        "--trajectories",
        action="store_true",
        help="draw the mean egocentric trajectory of every state (always with --snippets)",
    )
    p.add_argument("--snippet-bouts", type=int, default=9, help="bouts per snippet grid")
    p.add_argument(
        "--video",
        default=None,
        metavar="PATTERN",
        help="each session's recording, beside its pose file: {stem}, {base}, {name}, "
        "wildcards (e.g. '{base}.mp4' or '../videos/{base}*.avi'); for --overlay",
    )
    p.add_argument(
        "--overlay",
        nargs="+",
        default=[],
        metavar="SESSION",
        help="write labelled videos of these sessions ('all': every one): the pose and the "
        "predicted behaviour drawn on the recording (needs the video extra)",
    )
    p.add_argument("--individuals", nargs="+", default=None, metavar="NAME", help="animals to draw")
    p.add_argument("--seed", type=int, default=0, help="seed of the bouts drawn for snippets")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``dbm-summarise``; return the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)

    def fail(message: object) -> int:
        print(f"dbm-summarise: error: {message}", file=sys.stderr)
        return 2

    if args.snippet_bouts < 1:
        return fail(f"--snippet-bouts must be at least 1, got {args.snippet_bouts}")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        return fail(f"--fps must be a positive number, got {args.fps}")
    from dbm_lightning.summarise.report import summarise

    try:
        record = summarise(
            args.pred_dir,
            args.out,
            unit=args.unit,
            manifest=args.manifest,
            pattern=args.pattern,
            fps=args.fps,
            measure=args.measure,
            test=args.test,
            reference=args.reference,
            snippets=args.snippets,
            snippet_format=args.snippet_format,
            snippet_bouts=args.snippet_bouts,
            trajectories=args.trajectories,
            video=args.video,
            overlay=args.overlay,
            individuals=args.individuals,
            seed=args.seed,
        )
    except (DataFormatError, ValueError, RuntimeError, OSError) as exc:  # bad input, named
        return fail(exc)
    conditions = ", ".join(f"{c} ({n} mice)" for c, n in record["conditions"].items())
    print(
        f"{record['sessions']} sessions, {record['mice']} mice, days "
        f"{record['days'] or 'none'}, conditions {conditions or 'none'}; "
        f"{record['invalid_frames']} invalid frames left out"
    )
    if record["statistics_skipped"]:
        print(f"group statistics not computed: {record['statistics_skipped']}")
    else:
        found = record["interaction_significant"]
        print(
            f"condition x day interaction (mixed model, BH): "
            f"{', '.join(found) if found else 'none'} significant at p_bh < 0.05"
        )
    print(f"summary: {Path(record['out_dir']) / 'summary.md'}")
    return 0


def cli() -> None:
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
