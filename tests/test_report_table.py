"""What `dbm-report` and `sweep_summary` show of a sweep: configurations in the sweep's order,
the paper's arms by the paper's names with its numbers, best and last epoch named, the value
of each seed, speed in its own section, and a console summary that never raises. The sweeps
are real folders laid out as Hydra and `run_training` write them (``multirun.yaml``, each
job's ``.hydra/`` and ``metrics.json`` or ``failed.json``); nothing is trained."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dbm_lightning.analysis.report import PAPER_ARMS, sweep_summary
from dbm_lightning.cli.report import main as report_main

BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
DATA = ["data=dbm_mat", "data.path=/data/DBM_sample_data.mat", "trainer.max_epochs=100"]
ARMS = ["baseline", "modified", "baseline_pe", "modified_pe"]


def write_multirun(sweep_dir: Path, task: list[str], params: dict[str, str] | None) -> None:
    """The parts of Hydra's ``multirun.yaml`` the report reads, in a real one's layout."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    cfg = {
        "hydra": {
            "sweep": {"dir": str(sweep_dir), "subdir": "${hydra:job.num}"},
            "sweeper": {"_target_": BASIC, "max_batch_size": None, "params": params},
            "overrides": {"hydra": [f"hydra.sweep.dir={sweep_dir}"], "task": task},
            "mode": "MULTIRUN",
        },
        "seed": 0,
    }
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def metrics_json(acc: float, last: float | None = None, **extra: object) -> dict:
    """``metrics.json`` as ``run_training`` writes it (the keys the report reads and others)."""
    last = acc - 0.02 if last is None else last
    return {
        "val": {
            "val/loss": 1.1,
            "val/acc": last,
            "val/balanced_acc": last - 0.1,
            "val/macro_f1": last - 0.15,
            "val/acc_best": acc,
        },
        "val_best": {"acc": acc, "monitor": "val/acc"},
        "test": {},
        "heldout": {},
        "best_checkpoint": None,
        "n_classes": 9,
        "epochs": 100,
        "wall_time_s": 90.0,
        "fit_time_s": 80.0,
        "train_frames": 4_080_000,
        "train_frames_per_s": 150_000.0,
        "seed": 0,
        **extra,
    }


def write_run(
    sweep_dir: Path,
    num: int,
    overrides: list[str],
    metrics: dict | None = None,
    error: str | None = None,
) -> Path:
    """One job's folder: ``.hydra/`` then ``metrics.json`` or ``failed.json``."""
    run = sweep_dir / str(num)
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (run / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (run / "config.yaml").write_text("seed: 0\n")
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    elif error is not None:
        (run / "failed.json").write_text(json.dumps({"error": error, "traceback": error}))
    return run


# val_best/acc per arm and seed: the best arm is the third, so a ranking would reorder them
ACC = {
    "baseline": [0.71, 0.72, 0.73],
    "modified": [0.60, 0.62, 0.64],
    "baseline_pe": [0.78, 0.80, 0.82],
    "modified_pe": [0.75, 0.74, 0.76],
}


def ablation_sweep(root: Path) -> Path:
    """``dbm-train -m sweep=ablation ...``: conf/sweep/ablation.yaml's lists in
    hydra.sweeper.params, Hydra's job order (arms outer, seeds inner)."""
    sweep = root / "ablation"
    write_multirun(
        sweep,
        ["sweep=ablation", *DATA],
        params={"experiment": ",".join(ARMS), "seed": "0,1,2"},
    )
    num = 0
    for arm in ARMS:
        for seed, acc in enumerate(ACC[arm]):
            frames = 100_000.0 + 10_000 * seed
            overrides = [f"experiment={arm}", f"seed={seed}", "sweep=ablation", *DATA]
            write_run(sweep, num, overrides, metrics_json(acc, train_frames_per_s=frames))
            num += 1
    return sweep


def _section(markdown: str, title: str) -> str:
    """The text of one ``## title`` section."""
    return markdown.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def _rows(section: str) -> list[list[str]]:
    """The cells of a Markdown table's body rows in ``section``."""
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[1:]]


