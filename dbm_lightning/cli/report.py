"""``dbm-report MULTIRUN_DIR``: the configurations of a sweep in the sweep's order, with mean
+/- std over seeds, the value of each seed, the paper's number for its four arms, speed on its
own, the best marked, failed runs listed, and one comparison plot (CSV, Markdown, PNG).

Each configuration and seed is counted once (duplicates of a killed and re-launched sweep are
listed in ``duplicates.csv``), the jobs a ``multirun.yaml`` planned but that never started are
listed with the failed runs, and what does not add up (two sweeps in one folder, plans that
cannot be listed) is said in one line each, in the report and on stderr. ``--summary`` prints
the short text of :func:`~dbm_lightning.analysis.report.sweep_summary` (what a sweep prints when
it ends) instead of the whole Markdown."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dbm_lightning.analysis.report import build_report, summary_text, write_files
from dbm_lightning.analysis.sweep_runs import read_sweep
from dbm_lightning.hparams_tab import write_sweep_hparams


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    parser = argparse.ArgumentParser(prog="dbm-report", description=__doc__)
    parser.add_argument("multirun_dir", type=Path, help="a Hydra multirun directory")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default: the dir)")
    parser.add_argument(
        "--metric",
        default=None,
        help="validation metric that marks the best configuration (default val_best/acc); "
        "held-out scores are compared with the anchors fold by fold",
    )
    parser.add_argument(
        "--summary",
        action="store_true",
        help="print the short summary (headline metric per configuration and seed) instead of "
        "the whole Markdown",
    )
    args = parser.parse_args(argv)
    try:
        sweep = read_sweep(args.multirun_dir)
        report = build_report(args.multirun_dir, metric=args.metric, sweep=sweep)
        paths = write_files(report, args.out)
        root = Path(args.multirun_dir).resolve()
        one_sweep = [Path(m).resolve() for m in sweep.multiruns] == [root / "multirun.yaml"]
        if one_sweep and (args.out is None or Path(args.out).resolve() == root):
            # the HPARAMS experiment at the sweep's root, as a sweep that ended writes it (only
            # for one sweep: TensorBoard takes one experiment per folder it is pointed at)
            events = write_sweep_hparams(args.multirun_dir, [r.path for r in sweep.runs])
            if events is not None:
                paths["tensorboard hparams"] = events
    except FileNotFoundError as exc:
        print(f"dbm-report: {exc}", file=sys.stderr)
        return 2
    if args.summary:
        print("\n".join(summary_text(report)))
    else:
        print(paths["markdown"].read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    for note in sweep.notes:
        print(f"dbm-report: {note}", file=sys.stderr)
    return 0


def cli() -> None:
    """Console-script wrapper that exits with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
