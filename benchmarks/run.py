"""The benchmark suite: loading, training, inference, microstates, memory and scaling of the
framework on the paper-scale synthetic data, side by side with plain pandas / PyTorch, in one
run; prints one table and can write it as JSON.

Run from the repository root::

    python benchmarks/run.py                      # everything (about 15 minutes on 2 cores)
    python benchmarks/run.py --json results.json  # the table also as JSON
    python benchmarks/run.py --only load,train    # some sections
    python benchmarks/run.py --quick              # tiny sizes: checks that it works (~1 min)

Sections (``--only``): ``load`` (cold parse vs a plain ``pandas.read_csv`` loop, warm cache),
``train`` (frames/s of the baseline and modified DBM through LightningModule + Trainer vs a
bare PyTorch loop over the same batches; peak memory of the training process), ``infer``
(``dbm-predict`` on one session; k-means microstates on the embeddings of every frame),
``scaling`` (load and train at 1x, 4x, 16x the frames of the small default) and ``ablation``
(the paper's four arms x 3 seeds on the DBM sample, wall time; needs ../shared/data).

Every measurement that needs its own peak memory runs in a fresh subprocess
(``python benchmarks/run.py --worker ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DBM_SHARED_DATA", REPO.parent / "shared" / "data"))
SECTIONS = ("load", "train", "recommended", "infer", "main", "scaling", "ablation")


@dataclass(frozen=True)
class Sizes:
    """Data sizes of a benchmark run (``--quick`` shrinks all of them)."""

    mice: int = 8
    days: int = 7
    paper_frames: int = 23_000
    small_frames: int = 3_000
    window: int = 256
    batch: int = 256
    scales: tuple[int, ...] = (1, 4, 16)
    ablation_epochs: int = 100
    ablation_seeds: str = "0,1,2"
    train_batches: int = 6
    train_repeats: int = 2


QUICK = Sizes(
    mice=2,
    days=2,
    paper_frames=2_000,
    small_frames=500,
    window=64,
    batch=16,
    scales=(1, 4),
    ablation_epochs=1,
    ablation_seeds="0",
    train_batches=2,
    train_repeats=1,
)


@dataclass
class Row:
    """One line of the results table."""

    section: str
    measure: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dataset_folder(mice: int, days: int, frames: int) -> Path:
    """The synthetic DeepLabCut folder of that size (generated and cached on first use)."""
    from dbm_lightning.synthetic import SyntheticConfig, ensure_dataset

    return ensure_dataset(SyntheticConfig(mice=mice, days=days, frames=frames, seed=0))


def session_files(folder: Path) -> list[Path]:
    """The DeepLabCut CSV files of a synthetic folder (not the label files)."""
    skip = ("manifest.csv",)
    return sorted(
        p for p in folder.glob("*.csv") if not p.name.endswith(".labels.csv") and p.name not in skip
    )


def timed(fn: Any, repeats: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls of ``fn`` and its last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


# ------------------------------------------------------------------------------ workers


IN_PROCESS = False
"""``--quick`` runs the workers in this process (it checks the code paths; its memory rows
are then this process's)."""


def run_worker(args: list[str]) -> dict[str, Any]:
    """Run ``benchmarks/run.py --worker ARGS`` in a fresh process and return its JSON (in this
    process with ``--quick``)."""
    if IN_PROCESS:
        return WORKERS[args[0]](json.loads(args[1]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _training_config(opts: dict[str, Any]) -> dict[str, Any]:
    """The composed ``dbm-train`` config of a benchmark worker (model, features, data size,
    window)."""
    from dbm_lightning.cli.config import compose_config

    window = int(opts["window"])
    return compose_config(
        [
            f"model={opts['model']}",
            f"features={opts.get('features', 'dbm')}",
            f"data.mice={opts['mice']}",
            f"data.days={opts['days']}",
            f"data.frames={opts['frames']}",
            f"data.window={window}",
            f"data.stride={window // 2}",
            f"data.batch_size={opts['batch']}",
        ]
    )


def worker_train(opts: dict[str, Any]) -> dict[str, Any]:
    """Training steps in this process: ``framework`` (Trainer + DBMClassifier, built as
    ``dbm-train`` builds them) or ``bare`` (a plain PyTorch loop over the same DataLoader,
    network, loss and optimizer settings), ``opts["batches"]`` steps (``None``: one epoch).

    ``step_s`` is the time inside the training steps (forward, backward, optimiser; the
    framework's hooks and metric updates included, data loading excluded), measured the same
    way for both; ``fit_s`` is the framework's whole ``trainer.fit`` (or the bare loop with
    its data loading)."""
    import pytorch_lightning as pl
    import torch

    from dbm_lightning.build import build_classifier, build_datamodule
    from dbm_lightning.models import build_model
    from dbm_lightning.models.losses import masked_cross_entropy

    torch.set_num_threads(int(opts["threads"]))
    pl.seed_everything(0, verbose=False)
    cfg = _training_config(opts)
    dm = build_datamodule(cfg)
    t0 = time.perf_counter()
    dm.setup("fit")
    setup_s = time.perf_counter() - t0
    setup_rss = peak_rss_mib()
    loader = dm.train_dataloader()
    batches = opts.get("batches")
    frames, step_s = 0, 0.0
    if opts["mode"] == "bare":
        model_cfg = dict(cfg["model"])
        net = build_model(model_cfg.pop("name"), dm.n_features, dm.n_classes, **model_cfg)
        optim = torch.optim.Adam(
            net.parameters(), lr=cfg["optim"]["lr"], weight_decay=cfg["optim"]["weight_decay"]
        )
        net.train()
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(loader):
            if batches is not None and i >= batches:
                break
            started = time.perf_counter()
            optim.zero_grad(set_to_none=True)
            loss = masked_cross_entropy(net(x), y)
            loss.backward()
            optim.step()
            frames += int((y >= 0).sum())
            step_s += time.perf_counter() - started
        fit_s = time.perf_counter() - t0
    else:
        module = build_classifier(cfg, dm)
        trainer = pl.Trainer(
            max_epochs=1,
            accelerator="cpu",
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            limit_train_batches=batches if batches is not None else 1.0,
            num_sanity_val_steps=0,
            deterministic=True,
        )
        t0 = time.perf_counter()
        trainer.fit(module, train_dataloaders=loader)
        fit_s = time.perf_counter() - t0
        frames, step_s = int(module.train_frames_seen), float(module.train_seconds)
    return {
        "setup_s": setup_s,
        "setup_rss_mib": setup_rss,
        "fit_s": fit_s,
        "step_s": step_s,
        "frames": frames,
        "frames_per_s": frames / step_s,
        "steps_per_epoch": len(loader),
        "peak_rss_mib": peak_rss_mib(),
        "n_features": dm.n_features,
    }


WORKERS = {"train": worker_train}


# ------------------------------------------------------------------------------ sections


def bench_load(sizes: Sizes, frames: int | None = None, tag: str = "") -> list[Row]:
    """Cold parse by the framework vs a plain pandas loop; warm (cached) load."""
    import pandas as pd

    from dbm_lightning.io import load_sessions, scan_folder

    frames = frames or sizes.paper_frames
    folder = dataset_folder(sizes.mice, sizes.days, frames)
    files = session_files(folder)
    entries = [e for e in scan_folder(folder) if not e.path.name.endswith(".labels.csv")]
    n_frames = sizes.mice * sizes.days * frames

    def pandas_loop() -> None:
        for f in files:
            pd.read_csv(f, header=[0, 1, 2], index_col=0)

    pandas_loop()  # both readers then find the files in the page cache
    pandas_s, _ = timed(pandas_loop, repeats=2)
    cold_s, result = timed(lambda: load_sessions(entries, cache_dir=False, progress=False), 2)
    assert len(result.sessions) == len(files)
    with tempfile.TemporaryDirectory() as tmp:
        first_s, _ = timed(lambda: load_sessions(entries, cache_dir=tmp, progress=False))
        warm_s, _ = timed(lambda: load_sessions(entries, cache_dir=tmp, progress=False), 3)
    label = f"{len(files)} files, {n_frames:,} frames{tag}"
    return [
        Row("load", f"pandas.read_csv loop ({label})", pandas_s, "s"),
        Row(
            "load",
            f"framework cold parse ({label})",
            cold_s,
            "s",
            "<= pandas loop",
            cold_s <= pandas_s,
            f"{pandas_s / cold_s:.2f}x the pandas loop's speed",
        ),
        Row("load", f"framework first load, parse + write cache ({label})", first_s, "s"),
        Row(
            "load",
            f"framework warm load from cache ({label})",
            warm_s,
            "s",
            ">= 20x faster than cold",
            cold_s / warm_s >= 20,
            f"{cold_s / warm_s:.1f}x faster than cold",
        ),
    ]


NETWORKS = ("dbm_baseline", "dbm_modified", "bilstm", "tcn")
"""Every shipped network, in the overhead rows."""
RECOMMENDED = ("bilstm", "full")
"""The recommended configuration's network and feature set (experiment=rat_social: the
BiLSTM, 2 x 64; the paper-scale synthetic data has one animal, so features=full)."""


def bench_train(
    sizes: Sizes,
    threads: int,
    frames: int | None = None,
    tag: str = "",
    models: tuple[str, ...] = NETWORKS,
    bare: bool = True,
    features: str = "full",
) -> list[Row]:
    """Frames/s of training steps, framework vs bare loop of the same network on the same
    batches (``sizes.train_batches`` steps each, one torch thread); setup time and memory."""
    frames = frames or sizes.paper_frames
    dataset_folder(sizes.mice, sizes.days, frames)  # generate outside the timed workers
    shape = f"window {sizes.window} x batch {sizes.batch}, features={features}{tag}"
    paper = not tag
    rows: list[Row] = []
    for model in models:
        results: dict[str, dict[str, Any]] = {}
        # each mode twice, alternately, in fresh processes; the faster of the two counts (a
        # process's memory layout alone moves a step's time by several per cent)
        modes = ("bare", "framework") * sizes.train_repeats if bare else ("framework",)
        for mode in modes:
            opts = {
                "mode": mode,
                "model": model,
                "features": features,
                "mice": sizes.mice,
                "days": sizes.days,
                "frames": frames,
                "window": sizes.window,
                "batch": sizes.batch,
                "threads": threads,
                "batches": sizes.train_batches if bare else None,
            }
            result = run_worker(["train", json.dumps(opts)])
            if mode not in results or result["frames_per_s"] > results[mode]["frames_per_s"]:
                results[mode] = result
        fw = results["framework"]
        section = "train" if paper else "scaling"
        if bare:
            rows.append(
                Row(
                    section,
                    f"{model} bare PyTorch loop ({shape})",
                    results["bare"]["frames_per_s"],
                    "frames/s",
                )
            )
        rows.append(
            Row(
                section,
                f"{model} framework: Trainer + LightningModule ({shape})",
                fw["frames_per_s"],
                "frames/s",
                note=f"{fw['frames']:,} frames in {fw['step_s']:.2f} s of training steps",
            )
        )
        if bare:
            ratio = results["bare"]["frames_per_s"] / fw["frames_per_s"]
            rows.append(
                Row(
                    section,
                    f"{model} framework time / bare loop time, {threads} thread(s)",
                    ratio,
                    "x",
                    "<= 1.10x",
                    ratio <= 1.10,
                    f"best of {sizes.train_repeats} fresh processes x "
                    f"{sizes.train_batches} steps each",
                )
            )
        if model == "dbm_baseline":
            rows.append(
                Row(
                    section,
                    f"DataModule.setup(), {fw['n_features']} features ({shape})",
                    fw["setup_s"],
                    "s",
                    note=f"peak RSS after setup {fw['setup_rss_mib']:.0f} MiB",
                )
            )
    return rows


def bench_recommended(sizes: Sizes) -> list[Row]:
    """One paper-scale epoch of the recommended network and its peak memory, and the knobs
    that trade them: torch threads, and the window (with the batch making up the frames)."""
    model, features = RECOMMENDED
    frames = sizes.paper_frames
    dataset_folder(sizes.mice, sizes.days, frames)
    rows: list[Row] = []
    settings = [
        (1, sizes.window, sizes.batch, "the default: one thread per run"),
        (2, sizes.window, sizes.batch, "torch_threads=2"),
        (1, sizes.window // 2, sizes.batch * 2, "half the window, twice the batch"),
        (1, sizes.window, sizes.batch // 4, "a quarter of the batch"),
    ]
    for threads, window, batch, knob in settings:
        opts = {
            "mode": "framework",
            "model": model,
            "features": features,
            "mice": sizes.mice,
            "days": sizes.days,
            "frames": frames,
            "window": window,
            "batch": batch,
            "threads": threads,
            "batches": None,
        }
        r = run_worker(["train", json.dumps(opts)])
        if not rows:
            gib = r["peak_rss_mib"] / 1024
            rows.append(
                Row(
                    "recommended",
                    f"peak memory of the training process ({model}, features={features})",
                    gib,
                    "GiB",
                    note="a quarter of the batch (below) takes less",
                )
            )
        rows.append(
            Row(
                "recommended",
                f"{model}, features={features}: one paper-scale epoch, {knob} "
                f"(window {window} x batch {batch}, {threads} thread(s))",
                r["fit_s"],
                "s",
                note=(
                    f"{r['frames_per_s']:,.0f} frames/s in training steps, "
                    f"{r['steps_per_epoch']} steps; peak memory {r['peak_rss_mib'] / 1024:.2f} GiB"
                ),
            )
        )
    return rows


def _quick_checkpoint(sizes: Sizes, out: Path) -> Path:
    """A checkpoint (one epoch on the small default, with k = 50 microstates) to predict with;
    inference speed does not depend on how well the model is trained."""
    from dbm_lightning.cli.config import compose_config
    from dbm_lightning.training import run_training

    cfg = compose_config(
        [
            f"data.mice={sizes.mice}",
            f"data.days={sizes.days}",
            f"data.frames={sizes.small_frames}",
            "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false",
            "logger=none",
            f"microstates.k={min(50, sizes.small_frames // 20)}",
        ]
    )
    metrics = run_training(cfg, out)
    return Path(metrics["best_checkpoint"])


def bench_infer(sizes: Sizes) -> list[Row]:
    """dbm-predict on one paper-scale session and on the whole folder; k-means microstates on
    the embeddings of every frame of the default data and of the paper-scale data."""
    import numpy as np
    import torch

    from dbm_lightning.analysis.microstates import fit_microstates
    from dbm_lightning.data import prepare_session
    from dbm_lightning.io import load_dlc
    from dbm_lightning.prediction import predict_paths
    from dbm_lightning.runs import load_model

    folder = dataset_folder(sizes.mice, sizes.days, sizes.paper_frames)
    files = session_files(folder)
    rows: list[Row] = []
    n = sizes.paper_frames
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = _quick_checkpoint(sizes, Path(tmp) / "run")
        torch.set_num_threads(torch_default_threads())  # dbm-predict's (the run set one)
        one = files[0]
        predict_paths(ckpt, one, Path(tmp) / "warmup", progress=False)
        predict_s, _ = timed(
            lambda: predict_paths(ckpt, one, Path(tmp) / "pred", progress=False), repeats=3
        )
        folder_s, _ = timed(lambda: predict_paths(ckpt, folder, Path(tmp) / "all", progress=False))
        module = load_model(ckpt)
        state = module.hparams["pipeline_state"]
        session = load_dlc(one)
        features, _ = prepare_session(session, state)
        model_s, _ = timed(lambda: module.predict_session(features), repeats=3)
    total = n * len(files)
    rows += [
        Row(
            "infer",
            f"dbm-predict, one {n:,}-frame session (read, features, model, microstates, write)",
            n / predict_s,
            "frames/s",
            ">= 500,000 frames/s",
            n / predict_s >= 500_000,
            f"{predict_s * 1000:.0f} ms",
        ),
        Row(
            "infer",
            f"dbm-predict, a folder of {len(files)} such sessions ({total:,} frames)",
            total / folder_s,
            "frames/s",
            ">= 1,000,000 frames/s",
            total / folder_s >= 1_000_000,
            f"{folder_s:.1f} s",
        ),
        Row(
            "infer",
            "model alone (predict_session) on one session",
            n / model_s,
            "frames/s",
            note=f"{model_s * 1000:.0f} ms",
        ),
    ]
    # embeddings of every frame, then k-means as dbm-train / dbm-plots fit them
    small = session_files(dataset_folder(sizes.mice, sizes.days, sizes.small_frames))
    default = f"the default data ({sizes.mice} x {sizes.days} x {sizes.small_frames:,} frames)"
    for name, paths, limit in ((default, small, 3), ("the paper-scale data", files, 10)):
        embeddings = []
        for path in paths:
            feats, valid = prepare_session(load_dlc(path), state)
            _, emb = module.predict_session(feats)
            embeddings.append(emb[valid])
        x = np.concatenate(embeddings)
        kmeans_s, ms = timed(lambda x=x: fit_microstates(x, k=50, seed=0))
        # the renumbered counts are what assigning the same frames again gives
        same = bool(np.array_equal(np.bincount(ms.assign(x), minlength=ms.k), ms.counts))
        rows.append(
            Row(
                "infer",
                f"k-means microstates, k = 50, {name}: {x.shape[0]:,} x {x.shape[1]} embeddings",
                kmeans_s,
                "s",
                f"<= {limit} s",
                kmeans_s <= limit,
                f"{ms.method}; assign() of the frames gives the fitted counts: "
                f"{'yes' if same else 'NO'}",
            )
        )
    return rows


def bench_main_job(sizes: Sizes) -> list[Row]:
    """``dbm-train`` with no arguments (the README's main job), wall time of the command."""
    quick = sizes == QUICK
    tiny = ["data.mice=2", "data.days=1", "data.frames=500", "trainer.max_epochs=1"]
    extra = tiny if quick else []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "dbm_lightning.cli.train", f"hydra.run.dir={tmp}", *extra]
        env = {**os.environ, "DBM_LIGHTNING_CACHE": str(Path(tmp) / "cache")}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"dbm-train failed:\n{proc.stderr[-4000:]}")
        metrics = json.loads((Path(tmp) / "metrics.json").read_text())
    micro = (metrics.get("microstates") or {}).get("fit_time_s", float("nan"))
    return [
        Row(
            "main",
            "dbm-train with no arguments: wall time of the command (synthetic data generated)",
            wall,
            "s",
            "<= 30 s",
            wall <= 30,
            f"fit {metrics['fit_time_s']:.1f} s ({metrics['epochs']} epochs), microstates "
            f"{micro:.1f} s, validation accuracy {metrics['val_best']['acc']:.3f}",
        )
    ]


def bench_scaling(sizes: Sizes, threads: int) -> list[Row]:
    """Load and train at 1x, 4x, 16x the frames of the small default: time per frame."""
    rows: list[Row] = []
    for scale in sizes.scales:
        frames = sizes.small_frames * scale
        tag = f", {scale}x"
        for row in bench_load(sizes, frames=frames, tag=tag):
            rows.append(Row("scaling", row.measure, row.value, row.unit, note=row.note))
        rows.extend(
            bench_train(
                sizes, threads, frames, tag, models=("dbm_baseline",), bare=False, features="dbm"
            )
        )
    return rows


PARALLEL = ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]


def bench_ablation(sizes: Sizes) -> list[Row]:
    """Wall time of the four arms x seeds on the DBM sample (joblib, 2 runs at a time)."""
    mat = SHARED_DATA / "dbm_sample" / "DBM_sample_data.mat"
    if not mat.is_file():
        return [
            Row(
                "ablation",
                "four arms x 3 seeds, DBM sample",
                float("nan"),
                "s",
                note=f"skipped: {mat} not found",
            )
        ]
    seeds = sizes.ablation_seeds
    quick = sizes == QUICK  # one run after another: the check needs no worker processes
    n_runs = 4 * len(seeds.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "dbm_lightning.cli.train",
            "-m",
            "sweep=ablation",
            f"seed={seeds}",
            "data=dbm_mat",
            f"data.path={mat}",
            f"trainer.max_epochs={sizes.ablation_epochs}",
            "trainer.enable_progress_bar=false",
            *(["hydra/launcher=basic"] if quick else PARALLEL),
            f"hydra.sweep.dir={tmp}",
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"ablation sweep failed:\n{proc.stderr[-4000:]}")
        finished = len(list(Path(tmp).rglob("metrics.json")))
    return [
        Row(
            "ablation",
            f"four arms x {len(seeds.split(','))} seeds on the DBM sample, "
            f"{sizes.ablation_epochs} epochs",
            wall / 60,
            "min",
            "< 10 min",
            wall < 600,
            f"{finished}/{n_runs} runs finished; "
            + ("one at a time (quick)" if quick else "joblib, 2 runs at a time, 1 thread each"),
        )
    ]


# ------------------------------------------------------------------------------ output


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }


def format_table(rows: list[Row]) -> str:
    """The results as a Markdown table."""
    lines = ["| section | measure | value | target | met | note |", "|---|---|---|---|---|---|"]
    for r in rows:
        value = f"{r.value:,.0f}" if abs(r.value) >= 1000 else f"{r.value:.3g}"
        met = "" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(
            f"| {r.section} | {r.measure} | {value} {r.unit} | {r.target} | {met} | {r.note} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it works")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--json", type=Path, help="also write the table to this JSON file")
    parser.add_argument("--threads", type=int, default=torch_default_threads())
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, opts = args.worker
        print(json.dumps(WORKERS[kind](json.loads(opts))))
        return 0
    global IN_PROCESS
    IN_PROCESS = args.quick
    sizes = QUICK if args.quick else Sizes()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    started = time.perf_counter()
    rows: list[Row] = []
    for section in sections:
        t0 = time.perf_counter()
        if section == "load":
            rows += bench_load(sizes)
        elif section == "train":
            rows += bench_train(sizes, threads=1)
        elif section == "recommended":
            rows += bench_recommended(sizes)
        elif section == "main":
            rows += bench_main_job(sizes)
        elif section == "infer":
            rows += bench_infer(sizes)
        elif section == "scaling":
            rows += bench_scaling(sizes, args.threads)
        elif section == "ablation":
            rows += bench_ablation(sizes)
        print(f"[{section}: {time.perf_counter() - t0:.0f} s]", file=sys.stderr)
    info = machine()
    header = (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"GPU: {info['gpu'] or 'none'}; Python {info['python']}, torch {info['torch']}, "
        f"{args.threads} torch thread(s); {info['date']}; "
        f"{'quick sizes' if args.quick else 'paper-scale sizes'}; "
        f"total {time.perf_counter() - started:.0f} s"
    )
    print(header)
    print(format_table(rows))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": info,
                    "sizes": asdict(sizes),
                    "quick": args.quick,
                    "threads": args.threads,
                    "rows": [asdict(r) for r in rows],
                },
                indent=2,
            )
        )
    return 0


def torch_default_threads() -> int:
    """torch's default intra-op thread count (the machine's cores)."""
    return max(1, os.cpu_count() or 1)


if __name__ == "__main__":
    sys.exit(main())