def test_the_ablation_lists_the_paper_arms_in_sweep_order_with_the_papers_numbers(
    tmp_path: Path,
) -> None:
    sweep = ablation_sweep(tmp_path)
    assert report_main([str(sweep)]) == 0

    table = pd.read_csv(sweep / "report.csv")
    assert list(table["config"]) == [f"experiment={arm}" for arm in ARMS]  # not by score
    assert list(table["name"]) == [PAPER_ARMS[arm].name for arm in ARMS]
    assert table["paper"].iloc[:3].tolist() == pytest.approx([0.677, 0.713, 0.7542])
    assert math.isnan(table["paper"].iloc[3])  # modified + PE: a figure, no number
    assert table.set_index("config")["best"].to_dict()["experiment=baseline_pe"]

    markdown = (sweep / "report.md").read_text()
    scores = _section(markdown, "Scores")
    header = scores.splitlines()[2]
    assert header == (
        "| configuration | overrides | runs | val acc, best epoch | paper | val acc, last epoch "
        "| val balanced acc, last epoch | val macro F1, last epoch |"
    )
    assert "train frames" not in scores  # speed has its own section
    rows = _rows(scores)
    assert [r[0] for r in rows] == [
        "original DBM",
        "modified DBM",
        "original DBM + positional encoding **(best)**",
        "modified DBM + positional encoding",
    ]
    assert rows[0][1:6] == [
        "`experiment=baseline`",
        "3",
        "72.00 ± 1.00",
        "67.7 (their lab data)",
        "70.00 ± 1.00",
    ]
    assert rows[2][4] == "75.42 (DBM sample)" and rows[3][4] == "(figure only)"
    assert "*best epoch* (`val_best/*`): the validation scores of the epoch kept as best" in scores
    assert "*last epoch* (`val/*`): after the last epoch" in scores
    assert "section 6.1" in scores and "Fig. 10" in scores  # where the paper's numbers are

    per_seed = _rows(_section(markdown, "Per seed: val acc, best epoch (%)"))
    assert per_seed[0] == ["original DBM", "71.00", "72.00", "73.00", "72.00 ± 1.00"]
    assert per_seed[3] == [
        "modified DBM + positional encoding",
        "75.00",
        "74.00",
        "76.00",
        "75.00 ± 1.00",
    ]
    assert "| configuration | seed 0 | seed 1 | seed 2 | mean ± std |" in markdown

    speed = _section(markdown, "Speed")
    assert speed.splitlines()[2] == (
        "| configuration | runs | train frames/s | fit time | run time | epochs |"
    )
    assert _rows(speed)[0] == [
        "original DBM",
        "3",
        "110,000 ± 10,000",
        "80.0 ± 0.0 s",
        "90.0 ± 0.0 s",
        "100",
    ]
    assert "The 12 finished runs took 18.0 min of run time in all." in speed

    seeds = pd.read_csv(sweep / "per_seed.csv")
    assert len(seeds) == 12
    assert list(seeds["replicate"][:3]) == ["seed 0", "seed 1", "seed 2"]
    assert seeds["val_best/acc"].tolist()[:3] == pytest.approx(ACC["baseline"])
    assert (sweep / "comparison.png").stat().st_size > 5000


def test_command_line_sweeps_keep_their_order_and_show_only_what_varies(tmp_path: Path) -> None:
    """Values typed on the command line, not sorted (lr 0.01 before 0.001, tcn before
    bilstm), a command-line seed list replacing the sweep file's, constant keys left out."""
    sweep = tmp_path / "sweep"
    task = ["model=tcn,bilstm", "optim.lr=0.01,0.001", "seed=1,0", *DATA]
    write_multirun(sweep, task, params={"seed": "0,1,2"})
    num = 0
    for model in ("bilstm", "tcn"):  # run folders in another order than the sweep's
        for lr in ("0.001", "0.01"):
            for seed in (0, 1):
                acc = 0.5 + 0.1 * (model == "bilstm") + 0.01 * seed + float(lr)
                overrides = [f"model={model}", f"optim.lr={lr}", f"seed={seed}", *DATA]
                write_run(sweep, num, overrides, metrics_json(acc))
                num += 1

    assert report_main([str(sweep)]) == 0
    table = pd.read_csv(sweep / "report.csv")
    assert list(table["config"]) == [
        "model=tcn,optim.lr=0.01",
        "model=tcn,optim.lr=0.001",
        "model=bilstm,optim.lr=0.01",
        "model=bilstm,optim.lr=0.001",
    ]
    markdown = (sweep / "report.md").read_text()
    rows = _rows(_section(markdown, "Scores"))
    assert rows[0][0] == "`model=tcn, optim.lr=0.01`"  # the sweep's key order, no constant key
    assert "| configuration | runs |" in markdown  # no overrides column: the names are them
    assert "paper" not in _section(markdown, "Scores").splitlines()[2]  # not the paper's arms
    assert "**(best)**" in rows[2][0]
    # seeds in natural order, though the sweep typed seed=1,0
    assert "| configuration | seed 0 | seed 1 | mean ± std |" in markdown
    assert "Every run: `data=dbm_mat data.path=/data/DBM_sample_data.mat" in markdown


