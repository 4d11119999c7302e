"""Time reading the real data: parse (no cache), first load (parse + write cache), cached load.

Run from the repository root: ``python benchmarks/bench_io.py``. Uses a temporary cache folder,
and skips with a message when ``../shared/data`` (or ``$DBM_SHARED_DATA``) is absent.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from dbm_lightning.io import SessionEntry, load_dbm_mat, load_dlc, load_sessions
from dbm_lightning.io.cache import cached_load

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DBM_SHARED_DATA", REPO.parent / "shared" / "data"))
REPEATS = 3


def _best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    if not DATA.is_dir():
        print(f"skipped: real data not found at {DATA} (set DBM_SHARED_DATA)")
        return 0
    files = sorted((DATA / "bsoid_dlc_clips").glob("*.csv")) + sorted(
        (DATA / "bsoid_dlc_clips").glob("*.h5")
    )
    mat = DATA / "dbm_sample" / "DBM_sample_data.mat"
    print(f"{'file':<44} {'parse':>9} {'1st load':>9} {'cached':>9} {'speed-up':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "sessions"
        for path in files:
            parse = _best(lambda p=path: load_dlc(p))
            entry = [SessionEntry(path, "m", 1)]
            t0 = time.perf_counter()
            load_sessions(entry, cache_dir=cache, progress=False)
            first = time.perf_counter() - t0
            cached = _best(lambda e=entry: load_sessions(e, cache_dir=cache, progress=False))
            label = path.name[:20] + "..." + path.suffix
            print(f"{label:<44} {parse:9.4f} {first:9.4f} {cached:9.4f} {parse / cached:8.1f}x")
        if mat.is_file():
            parse = _best(lambda: load_dbm_mat(mat))
            t0 = time.perf_counter()
            cached_load(mat, load_dbm_mat, {"reader": "dbm_mat"}, cache)
            first = time.perf_counter() - t0
            cached = _best(lambda: cached_load(mat, load_dbm_mat, {"reader": "dbm_mat"}, cache))
            print(
                f"{mat.name + ' (57 trials)':<44} {parse:9.4f} {first:9.4f} {cached:9.4f} "
                f"{parse / cached:8.1f}x"
            )
    print(f"seconds, best of {REPEATS} (1st load: once, cold cache)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
