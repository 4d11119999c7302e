"""After prediction: time budgets, bouts and transitions computed by hand, the group
statistics on tables with a known effect and a known null, and ``dbm-summarise`` on prediction
folders (the simulator's true behaviours with a behaviour held steady, and bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import dbm_lightning.summarise.stats as group_stats
from dbm_lightning.cli.summarise import main as summarise_main
from dbm_lightning.errors import DataFormatError
from dbm_lightning.summarise.budget import (
    PredictedSessions,
    read_predictions,
    session_metadata,
    time_budget,
    transition_matrices,
    transition_table,
)
from dbm_lightning.summarise.report import SUMMARY_FILE, summarise


def _meta(names: list[str], **columns) -> pd.DataFrame:
    table = pd.DataFrame({"session": names, "mouse": names, "day": None, "condition": None})
    for key, values in columns.items():
        table[key] = values
    return table


def test_time_budget_by_hand() -> None:
    # a: frames 0-1 and 7-8 (2 bouts); b: 2-4, then invalid 5, then 6 (2 bouts); c: never
    code = np.array([0, 0, 1, 1, 1, -1, 1, 0, 0])
    table = time_budget([code], ["a", "b", "c"], _meta(["s1"]), fps=2.0).set_index("behaviour")
    assert table.loc["a", "frames"] == 4 and table.loc["b", "frames"] == 4
    assert (table["valid_frames"] == 8).all() and (table["invalid_frames"] == 1).all()
    np.testing.assert_allclose(table["percent_time"], [50.0, 50.0, 0.0])
    assert table.loc["a", "bouts"] == 2 and table.loc["b", "bouts"] == 2
    assert table.loc["b", "mean_bout_frames"] == 2.0 and table.loc["b", "median_bout_frames"] == 2
    assert table.loc["b", "mean_bout_s"] == 1.0
    assert table.loc["a", "latency_frames"] == 0 and table.loc["b", "latency_s"] == 1.0
    assert table.loc["c", "bouts"] == 0
    # every bout here touches an end of the session or the invalid frame
    assert table.loc["a", "cut_bouts"] == 2 and table.loc["b", "cut_bouts"] == 2
    inner = time_budget([np.array([0, 1, 1, 0])], ["a", "b"], _meta(["s2"]), fps=1.0)
    assert inner.set_index("behaviour").loc["b", "cut_bouts"] == 0
    assert table.loc["c", ["mean_bout_s", "latency_s"]].isna().all()
    assert list(table.columns[:4]) == ["session", "mouse", "day", "condition"]


def test_transitions_by_hand() -> None:
    # runs: 0, 1, (invalid), 1, 2, 0 -> 0->1, 1->2, 2->0; none across the invalid gap
    code = np.array([0, 0, 1, 1, -1, 1, 2, 2, 0])
    counts = transition_matrices([code], 3)[0]
    expected = np.zeros((3, 3), dtype=int)
    expected[0, 1] = expected[1, 2] = expected[2, 0] = 1
    np.testing.assert_array_equal(counts, expected)
    two = np.array([0, 1, 0, 2, 0, 1])  # from 0: twice to 1, once to 2
    table = transition_table([two], ["a", "b", "c"], _meta(["s"]))
    assert len(table) == 6  # every ordered pair of different states
    p = table.set_index(["from", "to"])["probability"]
    assert p[("a", "b")] == pytest.approx(2 / 3) and p[("a", "c")] == pytest.approx(1 / 3)
    assert p[("b", "a")] == 1.0 and p[("b", "c")] == 0.0
    assert table.groupby("from")["probability"].sum().round(9).tolist() == [1.0, 1.0, 1.0]


def test_bh_matches_the_hand_computation() -> None:
    # sorted 0.01, 0.03, 0.04 (m = 3): 0.03, 0.045 -> 0.04 (monotone), 0.04
    np.testing.assert_allclose(
        group_stats.bh_correct([0.01, 0.04, 0.03, np.nan]), [0.03, 0.04, 0.04, np.nan]
    )


def _study(
    seed: int = 0,
    mice: int = 6,
    days: int = 7,
    conditions=("control", "experimental"),
    slope: float = 2.0,
    sessions_per_day: int = 1,
) -> pd.DataFrame:
    """A time-budget-like table: ``learns`` rises by ``slope`` % a day in every condition but
    the first; ``steady`` only varies by mouse and noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for ci, cond in enumerate(conditions):
        for m in range(mice):
            mouse = f"{cond[:1]}{m}"
            base = rng.normal(10.0, 2.0)
            for day in range(1, days + 1):
                for trial in range(sessions_per_day):
                    learns = base + (slope * (day - 1) if ci > 0 else 0.0) + rng.normal(0, 1.0)
                    steady = base + rng.normal(0, 1.0)
                    for name, value in (("learns", learns), ("steady", steady)):
                        rows.append(
                            {
                                "session": f"{mouse}_d{day}_{trial}",
                                "mouse": mouse,
                                "day": day,
                                "condition": cond,
                                "behaviour": name,
                                "percent_time": value,
                            }
                        )
    return pd.DataFrame(rows)


