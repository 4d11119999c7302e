"""Benchmark of :func:`dbm_lightning.microstates.fit_microstates` at the paper's scale.

The paper's lab data: 8 mice x 7 days x ~23,000 frames ~ 1.3 M frames with a 10-d LSTM
embedding, k = 50. This fits synthetic clustered embeddings of that size (mini-batch path),
assigns all frames again, and prints wall time and peak memory (tracemalloc peak of Python /
NumPy allocations, and the process's peak resident set size).

Run: ``python benchmarks/bench_microstates.py [--frames 1300000] [--dims 10] [--k 50]
[--full-frames 200000]`` (``--full-frames 0`` skips the full k-means timing at the threshold).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np

from dbm_lightning.microstates import fit_microstates


def _fake_embeddings(frames: int, dims: int, sessions: int, seed: int = 0):
    """Clustered embeddings (80 Gaussian blobs) with 7 labels, split into sessions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, size=(80, dims)).astype(np.float32)
    blob_label = rng.integers(0, 7, size=80)
    blob = rng.integers(0, 80, size=frames)
    x = centres[blob] + rng.normal(0.0, 0.25, size=(frames, dims)).astype(np.float32)
    x = np.tanh(x)  # LSTM outputs live in (-1, 1)
    y = blob_label[blob]
    y[rng.random(frames) < 0.05] = -1
    x[rng.random(frames) < 0.01] = np.nan  # invalid frames
    cuts = np.linspace(0, frames, sessions + 1).astype(int)
    return (
        [x[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)],
        [y[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)],
    )


def _run(name: str, emb, lab, **kwargs) -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    ms = fit_microstates(emb, lab, [f"label{i}" for i in range(7)], **kwargs)
    t_fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    states = [ms.assign(e) for e in emb]
    t_assign = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = sum(len(s) for s in states)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(
        f"{name}: {n:,} frames, method={ms.method}, fit {t_fit:.1f} s, assign {t_assign:.2f} s, "
        f"tracemalloc peak {peak / 2**20:.0f} MiB, process max RSS so far {rss:.0f} MiB, "
        f"inertia/frame {ms.inertia / n:.4f}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1_300_000)
    parser.add_argument("--dims", type=int, default=10)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--sessions", type=int, default=56)
    parser.add_argument("--full-frames", type=int, default=200_000)
    args = parser.parse_args(argv)

    emb, lab = _fake_embeddings(args.frames, args.dims, args.sessions)
    data_mib = sum(e.nbytes for e in emb) / 2**20
    print(f"input: {args.frames:,} x {args.dims} float32 = {data_mib:.0f} MiB, k={args.k}")
    _run("minibatch (default threshold)", emb, lab, k=args.k)
    if args.full_frames:
        sub_e, sub_l = _fake_embeddings(args.full_frames, args.dims, 8, seed=1)
        _run("full k-means, n_init=10, at threshold", sub_e, sub_l, k=args.k)


if __name__ == "__main__":
    main(sys.argv[1:])
