"""Prediction on new sessions (dbm-predict), bouts, smoothing, microstates stored with the
model, and every figure of a run (dbm-plots).

Two tiny models are trained once per module (a few seconds each): one on the real B-SOiD
DeepLabCut clip 1 with speed-only pseudo-labels, one on synthetic files written into a temp
folder. Predictions run on sessions never seen in training (clip 2, a new synthetic seed).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import dlc_frame, write_dlc_csv

from dbm_lightning.analysis.figures import FIGURES
from dbm_lightning.analysis.microstates import Microstates
from dbm_lightning.analysis.run_microstates import (
    CHECKPOINT_KEY,
    extract_run_microstates,
    load_microstates_from_checkpoint,
)
from dbm_lightning.build import build_datamodule
from dbm_lightning.cli.plots import main as plots_main
from dbm_lightning.cli.predict import main as predict_main
from dbm_lightning.prediction import (
    bouts_table,
    merge_short_bouts,
    predict_session,
    run_lengths,
    smooth_probabilities,
)
from dbm_lightning.runs import RunDir, load_model
from dbm_lightning.training import run_training

CLIP = "raw_clip{}DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000"
SPEED_PART = "Butt/Proximal Tail"
K_REAL = 6


def _tiny_config(data: dict, labels: dict, epochs: int = 6) -> dict:
    """A plain run configuration (no Hydra) for a few-second training."""
    return {
        "seed": 0,
        "data": {"fps": 30.0, "window": 100, "stride": 50, "batch_size": 16, **data},
        "labels": labels,
        "preprocess": {},
        "features": {},
        "split": {"strategy": "leave_day_out", "val_days": [2]},
        "model": {"name": "dbm_baseline"},
        "optim": {"lr": 0.01},
        "trainer": {
            "accelerator": "cpu",
            "max_epochs": epochs,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "log_every_n_steps": 1,
        },
        "logger": {"kind": "tensorboard"},
        "callbacks": {},
        "microstates": {"enabled": False},  # fitted by the tests that need them
        "test_after_fit": False,
    }


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> None:
    """Tiny models: one torch thread is much faster than two (the machine is shared)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict:
    """A tiny model trained on the real clip 1 (CSV as day 1; day 2, for the validation loop,
    is its first 80 % of frames: the split refuses the very same recording on two sides)
    with speed-only rules; microstates fitted and stored with it."""
    clips = shared_data / "bsoid_dlc_clips"
    if not clips.is_dir():
        pytest.skip(f"real data not found at {clips}")
    folder = tmp_path_factory.mktemp("clip1")
    (folder / "c1_day1.csv").symlink_to(clips / f"{CLIP.format(1)}.csv")
    lines = (clips / f"{CLIP.format(1)}.csv").read_text().splitlines(keepends=True)
    head, rows = lines[:3], lines[3:]
    (folder / "c1_day2.csv").write_text("".join(head + rows[: int(len(rows) * 0.8)]))
    # Butt/Proximal Tail speed on clip 1: median ~46 px/s, 10 % < 9, 90 % > 174 -> 3 classes
    labels = {
        "kind": "rules",
        "zones": [],
        "speed_bodypart": SPEED_PART,
        "locomotion_speed": 100.0,
        "rest_speed": 20.0,
        "speed_smoothing": 5,
        "fps": 30.0,
    }
    cfg = _tiny_config({"source": "dlc", "path": str(folder)}, labels)
    run_dir = tmp_path_factory.mktemp("real_run")
    metrics = run_training(cfg, run_dir)
    ckpt = Path(metrics["best_checkpoint"])
    module = load_model(ckpt)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    result = extract_run_microstates(module, dm, k=K_REAL, run_dir=run_dir, ckpt_path=ckpt)
    return {"dir": run_dir, "ckpt": ckpt, "clips": clips, "result": result, "metrics": metrics}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A tiny model trained on synthetic DLC files written into a temp folder."""
    from dbm_lightning.synthetic import SyntheticConfig, write_dataset

    data = write_dataset(
        tmp_path_factory.mktemp("syn_train"), SyntheticConfig(mice=2, days=2, frames=600, seed=0)
    )
    new = write_dataset(
        tmp_path_factory.mktemp("syn_new"), SyntheticConfig(mice=1, days=2, frames=450, seed=11)
    )
    labels = {
        "kind": "rules",
        "zone_bodypart": "head",
        "speed_bodypart": "body_centre",
        "zones": [
            {"name": "left_port", "shape": "circle", "cx": 160, "cy": 30, "r": 55},
            {"name": "centre_port", "shape": "circle", "cx": 320, "cy": 30, "r": 55},
            {"name": "right_port", "shape": "circle", "cx": 480, "cy": 30, "r": 55},
        ],
        "locomotion_speed": 150.0,
        "rest_speed": 20.0,
    }
    data_cfg = {
        "source": "dlc",
        "path": str(data),
        "manifest": "manifest.csv",
        "arena": {"x_min": 0.0, "x_max": 640.0, "y_min": 0.0, "y_max": 480.0},
    }
    run_dir = tmp_path_factory.mktemp("syn_run")
    metrics = run_training(_tiny_config(data_cfg, labels, epochs=3), run_dir)
    return {"dir": run_dir, "ckpt": Path(metrics["best_checkpoint"]), "new": new}


# --------------------------------------------------------------------- hand-made sequences


def test_run_lengths_and_bouts_table() -> None:
    labels = np.array(["a", "a", "b", "b", "b", "a", "c"], dtype=object)
    starts, lengths, values = run_lengths(labels)
    assert starts.tolist() == [0, 2, 5, 6]
    assert lengths.tolist() == [2, 3, 1, 1]
    assert values.tolist() == ["a", "b", "a", "c"]
    df = bouts_table(labels, fps=10.0)
    assert list(df.columns) == ["label", "start", "end", "duration_frames", "duration_s"]
    assert df["end"].tolist() == [1, 4, 5, 6]
    assert df["duration_s"].tolist() == pytest.approx([0.2, 0.3, 0.1, 0.1])
    ints = bouts_table(np.array([0, 0, 2, 2, 1]), label_names=["x", "y", "z"])
    assert ints["label"].tolist() == ["x", "z", "y"]
    assert ints["duration_s"].isna().all()
    assert len(bouts_table(np.array([], dtype=object))) == 0


def _runs(labels: np.ndarray) -> list[tuple]:
    _, lengths, values = run_lengths(labels)
    return list(zip(values.tolist(), lengths.tolist(), strict=True))


def test_merge_short_bouts_rules() -> None:
    seq = np.repeat(list("abcd"), [5, 1, 2, 6])
    # b (1) joins the longer neighbour a; then c (2) ties a (6) / d (6) -> previous (a)
    assert _runs(merge_short_bouts(seq, 3)) == [("a", 8), ("d", 6)]
    # a short bout between two bouts of the same label fuses them
    seq = np.repeat(list("aba"), [4, 1, 3])
    assert _runs(merge_short_bouts(seq, 3)) == [("a", 8)]
    # short bouts at the ends join their only neighbour; integers work too
    seq = np.repeat([2, 0, 1], [1, 5, 2])
    assert _runs(merge_short_bouts(seq, 3)) == [(0, 8)]
    # nothing to do
    seq = np.repeat(list("ab"), [3, 3])
    assert np.array_equal(merge_short_bouts(seq, 3), seq)
    assert np.array_equal(merge_short_bouts(seq, 1), seq)
    assert _runs(merge_short_bouts(np.array(["a", "a"]), 5)) == [("a", 2)]


def test_merge_short_bouts_worst_case_is_fast_and_complete() -> None:
    rng = np.random.default_rng(0)
    seq = rng.integers(0, 4, 100_000)  # ~75,000 bouts, most of one frame
    started = time.perf_counter()
    out = merge_short_bouts(seq, 10)
    assert time.perf_counter() - started < 5.0
    assert out.shape == seq.shape
    _, lengths, _ = run_lengths(out)
    assert lengths.min() >= 10
    assert set(np.unique(out)) <= set(range(4))


def test_smooth_probabilities() -> None:
    probs = np.zeros((9, 2), dtype=np.float32)
    probs[:, 0] = 1.0
    probs[4] = [0.0, 1.0]  # a one-frame blip
    out = smooth_probabilities(probs, 3)
    assert out.shape == probs.shape
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[3:6, 1], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    assert (out.argmax(axis=1) == 0).all()  # the blip is smoothed away
    np.testing.assert_allclose(out[0], [1.0, 0.0])  # edges average over existing frames
    np.testing.assert_allclose(smooth_probabilities(probs, 0), probs)
    # even window: the extra frame is taken before
    np.testing.assert_allclose(smooth_probabilities(probs, 2)[5], [0.5, 0.5])


# ---------------------------------------------------------------------- real DLC files


def _check_frames(df: pd.DataFrame, n_frames: int, class_names: list[str], k: int) -> None:
    prob_cols = [f"prob_{c}" for c in class_names]
    assert list(df.columns) == ["frame", "label", *prob_cols, "microstate", "valid"]
    assert len(df) == n_frames
    assert df["frame"].tolist() == list(range(n_frames))
    np.testing.assert_allclose(df[prob_cols].to_numpy().sum(axis=1), 1.0, atol=1e-5)
    assert set(df["label"]) <= set(class_names)
    ms = df["microstate"].to_numpy()
    assert ms.dtype.kind == "i" and ms.min() >= -1 and ms.max() < k
    valid = df["valid"].to_numpy().astype(bool)
    assert valid.any()
    assert (ms[valid] >= 0).all() and (ms[~valid] == -1).all()


def test_microstates_saved_with_the_model(real_run: dict) -> None:
    ms = load_microstates_from_checkpoint(real_run["ckpt"])
    assert ms is not None and ms.k == K_REAL
    on_disk = Microstates.load(real_run["dir"] / "microstates")
    np.testing.assert_allclose(ms.centroids, on_disk.centroids)
    assert ms.label_names == on_disk.label_names == ("locomotion", "rest", "other")
    # stored as plain lists: the checkpoint still loads safely and as a model
    raw = torch.load(real_run["ckpt"], map_location="cpu", weights_only=True)
    assert isinstance(raw[CHECKPOINT_KEY]["centroids"], list)
    load_model(real_run["ckpt"])
    # the states assigned during extraction come from these microstates
    result = real_run["result"]
    assert [s.shape[0] for s in result.states] == [7200, 5760]  # day 2: 80 % of the clip


@pytest.mark.real_data
@pytest.mark.parametrize("suffix", ["csv", "h5"])
def test_dbm_predict_on_real_clip2(
    real_run: dict, tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture
) -> None:
    src = real_run["clips"] / f"{CLIP.format(2)}.{suffix}"
    out = tmp_path / "pred"
    rc = predict_main(
        ["--ckpt", str(real_run["ckpt"]), "--input", str(src), "--out", str(out), "--no-progress"]
    )
    assert rc == 0, capsys.readouterr().err
    frames = pd.read_csv(out / "raw_clip2.frames.csv")
    _check_frames(frames, 7200, ["locomotion", "rest", "other"], K_REAL)
    assert frames["label"].nunique() >= 2
    bouts = pd.read_csv(out / "raw_clip2.bouts.csv")
    assert bouts["duration_frames"].sum() == 7200
    assert (bouts["end"] - bouts["start"] + 1 == bouts["duration_frames"]).all()
    np.testing.assert_allclose(bouts["duration_s"], bouts["duration_frames"] / 30.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sessions"][0]["frames"] == 7200


@pytest.mark.real_data
def test_dbm_predict_folder_parquet_smoothing_min_bout(real_run: dict, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for suffix in ("csv", "h5"):  # same stem twice: the H5 is used once
        (folder / f"{CLIP.format(2)}.{suffix}").symlink_to(
            real_run["clips"] / f"{CLIP.format(2)}.{suffix}"
        )
    out = tmp_path / "pred"
    args = ["--ckpt", str(real_run["ckpt"]), "--input", str(folder), "--out", str(out)]
    rc = predict_main([*args, "--format", "parquet", "--smoothing", "15", "--min-bout", "10"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*.parquet")) == [
        "raw_clip2.bouts.parquet",
        "raw_clip2.frames.parquet",
    ]
    frames = pd.read_parquet(out / "raw_clip2.frames.parquet")
    _check_frames(frames, 7200, ["locomotion", "rest", "other"], K_REAL)
    bouts = pd.read_parquet(out / "raw_clip2.bouts.parquet")
    assert bouts["duration_frames"].min() >= 10
    assert bouts["duration_frames"].sum() == 7200
    raw = pd.read_csv(_predict_plain(real_run, tmp_path) / "raw_clip2.bouts.csv")
    assert len(bouts) < len(raw)  # smoothing + minimum bout length give fewer bouts


@pytest.mark.real_data
def test_dbm_summarise_microstates_of_a_parquet_prediction(real_run: dict, tmp_path: Path) -> None:
    """dbm-summarise on what dbm-predict wrote (Parquet): the microstates' time budget adds up to
    the valid frames and matches the frames table; a snippet of the most common microstate."""
    from PIL import Image

    from dbm_lightning.cli.summarise import main as summarise_main

    src = real_run["clips"] / f"{CLIP.format(2)}.h5"
    pred = tmp_path / "pred"
    args = ["--ckpt", str(real_run["ckpt"]), "--input", str(src), "--out", str(pred)]
    assert predict_main([*args, "--format", "parquet", "--no-progress"]) == 0
    frames = pd.read_parquet(pred / "raw_clip2.frames.parquet")
    common = int(frames.loc[frames["valid"], "microstate"].mode()[0])
    out = tmp_path / "summary"
    name = f"ms{common:0{len(str(K_REAL - 1))}d}"
    cmd = [str(pred), "--unit", "microstate", "--out", str(out), "--snippets", name]
    assert summarise_main([*cmd, "--snippet-bouts", "4"]) == 0
    budget = pd.read_csv(out / "time_budget.csv")
    assert len(budget) == K_REAL
    assert budget["frames"].sum() == budget["valid_frames"].iloc[0] == frames["valid"].sum()
    counts = frames.loc[frames["valid"], "microstate"].value_counts()
    by_state = budget.set_index("behaviour")["frames"]
    assert by_state[name] == counts[common]
    gif = Image.open(out / "snippets" / f"{name}.gif")
    assert gif.n_frames >= 2
    assert (out / "trajectories.png").stat().st_size > 0


def _predict_plain(real_run: dict, tmp_path: Path) -> Path:
    out = tmp_path / "plain"
    src = real_run["clips"] / f"{CLIP.format(2)}.h5"
    args = ["--ckpt", str(real_run["ckpt"]), "--input", str(src), "--out", str(out)]
    assert predict_main([*args, "--no-progress"]) == 0
    return out


def test_predict_session_matches_training_pipeline(real_run: dict) -> None:
    """The table's validity is the pipeline's; the prediction is the module's."""
    from dbm_lightning.data import prepare_session
    from dbm_lightning.io import load_dlc

    module = load_model(real_run["ckpt"])
    session = load_dlc(real_run["clips"] / f"{CLIP.format(2)}.csv", fps=30.0)
    df = predict_session(module, session, load_microstates_from_checkpoint(real_run["ckpt"]))
    features, valid = prepare_session(session, module.hparams["pipeline_state"])
    probs, _ = module.predict_session(features)
    assert np.array_equal(df["valid"].to_numpy(), valid)
    assert (~valid).any()  # clip 2 has low-likelihood snout/paw frames beyond the gap limit
    np.testing.assert_allclose(df[[f"prob_{c}" for c in module.class_names]], probs, atol=1e-6)