def test_mixed_model_finds_the_interaction_and_not_the_null() -> None:
    table = _study()
    mixed = group_stats.mixed_model_tests(table).set_index("behaviour")
    assert mixed.loc["learns", "reference"] == "control"
    assert mixed.loc["learns", "p_bh"] < 1e-6
    low, high = mixed.loc["learns", ["ci_low_experimental", "ci_high_experimental"]]
    assert low < 2.0 < high  # the simulated slope difference
    assert mixed.loc["learns", "change_over_days_experimental"] == pytest.approx(
        6 * mixed.loc["learns", "slope_difference_experimental"]
    )
    assert mixed.loc["steady", "p"] > 0.05
    assert mixed.loc["steady", "df"] == 1 and bool(mixed.loc["learns", "converged"])


def test_mixed_model_three_conditions_is_one_test_with_two_df() -> None:
    table = _study(conditions=("a", "b", "c"), mice=4, days=4)
    mixed = group_stats.mixed_model_tests(table, reference="b").set_index("behaviour")
    assert mixed.loc["learns", "df"] == 2
    # b and c both rise; a does not: against b, a's slope difference is about -2, c's about 0
    assert mixed.loc["learns", "slope_difference_a"] == pytest.approx(-2.0, abs=0.5)
    assert mixed.loc["learns", "slope_difference_c"] == pytest.approx(0.0, abs=0.5)
    with pytest.raises(ValueError, match="reference condition 'z'"):
        group_stats.mixed_model_tests(table, reference="z")


