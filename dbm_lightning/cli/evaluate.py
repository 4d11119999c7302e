"""``dbm-evaluate``: score ``dbm-predict`` output against human label files.

Examples::

    dbm-evaluate preds/ --labels "../annotations/{base}_annot.txt" --stream S1 --ignore base
    dbm-evaluate preds/ --labels "{stem}.labels.*" --iou 0.3 --out preds/eval

Writes ``scores.csv`` (per class: frame precision, recall, F1, bout precision, recall, F1),
``sessions.csv`` (per session), ``evaluation.json``, ``evaluation.md`` and ``confusion.png``
(normalised per true class) into ``--out`` (default ``PRED_DIR/evaluation``). Frames that are
unlabelled or invalid are left out and counted. Exit status 0, or 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dbm_lightning.cli import parse_renames
from dbm_lightning.errors import DataFormatError
from dbm_lightning.evaluation.scores import DEFAULT_IOU


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``dbm-evaluate``."""
    p = argparse.ArgumentParser(
        prog="dbm-evaluate",
        description="Score dbm-predict output against human label files.",
    )
    p.add_argument("pred_dir", type=Path, help="a folder written by dbm-predict --out")
    p.add_argument(
        "--labels",
        required=True,
        metavar="PATTERN",
        help="label file of each pose file, relative to its folder: {stem}, {base}, {name} "
        "(e.g. '../annotations/{base}_annot.txt' or '{stem}.labels.*')",
    )
    p.add_argument(
        "--format",
        default="auto",
        help="label format: auto (from the content), csv, caltech, boris, simba, deepethogram",
    )
    p.add_argument("--stream", default=None, help="Caltech annotator stream (default S1)")
    p.add_argument("--subject", default=None, help="BORIS subject (when a file has several)")
    p.add_argument("--rename", nargs="+", default=[], metavar="OLD=NEW", help="label names")
    p.add_argument(
        "--ignore", nargs="+", default=[], metavar="NAME", help="labels meaning unlabelled"
    )
    p.add_argument(
        "--background",
        default="other",
        help="class of frames in no BORIS event ('none': unlabelled)",
    )
    p.add_argument("--iou", type=float, default=DEFAULT_IOU, help="bout-matching IoU threshold")
    p.add_argument("--out", type=Path, default=None, help="output folder")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``dbm-evaluate``; return the exit status (0 ok, 2 bad input)."""
    from dbm_lightning.evaluation import evaluate_predictions, write_evaluation
    from dbm_lightning.labeling import FileLabeler

    args = build_parser().parse_args(argv)

    def fail(message: str) -> int:
        print(f"dbm-evaluate: error: {message}", file=sys.stderr)
        return 2

    if not 0 < args.iou <= 1:
        return fail(f"--iou must be in (0, 1], got {args.iou}")
    try:
        renames = parse_renames(args.rename)
    except ValueError as exc:
        return fail(str(exc))
    try:
        labeler = FileLabeler(
            pattern=args.labels,
            format=args.format,
            stream=args.stream,
            subject=args.subject,
            rename=renames,
            ignore=tuple(args.ignore),
            background=None if args.background.lower() == "none" else args.background,
        )
        evaluation = evaluate_predictions(args.pred_dir, labeler, iou=args.iou)
        paths = write_evaluation(evaluation, args.out or args.pred_dir / "evaluation")
    except (DataFormatError, ValueError, OSError) as exc:
        return fail(str(exc))
    s = evaluation.total.summary()
    print(
        f"{s['sessions']} session(s): macro F1 {s['macro_f1']:.3f}, balanced accuracy "
        f"{s['balanced_acc']:.3f}, bout macro F1 {s['bout_macro_f1']:.3f} (IoU >= {s['iou']:g}); "
        f"{s['scored']} frames scored, {s['unlabelled']} unlabelled, {s['invalid']} invalid"
    )
    for row in evaluation.total.per_class():
        print(
            f"  {row['class']:<16} F1 {row['f1']:.3f}  precision {row['precision']:.3f}  "
            f"recall {row['recall']:.3f}  bout F1 {row['bout_f1']:.3f}  ({row['support']} frames)"
        )
    print(f"tables and figure: {paths['markdown'].parent}")
    return 0


def cli() -> None:
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