# ------------------------------------------------------------------------------ bad input


def test_missing_body_part_exits_2(
    real_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    parts = ["Snout", "Front Paw R", "Front Paw L", "Hind Paw R", "Hind Paw L"]  # no tail
    rng = np.random.default_rng(0)
    df = dlc_frame(rng.uniform(0, 400, (50, 5, 2)), np.ones((50, 5)), parts)
    bad = write_dlc_csv(tmp_path / "notail.csv", df)
    args = ["--ckpt", str(real_run["ckpt"]), "--input", str(bad), "--out", str(tmp_path)]
    rc = predict_main([*args, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "notail.csv" in err and SPEED_PART in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_empty_file_and_missing_input_exit_2(
    real_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    ckpt = str(real_run["ckpt"])
    assert predict_main(["--ckpt", ckpt, "--input", str(empty), "--out", str(tmp_path)]) == 2
    assert "empty.csv" in capsys.readouterr().err
    nowhere = tmp_path / "nowhere"
    assert predict_main(["--ckpt", ckpt, "--input", str(nowhere), "--out", str(tmp_path)]) == 2
    assert "nowhere" in capsys.readouterr().err
    bad_ckpt = ["--ckpt", str(tmp_path / "x.ckpt"), "--input", str(empty), "--out", str(tmp_path)]
    assert predict_main(bad_ckpt) == 2
    assert "x.ckpt" in capsys.readouterr().err


# ---------------------------------------------------------------------- synthetic, new seed


def test_predict_new_synthetic_sessions(synthetic_run: dict, tmp_path: Path) -> None:
    """A model trained on synthetic files predicts sessions of another seed (never seen)."""
    run_dir = synthetic_run["dir"]
    assert load_microstates_from_checkpoint(synthetic_run["ckpt"]) is None
    with pytest.warns(UserWarning, match="no microstates"):
        from dbm_lightning.prediction import predict_paths

        summary = predict_paths(synthetic_run["ckpt"], synthetic_run["new"], tmp_path / "a")
    assert all((tmp_path / "a" / f"{s['name']}.frames.csv").is_file() for s in summary["sessions"])
    assert (pd.read_csv(tmp_path / "a" / "m01_day1.frames.csv")["microstate"] == -1).all()

    # after dbm-plots (which fits and stores the microstates) the checkpoint alone has them
    assert plots_main([str(run_dir), "--k", "8"]) == 0
    figures = [run_dir / "figures" / f"{name}.png" for name in FIGURES]
    _check_figures(figures)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(RunDir(run_dir).tensorboard_dir), size_guidance={"images": 0})
    events.Reload()
    assert {f"figures/{name}" for name in FIGURES} <= set(events.Tags()["images"])
    out = tmp_path / "b"
    args = ["--ckpt", str(synthetic_run["ckpt"]), "--input", str(synthetic_run["new"])]
    assert predict_main([*args, "--out", str(out), "--no-progress"]) == 0
    names = sorted(p.name for p in out.glob("*.frames.csv"))
    assert names == ["m01_day1.frames.csv", "m01_day2.frames.csv"]  # labels/manifest skipped
    module = load_model(synthetic_run["ckpt"])
    for name in names:
        _check_frames(pd.read_csv(out / name), 450, module.class_names, 8)


def test_predict_paths_tables_are_predict_session(
    synthetic_run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast table writers give predict_session's values (probabilities to 8 decimals),
    its bouts and label shares; the checkpoint is read once per call."""
    import warnings

    from dbm_lightning import prediction
    from dbm_lightning.io import load_dlc
    from dbm_lightning.prediction import files

    ckpt = synthetic_run["ckpt"]
    reads: list[Path] = []
    real_read = files.read_checkpoint
    monkeypatch.setattr(files, "read_checkpoint", lambda p: reads.append(p) or real_read(p))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no microstates in the checkpoint (yet)
        summary = prediction.predict_paths(
            ckpt, synthetic_run["new"], tmp_path / "p", smoothing=5, min_bout=3, progress=False
        )
    assert len(reads) == 1
    module = load_model(ckpt)
    ms = load_microstates_from_checkpoint(ckpt)
    assert len(summary["sessions"]) == 2
    for entry in summary["sessions"]:
        expected = predict_session(module, load_dlc(entry["source"]), ms, 5, 3)
        got = pd.read_csv(entry["frames_file"])
        assert list(got.columns) == list(expected.columns)
        for name in expected.columns:
            if name.startswith("prob_"):
                np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=5.1e-9)
            else:
                assert got[name].tolist() == expected[name].tolist(), name
        bouts = pd.read_csv(entry["bouts_file"])
        want = bouts_table(expected["label"].to_numpy(), fps=summary["fps"])
        pd.testing.assert_frame_equal(bouts, want, check_dtype=False)
        shares = expected.loc[expected["valid"], "label"].value_counts(normalize=True)
        assert entry["label_share"] == pytest.approx(dict(shares))
        assert entry["valid_frames"] == int(expected["valid"].sum())


def test_interrupted_frames_table_leaves_the_previous_one(
    synthetic_run: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vectorised frames writer goes through write_atomic: a run cancelled while the
    text is being written leaves the previous table and no temporary file."""
    import warnings

    from dbm_lightning import prediction
    from dbm_lightning.atomic import TMP_MARKER

    out = tmp_path / "pred"
    new = synthetic_run["new"] / "m01_day1.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prediction.predict_paths(synthetic_run["ckpt"], new, out, progress=False)
        table = out / "m01_day1.frames.csv"
        before = table.read_bytes()
        real_write = Path.write_bytes

        def interrupted(self: Path, data: bytes) -> int:
            real_write(self, data[: len(data) // 2])  # half the rows reach the disk ...
            raise KeyboardInterrupt  # ... then the job is cancelled

        monkeypatch.setattr(Path, "write_bytes", interrupted)
        with pytest.raises(KeyboardInterrupt):
            prediction.predict_paths(synthetic_run["ckpt"], new, out, smoothing=9, progress=False)
    assert table.read_bytes() == before
    assert [p for p in out.iterdir() if TMP_MARKER in p.name] == []


def _check_figures(paths: list[Path]) -> None:
    import matplotlib.image as mpimg

    for p in paths:
        assert p.is_file(), p
        assert p.stat().st_size > 5_000, p
        img = mpimg.imread(p)
        colours = np.unique(img.reshape(-1, img.shape[-1])[::7], axis=0)
        assert len(colours) > 20, (p, len(colours))


def test_dbm_plots_on_real_run(real_run: dict, tmp_path: Path) -> None:
    """Without a config file dbm-plots rebuilds the data from the configuration stored in
    the checkpoint; it reuses the stored microstates and writes every figure."""
    (real_run["dir"] / "config.yaml").unlink(missing_ok=True)
    out = tmp_path / "figs"
    assert plots_main([str(real_run["dir"]), "--k", str(K_REAL), "--out", str(out)]) == 0
    _check_figures([out / f"{name}.png" for name in FIGURES])


def test_dbm_plots_bad_run_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert plots_main([str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_dbm_predict_maps_another_projects_body_parts(
    synthetic_run: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A new project names `head` `Head Top` and tracks an extra `LED`: refused with the
    missing part named, then predicted exactly as the original file with --rename/--drop."""
    source = synthetic_run["new"] / "m01_day1.csv"
    lines = source.read_text().splitlines()
    lines[1] = ",".join("Head Top" if c == "head" else c for c in lines[1].split(","))
    lines = [ln + (",LED,LED,LED" if i == 1 else ",x,y,likelihood" if i == 2 else "") for i, ln in
             enumerate(lines)]  # fmt: skip
    lines[0] += f",{lines[0].split(',')[1]}" * 3
    lines[3:] = [ln + ",1.0,2.0,0.9" for ln in lines[3:]]
    other = tmp_path / "other_project.csv"
    other.write_text("\n".join(lines) + "\n")
    ckpt = str(synthetic_run["ckpt"])
    assert predict_main(["--ckpt", ckpt, "--input", str(other), "--out", str(tmp_path / "a"),
                         "--no-progress"]) == 2  # fmt: skip
    assert "['head']" in capsys.readouterr().err
    args = ["--ckpt", ckpt, "--out", str(tmp_path / "b"), "--no-progress"]
    assert predict_main([*args, "--input", str(other), "--rename", "head top=head", "--drop",
                         "LED"]) == 0  # fmt: skip
    assert predict_main(["--ckpt", ckpt, "--input", str(source), "--out", str(tmp_path / "c"),
                         "--no-progress"]) == 0  # fmt: skip
    mapped = pd.read_csv(tmp_path / "b" / "other_project.frames.csv")
    plain = pd.read_csv(tmp_path / "c" / "m01_day1.frames.csv")
    pd.testing.assert_frame_equal(mapped, plain)