def test_without_a_multirun_yaml_configurations_are_sorted(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for num, (lr, seed) in enumerate([("0.1", 10), ("0.01", 2), ("0.1", 2), ("0.01", 10)]):
        write_run(root, num, [f"optim.lr={lr}", f"seed={seed}"], metrics_json(0.5 + float(lr)))
    assert report_main([str(root)]) == 0
    assert list(pd.read_csv(root / "report.csv")["config"]) == ["optim.lr=0.01", "optim.lr=0.1"]
    assert "| configuration | seed 2 | seed 10 | mean ± std |" in (root / "report.md").read_text()


def test_a_single_run_shows_its_value_without_a_spread(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    write_multirun(sweep, ["experiment=modified_pe,baseline", "seed=0", *DATA], params=None)
    write_run(sweep, 0, ["experiment=modified_pe", "seed=0", *DATA], metrics_json(0.55))
    write_run(sweep, 1, ["experiment=baseline", "seed=0", *DATA], metrics_json(0.53))
    assert report_main([str(sweep)]) == 0
    rows = _rows(_section((sweep / "report.md").read_text(), "Scores"))
    assert [r[0] for r in rows] == ["modified DBM + positional encoding **(best)**", "original DBM"]
    assert rows[1][3:5] == ["53.00", "67.7 (their lab data)"]
    assert "## Per seed" not in (sweep / "report.md").read_text()  # one value each: no table
    text = sweep_summary(sweep, write=False)
    assert "(val_best/acc, in %): one run per configuration:" in text


def test_held_out_sweeps_keep_the_anchor_comparison_and_show_each_fold(tmp_path: Path) -> None:
    sweep = tmp_path / "heldout"
    write_multirun(
        sweep,
        ["sweep=heldout"],
        params={"model": "bilstm,random_forest,majority", "split.fold": "0,1,2"},
    )
    scores = {"bilstm": [0.7, 0.6, 0.8], "random_forest": [0.5, 0.65, 0.6], "majority": [0.2] * 3}
    num = 0
    for model, values in scores.items():
        for fold, f1 in enumerate(values):
            heldout = {"heldout/macro_f1": f1, "heldout/balanced_acc": f1}
            metrics = metrics_json(0.6, heldout=heldout)
            metrics["val_best"] |= {"macro_f1": 0.5, "balanced_acc": 0.55, "epoch": 7}
            write_run(
                sweep, num, [f"model={model}", f"split.fold={fold}", "sweep=heldout"], metrics
            )
            num += 1

    assert report_main([str(sweep), "--metric", "val/macro_f1"]) == 0
    markdown = (sweep / "report.md").read_text()
    rows = _rows(_section(markdown, "Scores"))
    assert [r[0].split()[0] for r in rows] == [
        "`model=bilstm`",
        "`model=random_forest`",
        "`model=majority`",
    ]
    header = _section(markdown, "Scores").splitlines()[2]
    assert header.startswith("| configuration | runs | held-out macro F1 | held-out balanced acc |")
    assert "| val acc, best epoch | val balanced acc, best epoch | val macro F1, best epoch |" in (
        header
    )
    assert _rows(_section(markdown, "Scores"))[0][4:7] == [
        "60.00 ± 0.00",
        "55.00 ± 0.00",
        "50.00 ± 0.00",
    ]
    per_fold = _rows(_section(markdown, "Per fold: held-out macro F1 (%)"))
    assert per_fold[0] == ["`model=bilstm`", "70.00", "60.00", "80.00", "70.00 ± 10.00"]
    assert "## Per fold: val macro F1, last epoch (%)" in markdown
    comparison = _section(markdown, "Against the anchors")
    assert "| `model=bilstm` | `model=random_forest` | 1.200 | 2 of 3 |" in comparison


def _failing_sweep(root: Path) -> Path:
    """The ablation with baseline seed 1 failed and the modified_pe jobs never started."""
    sweep = root / "ablation"
    write_multirun(
        sweep,
        ["sweep=ablation", "seed=0,1", *DATA],
        params={"experiment": ",".join(ARMS), "seed": "0,1,2"},
    )
    num = 0
    for arm in ARMS[:3]:
        for seed in (0, 1):
            overrides = [f"experiment={arm}", f"seed={seed}", "sweep=ablation", *DATA]
            if arm == "baseline" and seed == 1:
                write_run(sweep, num, overrides, error="CUDA out of memory")
            else:
                write_run(sweep, num, overrides, metrics_json(ACC[arm][seed]))
            num += 1
    return sweep


def test_sweep_summary_writes_the_report_and_says_what_did_not_finish(tmp_path: Path) -> None:
    sweep = _failing_sweep(tmp_path)
    text = sweep_summary(sweep)
    lines = text.splitlines()
    assert lines[0] == f"Sweep {sweep}: 8 runs (5 finished, 1 failed, 2 never started)."
    assert "Note: 2 planned jobs never started (see the failed runs)." in lines
    assert "val acc, best epoch (val_best/acc, in %): mean ± std, then per seed (0 / 1):" in lines
    body = [line.strip() for line in lines if line.startswith("  ")]  # sweep order
    assert [row.split("   ")[0] for row in body] == [PAPER_ARMS[arm].name for arm in ARMS]
    assert body[0].endswith("71.00   71.00 / failed   paper 67.7 (their lab data)   (1 failed)")
    assert "60.00 /  62.00   paper 71.3" in body[1]
    assert "no run finished" in body[3] and body[3].endswith("(2 never started)")
    assert "Best by mean val_best/acc: original DBM + positional encoding." in lines
    assert f"dbm-report {sweep}" in lines[-1] and str(sweep / "report.md") in lines[-1]
    for name in ("report.md", "report.csv", "per_seed.csv", "failed.csv", "comparison.png"):
        assert (sweep / name).is_file(), name
    assert len(pd.read_csv(sweep / "failed.csv")) == 3


def test_sweep_summary_without_writing_and_on_what_cannot_be_read(tmp_path: Path) -> None:
    sweep = _failing_sweep(tmp_path)
    text = sweep_summary(sweep, write=False)
    assert not (sweep / "report.md").exists()
    assert (
        text.splitlines()[-1] == f"Full report (per seed, speed, failed runs): dbm-report {sweep}"
    )

    assert (
        sweep_summary(tmp_path / "gone") == f"dbm-report: {tmp_path / 'gone'}: no such directory\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no runs below it" in sweep_summary(empty)

    failed = tmp_path / "all_failed"
    write_multirun(failed, ["seed=0,1"], params=None)
    write_run(failed, 0, ["seed=0"], error="boom")
    (failed / "1" / ".hydra").mkdir(parents=True)  # started, then killed: only .hydra/
    (failed / "1" / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (failed / "1" / ".hydra" / "config.yaml").write_text("seed: 0\n")
    text = sweep_summary(failed)
    assert "2 runs (1 failed, 1 never started)" in text
    assert "No run finished." in (failed / "report.md").read_text()

    blocked = _failing_sweep(tmp_path / "blocked")
    (blocked / "report.md").mkdir()  # the report cannot be written there
    text = sweep_summary(blocked)
    assert "The report could not be written to" in text and f"dbm-report {blocked}" in text
    assert "original DBM" in text  # the summary itself still comes


def test_dbm_report_summary_flag_prints_the_short_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = ablation_sweep(tmp_path)
    assert report_main([str(sweep), "--summary"]) == 0
    out = capsys.readouterr().out
    assert "## Scores" not in out
    assert "original DBM + positional encoding   80.00 ± 2.00   78.00 / 80.00 / 82.00" in out
    assert f"markdown: {sweep / 'report.md'}" in out
