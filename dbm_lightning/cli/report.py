"""``dbm-report MULTIRUN_DIR``: table of mean +/- std over seeds per configuration of a sweep,
the best marked, failed runs listed, and one comparison plot (CSV, Markdown, PNG).

Each configuration and seed is counted once (duplicates of a killed and re-launched sweep are
listed in ``duplicates.csv``), the jobs a ``multirun.yaml`` planned but that never started are
listed with the failed runs, and what does not add up (two sweeps in one folder, plans that
cannot be listed) is said in one line each, in the report and on stderr."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dbm_lightning.analysis.report import write_report
from dbm_lightning.analysis.sweep_runs import read_sweep


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
    args = parser.parse_args(argv)
    try:
        sweep = read_sweep(args.multirun_dir)
        paths = write_report(args.multirun_dir, args.out, metric=args.metric, sweep=sweep)
    except FileNotFoundError as exc:
        print(f"dbm-report: {exc}", file=sys.stderr)
        return 2
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
