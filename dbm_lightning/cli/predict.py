"""``dbm-predict``: per-frame behaviour, probabilities and microstates of new DeepLabCut files.

Examples::

    dbm-predict --ckpt outputs/train/RUN/checkpoints/best.ckpt --input videos/ --out predictions/
    dbm-predict --ckpt best.ckpt --input m01_day3DLC_resnet50.h5 --out pred --smoothing 15 \\
        --min-bout 10 --format parquet

Writes ``<session>.frames.csv`` (frame, label, prob_<class>..., microstate, valid) and
``<session>.bouts.csv`` (label, start, end, duration_frames, duration_s) per session, and
``summary.json``. Bad input (a ``--ckpt`` that is no model, an ``--out`` that cannot be
written, ``--microstates`` of another model, unreadable sessions) exits with status 2 and one
line on stderr naming the file, before anything is written.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from dbm_lightning.cli import parse_renames
from dbm_lightning.errors import DataFormatError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(
        prog="dbm-predict",
        description="Predict behaviour frame by frame with a trained DBM checkpoint.",
    )
    p.add_argument(
        "--ckpt",
        type=Path,
        required=True,
        help="checkpoint (.ckpt) of a run, model.joblib of a classic-arm run (a pickle: only "
        "your own), or a run folder (its best checkpoint, else its model.joblib)",
    )
    p.add_argument(
        "--input", type=Path, required=True, help="a DeepLabCut .csv/.h5 file or a folder of them"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="table format")
    p.add_argument(
        "--smoothing",
        type=int,
        default=None,
        metavar="N",
        help="centred moving average of the probabilities over N frames (0: none; default: "
        "what the run chose on validation)",
    )
    p.add_argument(
        "--min-bout",
        type=int,
        default=None,
        metavar="N",
        help="merge bouts shorter than N frames into a neighbour (1: none; default: what the "
        "run chose on validation)",
    )
    p.add_argument(
        "--individuals",
        nargs="+",
        default=None,
        metavar="NAME",
        help="multi-animal files: the individuals to keep, in order (default: all)",
    )
    p.add_argument(
        "--rename",
        nargs="+",
        default=[],
        metavar="OLD=NEW",
        help="body-part names of these files -> the model's (e.g. 'Left Ear=l_ear')",
    )
    p.add_argument("--drop", nargs="+", default=[], metavar="PART", help="body parts to leave out")
    p.add_argument("--fps", type=float, default=None, help="frame rate (default: the training's)")
    p.add_argument(
        "--microstates",
        type=Path,
        default=None,
        help="microstates.npz to use instead of the checkpoint's (fitted on the same model)",
    )
    p.add_argument(
        "--skip-bad", action="store_true", help="skip unreadable files instead of stopping"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _error(message: object) -> int:
    print(f"dbm-predict: error: {message}", file=sys.stderr)
    return 2


def _option_of(exc: DataFormatError, args: argparse.Namespace) -> str:
    """``"--microstates "`` or ``"--out "`` when ``exc`` names that option's file, else ``""``."""
    if exc.path is None:
        return ""
    if args.microstates is not None:
        given = args.microstates.with_suffix("") if args.microstates.suffix else args.microstates
        if exc.path.with_suffix("") in (given, given / "microstates"):
            return "--microstates "
    return "--out " if exc.path == args.out else ""


def main(argv: list[str] | None = None) -> int:
    """Run ``dbm-predict``; return the exit status (0 ok, 2 bad input)."""
    from dbm_lightning.prediction import predict_paths
    from dbm_lightning.prediction.guards import check_output_dir, resolve_model_file

    args = build_parser().parse_args(argv)
    # the paths first: nothing is read (no model, no session) before they are known good
    try:
        check_output_dir(args.out)
    except DataFormatError as exc:
        return _error(f"--out {exc}")
    try:
        model_file = resolve_model_file(args.ckpt)
    except (DataFormatError, FileNotFoundError) as exc:
        return _error(f"--ckpt {exc}")
    if args.ckpt.is_dir():
        print(f"model: {model_file}")
    for name in ("smoothing", "min_bout"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            print(f"dbm-predict: --{name.replace('_', '-')} must be >= 0", file=sys.stderr)
            return 2
    try:
        renames = parse_renames(args.rename)
    except ValueError as exc:
        print(f"dbm-predict: {exc}", file=sys.stderr)
        return 2
    from dbm_lightning.skeleton import BodypartMap

    mapping = BodypartMap(rename=renames, drop=tuple(args.drop))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            summary = predict_paths(
                model_file,
                args.input,
                args.out,
                fmt=args.format,
                smoothing=args.smoothing,
                min_bout=args.min_bout,
                individuals=args.individuals,
                fps=args.fps,
                bodyparts=mapping,
                microstates=args.microstates,
                skip_errors=args.skip_bad,
                progress=not args.no_progress,
            )
    except DataFormatError as exc:
        return _error(f"{_option_of(exc, args)}{exc}")
    except (OSError, ImportError, ValueError, KeyError) as exc:
        return _error(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
    said: set[str] = set()
    for w in caught:
        text = str(w.message)
        if "microstates" in text and text not in said:  # each warning once
            said.add(text)
            print(f"dbm-predict: warning: {text}", file=sys.stderr)
    for s in summary["skipped"]:
        print(f"dbm-predict: skipped {s['reason']}", file=sys.stderr)
    for s in summary["sessions"]:
        print(f"{s['name']}: {s['frames']} frames, {s['bouts']} bouts -> {s['frames_file']}")
    if not summary["sessions"]:
        print("dbm-predict: error: no session could be predicted", file=sys.stderr)
        return 2
    print(f"summary: {Path(summary['out_dir']) / 'summary.json'}")
    return 0


def cli() -> None:
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