def test_within_day_tests_match_scipy() -> None:
    table = _study(mice=5, days=2)
    values = group_stats.mouse_day_values(table)
    welch = group_stats.within_day_tests(table, test="welch")
    assert len(welch) == 2 * 2  # behaviours x days, one pair of conditions
    row = welch[(welch["behaviour"] == "learns") & (welch["day"] == 2)].iloc[0]
    day2 = values[(values["behaviour"] == "learns") & (values["day"] == 2)]
    a = day2.loc[day2["condition"] == "control", "value"].to_numpy()
    b = day2.loc[day2["condition"] == "experimental", "value"].to_numpy()
    assert row["p"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert (row["test"], row["effect"]) == ("Welch's t", "Hedges' g")
    assert row["effect_size"] < 0  # experimental (condition_b) is higher
    u = group_stats.within_day_tests(table)
    row = u[(u["behaviour"] == "learns") & (u["day"] == 2)].iloc[0]
    res = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert row["p"] == pytest.approx(res.pvalue)
    assert row["effect_size"] == pytest.approx(2 * res.statistic / (a.size * b.size) - 1)


def test_sessions_of_a_day_are_averaged_per_mouse() -> None:
    table = _study(mice=3, days=2, sessions_per_day=3)
    values = group_stats.mouse_day_values(table)
    assert len(values) == 2 * 2 * 3 * 2  # behaviours x conditions x mice x days
    one = table[(table["mouse"] == "c0") & (table["day"] == 1) & (table["behaviour"] == "steady")]
    got = values[
        (values["mouse"] == "c0") & (values["day"] == 1) & (values["behaviour"] == "steady")
    ]["value"].item()
    assert got == pytest.approx(one["percent_time"].mean())


def test_mixed_model_with_a_condition_that_never_has_a_value() -> None:
    table = _study(conditions=("control", "experimental", "sham"), mice=3, days=3)
    # a latency no sham mouse has (never showed the behaviour): modelled without sham
    table.loc[(table["condition"] == "sham") & (table["behaviour"] == "learns"), "percent_time"] = (
        np.nan
    )
    table.loc[
        (table["condition"] == "control") & (table["behaviour"] == "steady"), "percent_time"
    ] = np.nan
    mixed = group_stats.mixed_model_tests(table).set_index("behaviour")
    assert mixed.loc["learns", "df"] == 1 and np.isfinite(mixed.loc["learns", "p"])
    assert "too few values in sham" in mixed.loc["learns", "note"]
    assert np.isnan(mixed.loc["learns", "slope_difference_sham"])
    assert np.isnan(mixed.loc["steady", "p"])
    assert "reference condition 'control'" in mixed.loc["steady", "note"]
    assert np.isfinite(mixed.loc["learns", "condition_p_bh"])


def test_statistics_refuse_what_cannot_be_compared() -> None:
    one = _study(conditions=("control",))
    with pytest.raises(ValueError, match="one condition only"):
        group_stats.within_day_tests(one)
    few = _study(mice=1)
    assert "fewer than two mice" in group_stats.untestable_reason(group_stats.mouse_day_values(few))
    with pytest.raises(ValueError, match="one day only"):
        group_stats.mixed_model_tests(_study(days=1))
    with pytest.raises(ValueError, match="test must be"):
        group_stats.within_day_tests(_study(), test="anova")


# --------------------------------------------------------------------------------------------
# prediction folders
# --------------------------------------------------------------------------------------------


def _write_prediction(
    folder: Path,
    sessions: dict[str, tuple[np.ndarray, np.ndarray]],
    classes: list[str],
    sources: dict[str, Path],
    fps: float = 30.0,
    microstates: dict[str, np.ndarray] | None = None,
) -> Path:
    """A folder in dbm-predict's layout: frames tables (frame, label, microstate, valid)
    and summary.json naming each session's pose file."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, (labels, valid) in sessions.items():
        table = pd.DataFrame(
            {
                "frame": np.arange(labels.size),
                "label": labels,
                "microstate": (microstates or {}).get(name, -1),
                "valid": valid,
            }
        )
        path = folder / f"{name}.frames.csv"
        table.to_csv(path, index=False)
        rows.append({"name": name, "source": str(sources[name]), "frames_file": str(path)})
    summary = {
        "class_names": classes,
        "fps": fps,
        "sessions": rows,
        "microstates": 4 if microstates else None,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture(scope="module")
def steady_study(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The simulator's true behaviours as a perfect model's prediction: 8 mice x 7 days,
    experimental mice learn the centre port, grooming held steady."""
    from dbm_lightning.synthetic import TRUE_BEHAVIOURS, SyntheticConfig, write_dataset

    config = SyntheticConfig(mice=8, days=7, frames=3000, seed=3, steady=("grooming",))
    data = write_dataset(tmp_path_factory.mktemp("steady"), config)
    manifest = pd.read_csv(data / "manifest.csv")
    sessions, sources = {}, {}
    classes = list(TRUE_BEHAVIOURS)
    for path in manifest["path"]:
        name = path.removesuffix(".csv")
        labels = pd.read_csv(data / f"{name}.labels.csv")["label"].to_numpy(str)
        valid = np.ones(labels.size, dtype=bool)
        valid[::50] = False  # a few invalid frames, left out of every count
        sessions[name] = (labels, valid)
        sources[name] = data / path
    pred = _write_prediction(tmp_path_factory.mktemp("pred") / "p", sessions, classes, sources)
    return {"data": data, "pred": pred, "classes": classes}


def test_summarise_finds_the_centre_port_shift_and_not_the_steady_behaviour(
    steady_study: dict, tmp_path: Path
) -> None:
    record = summarise(steady_study["pred"], tmp_path / "out")
    assert record["conditions"] == {"control": 4, "experimental": 4}
    assert record["days"] == list(range(1, 8))
    assert "centre_port" in record["interaction_significant"]
    assert "grooming" not in record["interaction_significant"]
    mixed = pd.read_csv(tmp_path / "out" / "mixed_model.csv").set_index("behaviour")
    assert mixed.loc["centre_port", "slope_difference_experimental"] > 2.0  # 20 % over 6 days
    assert mixed.loc["grooming", "p_bh"] > 0.05
    budget = pd.read_parquet(tmp_path / "out" / "time_budget.parquet")
    assert len(budget) == 56 * len(steady_study["classes"])
    assert (budget["invalid_frames"] == 60).all()  # every 50th of 3,000 frames
    for name in ("by_day.png", "transition_graph.png", "within_day_tests.csv", "summary.md"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "Significant interaction (p_bh < 0.05): centre_port" in text
    assert "| grooming |" in text and "day 7" in text  # the within-day p_bh grid
    assert "smallest p the exact U test can give is 0.0286" in text
    written = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())["files"]
    assert sorted(written) == sorted(p.name for p in (tmp_path / "out").iterdir())


def test_without_steady_the_simulator_changes_grooming_too() -> None:
    """The negative control is a real one: the same mice and seed without ``steady`` lose
    grooming time as the centre port rises, and the mixed model sees it."""
    from dbm_lightning.synthetic import TRUE_BEHAVIOURS, SyntheticConfig
    from dbm_lightning.synthetic.model import condition_of, mouse_names
    from dbm_lightning.synthetic.sessions import session_data

    config = SyntheticConfig(mice=8, days=7, frames=3000, seed=3)
    codes, rows = [], []
    for mi, mouse in enumerate(mouse_names(config.mice)):
        for day in range(1, config.days + 1):
            codes.append(session_data(config, mi, day).labels)
            rows.append((f"{mouse}_day{day}", mouse, day, condition_of(mi, config.mice)))
    meta = pd.DataFrame(rows, columns=["session", "mouse", "day", "condition"])
    budget = time_budget(codes, TRUE_BEHAVIOURS, meta, config.fps)
    mixed = group_stats.mixed_model_tests(budget).set_index("behaviour")
    assert mixed.loc["grooming", "p_bh"] < 0.05
    assert mixed.loc["grooming", "slope_difference_experimental"] < 0
    assert mixed.loc["centre_port", "p_bh"] < 1e-6


def test_metadata_from_a_manifest_a_pattern_or_the_names(
    steady_study: dict, tmp_path: Path
) -> None:
    pred = read_predictions(steady_study["pred"])
    assert isinstance(pred, PredictedSessions) and len(pred.names) == 56
    beside = session_metadata(pred)  # the manifest.csv beside the pose files
    assert beside.loc[0, ["mouse", "day", "condition"]].tolist() == ["m01", 1, "experimental"]
    by_name = session_metadata(pred, pattern="{mouse}_day{day}")
    assert by_name["condition"].isna().all() and by_name["day"].tolist() == beside["day"].tolist()
    study = tmp_path / "study.csv"
    table = pd.read_csv(steady_study["data"] / "manifest.csv").assign(cage=lambda t: t.index % 2)
    table["path"] = [str(steady_study["data"] / p) for p in table["path"]]
    table.to_csv(study, index=False)
    extra = session_metadata(pred, manifest=study)
    assert list(extra.columns) == ["session", "mouse", "day", "condition", "cage"]
    table.iloc[1:].to_csv(study, index=False)
    with pytest.raises(DataFormatError, match="no row for session"):
        session_metadata(pred, manifest=study)
    with pytest.raises(DataFormatError, match="do not match pattern"):
        session_metadata(pred, pattern="{mouse}_week{day}")


@pytest.fixture
def small_study(tmp_path: Path) -> Path:
    """A small prediction folder with statistics to make: 4 mice (2 per condition) x 2 days
    of 300 random frames of 3 states, mouse/day/condition in the manifest.csv beside the
    (unread) pose files."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    src.mkdir()
    rows, sessions, sources = ["path,mouse,day,condition"], {}, {}
    for m in range(4):
        for day in (1, 2):
            name = f"m{m}_day{day}"
            rows.append(f"{name}.csv,m{m},{day},{'control' if m < 2 else 'treated'}")
            states = np.repeat(rng.integers(0, 3, 30), 10)
            sessions[name] = (np.array(["a", "b", "c"])[states], np.ones(300, bool))
            sources[name] = src / f"{name}.csv"
    (src / "manifest.csv").write_text("\n".join(rows) + "\n")
    return _write_prediction(tmp_path / "pred", sessions, ["a", "b", "c"], sources)


def test_a_mistake_writes_nothing_and_a_rerun_replaces_its_own_files(
    small_study: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="reference condition 'contrl'"):
        summarise(small_study, out, reference="contrl")
    with pytest.raises(ValueError, match="unknown label 'jumping'"):
        summarise(small_study, out, snippets=["jumping"])
    assert not out.exists() or not any(out.iterdir())
    summarise(small_study, out)  # with statistics
    assert (out / "mixed_model.csv").is_file()
    record = summarise(small_study, out, pattern="{mouse}_day{day}")  # no condition
    assert "mixed_model.csv" in record["removed"] and not (out / "mixed_model.csv").exists()
    assert (out / "by_day.png").is_file()  # days without conditions: one line, all mice
    assert summarise(small_study, out)["status"] == "complete"  # and back: nothing is foreign
    assert (out / "mixed_model.csv").is_file()


def test_a_run_that_fails_half_way_does_not_block_the_next(
    small_study: Path, steady_study: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbm_lightning.summarise import report

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    out = tmp_path / "out"
    monkeypatch.setattr(report, "by_day_figure", disk_full)  # after the tables are written
    with pytest.raises(OSError, match="No space"):
        summarise(small_study, out)
    record = json.loads((out / SUMMARY_FILE).read_text())
    assert record["status"] == "incomplete" and (out / "time_budget.csv").is_file()
    monkeypatch.undo()
    assert summarise(small_study, out)["status"] == "complete"
    # a pose file that is not the predicted one is refused before anything is written
    other = tmp_path / "other"
    with pytest.raises(DataFormatError, match="not the file it was predicted from"):
        pred = read_predictions(steady_study["pred"])
        short = tmp_path / "short.csv"
        lines = pred.sources[0].read_text().splitlines(keepends=True)
        short.write_text("".join(lines[:-10]))
        summary = json.loads((steady_study["pred"] / "summary.json").read_text())
        summary["sessions"][0]["source"] = str(short)
        moved = tmp_path / "moved"
        moved.mkdir()
        for f in steady_study["pred"].glob("*.frames.csv"):
            (moved / f.name).symlink_to(f)
        for entry in summary["sessions"]:
            entry["frames_file"] = str(moved / Path(entry["frames_file"]).name)
        (moved / "summary.json").write_text(json.dumps(summary))
        summarise(moved, other, trajectories=True)
    assert not other.exists() or not any(other.iterdir())


def test_manifest_columns_that_clash_are_refused(steady_study: dict, tmp_path: Path) -> None:
    pred = read_predictions(steady_study["pred"])
    table = pd.read_csv(steady_study["data"] / "manifest.csv")
    table["path"] = [str(steady_study["data"] / p) for p in table["path"]]
    table["session"] = "x"
    study = tmp_path / "study.csv"
    table.to_csv(study, index=False)
    with pytest.raises(DataFormatError, match="column 'session' is a column of the summary"):
        session_metadata(pred, manifest=study)
    twice = pd.concat([table.drop(columns="session")] * 2)
    twice["path"] = [f"{d}/{Path(p).name}" for d in ("a", "b") for p in table["path"]]
    twice.to_csv(study, index=False)
    with pytest.raises(DataFormatError, match="several rows have the file name"):
        session_metadata(pred, manifest=study)


def test_label_names_that_look_like_missing_values(tmp_path: Path) -> None:
    labels = np.array(["NA", "NA", "None", "01", "NA"])
    pred = _write_prediction(tmp_path / "p", {"s": (labels, np.ones(5, bool))},
                             ["NA", "None", "01"], {"s": tmp_path})  # fmt: skip
    read = read_predictions(pred)
    np.testing.assert_array_equal(read.codes[0], [0, 0, 1, 2, 0])


def test_one_condition_writes_the_budget_and_says_why_no_statistics(tmp_path: Path) -> None:
    labels = np.array(["a"] * 10 + ["b"] * 5)
    pose = tmp_path / "x.csv"
    pred = _write_prediction(
        tmp_path / "p", {"rat1": (labels, np.ones(15, bool))}, ["a", "b"], {"rat1": pose}
    )
    summary = json.loads((pred / "summary.json").read_text())
    summary["skipped"] = [{"path": "broken.csv", "reason": "broken.csv: not a DeepLabCut file"}]
    (pred / "summary.json").write_text(json.dumps(summary))
    record = summarise(pred)
    assert record["statistics_skipped"] == "no session has a mouse, a day and a condition"
    assert (
        "dbm-predict skipped 1 file(s)**, not in this summary: `broken.csv`"
        in (pred / "summary" / "summary.md").read_text()
    )
    out = pred / "summary"
    assert (out / "time_budget.csv").is_file() and not (out / "mixed_model.csv").exists()
    assert "Not computed: no session has a mouse" in (out / "summary.md").read_text()
    budget = pd.read_csv(out / "time_budget.csv")
    assert budget["mouse"].tolist() == ["rat1", "rat1"]  # no metadata: the session name
    summarise(pred)  # a second run replaces the files it wrote
    # without the record the files are no summary's: nothing is overwritten
    (out / SUMMARY_FILE).unlink()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(DataFormatError, match="not written by dbm-summarise"):
        summarise(pred)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_labelled_videos_of_chosen_sessions(tmp_path: Path) -> None:
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    from dbm_lightning.synthetic import TRUE_BEHAVIOURS, SyntheticConfig, write_dataset

    data = write_dataset(tmp_path / "data", SyntheticConfig(mice=1, days=1, frames=60, seed=2))
    labels = pd.read_csv(data / "m01_day1.labels.csv")["label"].to_numpy(str)
    sessions = {"m01_day1": (labels, np.ones(60, bool))}
    sources = {"m01_day1": data / "m01_day1.csv"}
    pred = _write_prediction(tmp_path / "p", sessions, list(TRUE_BEHAVIOURS), sources)
    with pytest.raises(ValueError, match="give the video pattern"):
        summarise(pred, overlay=["all"])
    with pytest.raises(DataFormatError, match="video of session 'm01_day1' not found"):
        summarise(pred, video="{stem}.mp4", overlay=["all"])
    assert not (pred / "summary").exists() or not any((pred / "summary").iterdir())
    writer = imageio_ffmpeg.write_frames(str(data / "m01_day1.mp4"), (640, 480), fps=30,
                                         macro_block_size=1, ffmpeg_log_level="error")  # fmt: skip
    writer.send(None)
    for _ in range(60):
        writer.send(np.zeros((480, 640, 3), np.uint8).tobytes())
    writer.close()
    record = summarise(pred, video="{stem}.mp4", overlay=["m01_day1"])
    (row,) = record["videos"]
    assert (row["frames"], row["video_ended"], row["pose_frames"]) == (60, False, 60)
    out = pred / "summary" / "videos" / "m01_day1.labelled.mp4"
    assert imageio_ffmpeg.count_frames_and_secs(str(out))[0] == 60
    assert "## Labelled videos" in (pred / "summary" / "summary.md").read_text()


def test_microstates_unit(tmp_path: Path) -> None:
    labels = np.array(["a"] * 8)
    states = np.array([0, 0, 3, 3, 1, 1, 1, -1])
    valid = states >= 0
    pred = _write_prediction(
        tmp_path / "p", {"s": (labels, valid)}, ["a"], {"s": tmp_path}, microstates={"s": states}
    )
    read = read_predictions(pred, unit="microstate")
    assert read.states == ["ms0", "ms1", "ms2", "ms3"]
    np.testing.assert_array_equal(read.codes[0], states)
    no_ms = _write_prediction(tmp_path / "q", {"s": (labels, valid)}, ["a"], {"s": tmp_path})
    with pytest.raises(DataFormatError, match="no microstates"):
        read_predictions(no_ms, unit="microstate")


def test_cli_bad_input_is_one_line_and_status_2(
    steady_study: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert summarise_main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "summary.json" in err[0] and "nowhere" in err[0]
    pred = str(steady_study["pred"])
    for args, said in (
        (["--measure", "colour"], "measure must be one of"),
        (["--snippets", "dancing"], "unknown label 'dancing'"),
        (["--manifest", str(tmp_path / "none.csv")], "none.csv"),
        (["--snippet-bouts", "0"], "--snippet-bouts"),
        (["--overlay", "m01_day1"], "give the video pattern"),
        (["--reference", "treated"], "reference condition 'treated'"),
        (["--fps", "nan"], "--fps must be a positive number"),
    ):
        assert summarise_main([pred, "--out", str(tmp_path / "o"), *args]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and said in err[0], (args, err)
    assert not (tmp_path / "o" / "time_budget.csv").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text("{not json")
    assert summarise_main([str(bad)]) == 2
    assert "malformed dbm-predict summary" in capsys.readouterr().err
