"""Where the time of ``dbm-predict`` on one paper-scale session goes: each stage of
``predict_paths`` timed on its own (best of N), next to the whole call.

Run from the repository root::

    python benchmarks/predict_stages.py          # 23,000-frame session, best of 7
    python benchmarks/predict_stages.py --repeats 3 --frames 3000

The checkpoint is the one ``benchmarks/run.py --only infer`` uses (one epoch on the small
default, k = 50 microstates); inference speed does not depend on how well it is trained.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402


def best_ms(fn: Any, repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls, in ms, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", type=int, default=bench.Sizes().paper_frames)
    args = parser.parse_args(argv)

    import numpy as np

    from dbm_lightning import prediction as P
    from dbm_lightning.atomic import write_json_atomic
    from dbm_lightning.checkpoints import read_checkpoint
    from dbm_lightning.data import prepare_session
    from dbm_lightning.features import dbm_distance_features
    from dbm_lightning.io import load_dlc
    from dbm_lightning.io.csv_writer import csv_bytes
    from dbm_lightning.preprocess import PreprocessConfig, clean_session

    sizes = bench.Sizes()
    one = bench.session_files(bench.dataset_folder(sizes.mice, sizes.days, args.frames))[0]
    n = args.repeats
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        ckpt = bench._quick_checkpoint(sizes, out / "run")
        P.predict_paths(ckpt, one, out / "warmup", progress=False)
        rows.append(
            ("whole call: predict_paths", best_ms(lambda: P.predict_paths(
                ckpt, one, out / "pred", progress=False), n)[0])
        )  # fmt: skip
        ms, raw = best_ms(lambda: read_checkpoint(ckpt), n)
        rows.append(("read checkpoint (torch.load, weights_only)", ms))
        ms, module = best_ms(lambda: P._classifier_from_checkpoint(ckpt, raw), n)
        rows.append(("build the classifier from it", ms))
        states = P._microstates_from_plain(raw[P.CHECKPOINT_KEY])
        ms, session = best_ms(lambda: load_dlc(one), n)
        rows.append(("read the DeepLabCut CSV (load_dlc)", ms))
        state = module.hparams["pipeline_state"]
        ms, (features, valid) = best_ms(lambda: prepare_session(session, state), n)
        rows.append(("prepare_session (clean, features, scale, standardise)", ms))
        cfg = PreprocessConfig(**state["preprocess"])
        rows.append(
            ("  of which clean_session", best_ms(lambda: clean_session(session, cfg), n)[0])
        )
        rows.append(
            ("  of which dbm_distance_features", best_ms(
                lambda: dbm_distance_features(session.pose), n)[0])
        )  # fmt: skip
        ms, (_, emb) = best_ms(lambda: P._run_model(module, features), n)
        rows.append(("model: predict_session on one thread", ms))
        emb = np.array(emb, dtype=np.float32)
        emb[~valid] = np.nan
        rows.append(("microstates: assign", best_ms(lambda: states.assign(emb), n)[0]))
        result = P._predict_arrays(module, session, states, 0, 1)
        rows.append(("frames table text (csv_bytes)", best_ms(
            lambda: csv_bytes(result.columns(), decimals=P.FLOAT_DECIMALS), n)[0]))  # fmt: skip
        frames_path = out / "x.frames.csv"
        rows.append(("frames table text + atomic write (fsync)", best_ms(
            lambda: P._write_frames(result, frames_path, "csv"), n)[0]))  # fmt: skip
        ms, bouts = best_ms(
            lambda: P.bouts_table(result.pred, fps=30.0, label_names=result.class_names), n
        )
        rows.append(("bouts table", ms))
        rows.append(("bouts write (pandas, atomic, fsync)", best_ms(
            lambda: P._write_table(bouts, out / "x.bouts.csv", "csv"), n)[0]))  # fmt: skip
        summary = {"sessions": [{"label_share": P._label_share(result)}]}
        rows.append(("summary.json (atomic, fsync)", best_ms(
            lambda: write_json_atomic(out / "summary.json", summary), n)[0]))  # fmt: skip
    total = rows[0][1]
    print(f"dbm-predict on one {args.frames:,}-frame session, best of {n}")
    for name, ms in rows:
        print(f"{name:58s} {ms:8.2f} ms")
    print(f"whole call: {args.frames / total * 1000:,.0f} frames/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
