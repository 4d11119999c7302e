"""Scoring predictions against human labels: frame and bout scores computed by hand, and
``dbm-evaluate`` on a prediction folder with real label formats."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from dbm_lightning.cli.evaluate import main as evaluate_main
from dbm_lightning.evaluation import match_bouts, score_session
from dbm_lightning.session import UNLABELLED

U = UNLABELLED


def test_frame_scores_by_hand() -> None:
    true = np.array([0, 0, 0, 1, 1, U, 1, 2, 2, 2])
    pred = np.array([0, 0, 1, 1, 1, 0, 0, 2, 2, 0])
    valid = np.array([True] * 9 + [False])
    s = score_session(true, pred, ["a", "b", "c"], valid)
    assert (s.frames, s.unlabelled, s.invalid, s.scored) == (10, 1, 1, 8)
    np.testing.assert_array_equal(s.confusion, [[2, 1, 0], [1, 2, 0], [0, 0, 2]])
    rows = {r["class"]: r for r in s.per_class()}
    assert rows["a"]["precision"] == pytest.approx(2 / 3) and rows["a"]["recall"] == 2 / 3
    assert rows["c"]["precision"] == 1.0 and rows["c"]["support"] == 2
    scored = valid & (true != U)
    summary = s.summary()
    assert summary["macro_f1"] == pytest.approx(
        f1_score(true[scored], pred[scored], average="macro"), abs=1e-6
    )
    assert summary["balanced_acc"] == pytest.approx(
        balanced_accuracy_score(true[scored], pred[scored]), abs=1e-6
    )


def test_bout_scores_by_hand() -> None:
    # true bouts of class 1: [2, 6) and [10, 14); predicted: [3, 6) (IoU 3/4) and [13, 20)
    # (IoU 1/8); class 0 is everything else
    true = np.zeros(20, dtype=np.int64)
    true[2:6] = 1
    true[10:14] = 1
    pred = np.zeros(20, dtype=np.int64)
    pred[3:6] = 1
    pred[13:20] = 1
    rows = {r["class"]: r for r in score_session(true, pred, ["rest", "run"]).per_class()}
    assert (rows["run"]["true_bouts"], rows["run"]["pred_bouts"]) == (2, 2)
    assert rows["run"]["bout_precision"] == 0.5 and rows["run"]["bout_recall"] == 0.5
    # class 0: true [0,2) [6,10) [14,20); predicted [0,3) [6,13): IoUs 2/3, 4/7 -> 2 matches
    assert rows["rest"]["bout_recall"] == pytest.approx(2 / 3)
    assert rows["rest"]["bout_precision"] == 1.0
    looser = {
        r["class"]: r for r in score_session(true, pred, ["rest", "run"], iou=0.1).per_class()
    }
    assert looser["run"]["bout_f1"] == 1.0


def test_match_bouts_is_one_to_one_best_first() -> None:
    # one long predicted bout overlapping two true bouts: only one of them may match it
    ts, te = np.array([0, 10]), np.array([8, 20])
    ps, pe = np.array([0]), np.array([20])
    assert match_bouts(ts, te, ps, pe, iou=0.3) == 1
    assert match_bouts(ts, te, ps, pe, iou=0.6) == 0
    assert match_bouts(ts, te, np.array([0, 10]), np.array([8, 20]), iou=1.0) == 2


def test_scores_refuse_mismatched_input() -> None:
    with pytest.raises(ValueError, match="equal 1-D"):
        score_session(np.zeros(3), np.zeros(4), ["a"])
    with pytest.raises(ValueError, match="outside"):
        score_session(np.array([0, 3]), np.array([0, 0]), ["a", "b"])


CALTECH_HEAD = (
    "Caltech Behavior Annotator - Annotation File\n\nConfiguration file:\nbase\tz\n"
    "social\ts\nnonsocial\te\n\nS1:\tstart\tend\ttype\n-----------------------------\n"
)


def _prediction_folder(tmp: Path) -> Path:
    """Two sessions as dbm-predict writes them, their pose files named in summary.json, and
    Caltech label files beside the pose files in ../annotations."""
    dlc, ann, pred_dir = tmp / "dlc", tmp / "annotations", tmp / "pred"
    for d in (dlc, ann, pred_dir):
        d.mkdir()
    listed = []
    tables = {
        "1": (["social"] * 6 + ["nonsocial"] * 4, [True] * 10),
        "2": (["nonsocial"] * 5 + ["social"] * 5, [True] * 8 + [False] * 2),
    }
    labels = {
        "1": "\t1\t2\tbase\n\t3\t7\tsocial\n\t8\t10\tnonsocial\n",
        "2": "\t1\t4\tNonSocial\n\t5\t10\tsocial\n",
    }
    for key, (label, valid) in tables.items():
        source = dlc / f"{key}DLC_resnet50_x.csv.xz"
        source.write_bytes(b"")
        (ann / f"{key}_annot.txt").write_text(CALTECH_HEAD + labels[key])
        frames = pred_dir / f"{key}.frames.csv"
        pd.DataFrame({"frame": range(10), "label": label, "valid": valid}).to_csv(
            frames, index=False
        )
        listed.append({"name": key, "source": str(source), "frames_file": str(frames)})
    summary = {"class_names": ["social", "nonsocial"], "fps": 30.0, "sessions": listed}
    (pred_dir / "summary.json").write_text(json.dumps(summary))
    return pred_dir


def test_dbm_evaluate_on_a_prediction_folder(tmp_path: Path, capsys) -> None:
    pred_dir = _prediction_folder(tmp_path)
    code = evaluate_main(
        [str(pred_dir), "--labels", "../annotations/{base}_annot.txt", "--ignore", "base"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads((pred_dir / "evaluation" / "evaluation.json").read_text())
    # session 1: 8 scored frames (2 base), social 3-7 -> rows 2..6: pred social rows 0..5
    # session 2: rows 8, 9 invalid; true nonsocial 0..3, social 4..7; pred nonsocial 0..4
    # rows (true, pred): session 1 [[4, 1], [0, 3]], session 2 [[3, 1], [0, 4]]
    s = result["summary"]
    assert (s["frames"], s["unlabelled"], s["invalid"], s["scored"]) == (20, 2, 2, 16)
    np.testing.assert_array_equal(result["confusion"], [[4 + 3, 1 + 1], [0, 3 + 4]])
    assert s["macro_f1"] == pytest.approx(0.875)
    sessions = pd.read_csv(pred_dir / "evaluation" / "sessions.csv")
    assert sessions["scored"].tolist() == [8, 8]
    for name in ("scores.csv", "evaluation.md", "confusion.png"):
        assert (pred_dir / "evaluation" / name).stat().st_size > 0
    assert "macro F1 0.875" in out


def test_dbm_evaluate_bad_input_is_one_line(tmp_path: Path, capsys) -> None:
    pred_dir = _prediction_folder(tmp_path)
    assert evaluate_main([str(tmp_path / "nope"), "--labels", "x"]) == 2
    err = capsys.readouterr().err
    assert "no summary.json" in err and err.count("\n") == 1
    assert evaluate_main([str(pred_dir), "--labels", "{stem}.labels.csv"]) == 2
    assert "label file of session '1' not found" in capsys.readouterr().err
    assert evaluate_main([str(pred_dir), "--labels", "x", "--iou", "0"]) == 2
    assert "--iou" in capsys.readouterr().err


def test_report_compares_every_configuration_with_the_anchors_fold_by_fold() -> None:
    from dbm_lightning.analysis.report import RunRecord, paired_comparison, to_markdown

    def run(model: str, fold: int, score: float) -> RunRecord:
        return RunRecord(
            Path(f"{model}{fold}"),
            {"model": model, "split.fold": str(fold)},
            {"heldout/macro_f1": score},
            varying=("model", "split.fold"),
        )

    runs = [run("bilstm", f, s) for f, s in enumerate([0.7, 0.6, 0.8])]
    runs += [run("random_forest", f, s) for f, s in enumerate([0.5, 0.65, 0.6])]
    (row,) = paired_comparison(runs, "heldout/macro_f1", "model=random_forest")
    assert (row["config"], row["folds"], row["better"]) == ("model=bilstm", 3, 2)
    assert row["ratio"] == pytest.approx(0.7 / (1.75 / 3))
    text = to_markdown(pd.DataFrame(), pd.DataFrame(), "heldout/macro_f1", comparison=[row])
    assert "| `model=bilstm` | `model=random_forest` | 1.200 | 2 of 3 |" in text
    assert "0: 0.700 vs 0.500" in text
