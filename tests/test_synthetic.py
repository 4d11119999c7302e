"""The synthetic operant box: file format, determinism, kinematics, learning, noise, CLI, cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dbm_lightning.cli.synth import main as synth_main
from dbm_lightning.session import Session
from dbm_lightning.synthetic import (
    BODYPARTS,
    PORTS,
    SCORER,
    TRUE_BEHAVIOURS,
    SyntheticConfig,
    behaviour_shares,
    condition_of,
    config_key,
    ensure_dataset,
    generate_sessions,
    mouse_traits,
    session_rng,
    simulate_session,
    transition_matrix,
    write_dataset,
)
from dbm_lightning.synthetic import dataset as synthetic_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SMALL = SyntheticConfig(mice=2, days=2, frames=1500, seed=3)
B = {name: i for i, name in enumerate(TRUE_BEHAVIOURS)}
P = {name: i for i, name in enumerate(BODYPARTS)}


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("synth_small"), SMALL)


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    """Enough frames that every behaviour occurs: 2 mice x 2 days x 4,000 frames."""
    return generate_sessions(SyntheticConfig(mice=2, days=2, frames=4000, seed=0))


def _speed(xy: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """Per-frame speed (px/s), centred 5-frame mean."""
    step = np.r_[0.0, np.hypot(*np.diff(xy, axis=0).T)] * fps
    return np.convolve(step, np.ones(5) / 5, mode="same")


def _concat(sessions: list[Session], fn) -> np.ndarray:
    return np.concatenate([fn(s) for s in sessions])


# --- files ------------------------------------------------------------------------------------


def test_dataset_files_and_manifest(small_dir: Path) -> None:
    manifest = pd.read_csv(small_dir / "manifest.csv")
    assert list(manifest.columns) == ["path", "mouse", "day", "condition"]
    assert manifest["path"].tolist() == [
        "m01_day1.csv",
        "m01_day2.csv",
        "m02_day1.csv",
        "m02_day2.csv",
    ]
    assert manifest["condition"].tolist() == ["experimental"] * 2 + ["control"] * 2
    for rel in manifest["path"]:
        assert (small_dir / rel).is_file()
        assert (small_dir / rel.replace(".csv", ".labels.csv")).is_file()


def test_dlc_csv_parses_with_pandas(small_dir: Path) -> None:
    df = pd.read_csv(small_dir / "m01_day1.csv", header=[0, 1, 2], index_col=0)
    assert df.shape == (SMALL.frames, 3 * len(BODYPARTS))
    assert df.index.tolist() == list(range(SMALL.frames))
    assert set(df.columns.get_level_values(0)) == {SCORER}
    assert list(df.columns.get_level_values(1)[::3]) == list(BODYPARTS)
    assert list(df.columns.get_level_values(2)) == ["x", "y", "likelihood"] * len(BODYPARTS)
    values = df.to_numpy()
    assert np.isfinite(values).all()
    x = df.xs("x", axis=1, level=2).to_numpy()
    y = df.xs("y", axis=1, level=2).to_numpy()
    like = df.xs("likelihood", axis=1, level=2).to_numpy()
    assert x.min() >= 0 and x.max() <= 640 and y.min() >= 0 and y.max() <= 480
    assert like.min() >= 0 and like.max() <= 1
    with open(small_dir / "m01_day1.csv") as fh:
        head = [next(fh).split(",")[0] for _ in range(4)]
    assert head == ["scorer", "bodyparts", "coords", "0"]


def test_label_file_matches_simulation(small_dir: Path) -> None:
    labels = pd.read_csv(small_dir / "m02_day2.labels.csv")
    assert list(labels.columns) == ["frame", "label"]
    assert labels["frame"].tolist() == list(range(SMALL.frames))
    assert set(labels["label"]) <= set(TRUE_BEHAVIOURS)
    _, _, truth = simulate_session(
        1,
        2,
        "control",
        SMALL.frames,
        session_rng(SMALL.seed, 1, 2),
        traits=mouse_traits(SMALL.seed, 1),
    )
    assert labels["label"].tolist() == [TRUE_BEHAVIOURS[i] for i in truth]


def test_deterministic_bytes_and_seed_matters(small_dir: Path, tmp_path: Path) -> None:
    again = write_dataset(tmp_path / "again", SMALL)
    files = sorted(p.name for p in small_dir.iterdir())
    assert files == sorted(p.name for p in again.iterdir())
    for name in files:
        assert (small_dir / name).read_bytes() == (again / name).read_bytes(), name
    other = write_dataset(tmp_path / "other", SyntheticConfig(mice=1, days=1, frames=1500, seed=4))
    assert (other / "m01_day1.csv").read_bytes() != (small_dir / "m01_day1.csv").read_bytes()


def test_session_independent_of_dataset_size() -> None:
    one = generate_sessions(SyntheticConfig(mice=1, days=1, frames=600, seed=5))[0]
    many = generate_sessions(SyntheticConfig(mice=3, days=2, frames=600, seed=5))
    assert many[0].name == one.name == "m01_day1"
    np.testing.assert_array_equal(many[0].pose, one.pose)
    np.testing.assert_array_equal(many[0].likelihood, one.likelihood)
    np.testing.assert_array_equal(many[0].labels, one.labels)
    assert not np.array_equal(many[1].labels, one.labels)  # day 2 is another session


# --- the simulation ---------------------------------------------------------------------------


def test_simulate_session_shapes() -> None:
    pose, like, labels = simulate_session(0, 1, "experimental", 900, np.random.default_rng(1))
    assert pose.shape == (900, 6, 2) and pose.dtype == np.float32
    assert like.shape == (900, 6) and like.dtype == np.float32
    assert labels.shape == (900,) and labels.dtype == np.int64
    assert np.isfinite(pose).all()
    assert labels.min() >= 0 and labels.max() < len(TRUE_BEHAVIOURS)
    with pytest.raises(ValueError, match="condition"):
        simulate_session(0, 1, "sham", 10, np.random.default_rng(1))


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="frames"):
        SyntheticConfig(frames=1)
    with pytest.raises(ValueError, match="centre_end"):
        SyntheticConfig(centre_end=0.9)
    assert [condition_of(i, 8) for i in range(8)] == ["experimental"] * 4 + ["control"] * 4


def test_transition_matrix_and_shares() -> None:
    for cond, day in (("control", 1), ("experimental", 7)):
        shares = behaviour_shares(cond, day)
        assert shares.sum() == pytest.approx(1.0)
        p = transition_matrix(shares)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        assert np.all(np.diag(p) == 0)
    assert behaviour_shares("experimental", 1)[B["centre_port"]] == pytest.approx(0.05)
    assert behaviour_shares("experimental", 7)[B["centre_port"]] == pytest.approx(0.25)
    assert behaviour_shares("control", 7)[B["centre_port"]] == pytest.approx(0.05)


def test_every_behaviour_occurs(sessions: list[Session]) -> None:
    labels = _concat(sessions, lambda s: s.labels)
    counts = np.bincount(labels, minlength=len(TRUE_BEHAVIOURS))
    assert (counts > 0).all(), dict(zip(TRUE_BEHAVIOURS, counts.tolist(), strict=True))
    # bouts last 0.3-5 s (walks to/away from ports and turns may be shorter or longer)
    for s in sessions:
        change = np.flatnonzero(np.diff(s.labels)) + 1
        lengths = np.diff(np.r_[0, change, s.n_frames])[1:-1]
        kinds = s.labels[change[:-1]] if change.size > 1 else np.array([], dtype=int)
        still = kinds != B["locomotion"]
        assert lengths[still].min() >= 9 and lengths[still].max() <= 150


def test_kinematics_distinct(sessions: list[Session]) -> None:
    good = _concat(sessions, lambda s: (s.likelihood > 0.9).all(axis=1))
    labels = _concat(sessions, lambda s: s.labels)
    body = _concat(sessions, lambda s: _speed(s.pose[:, P["body_centre"]]))
    head = _concat(sessions, lambda s: _speed(s.pose[:, P["head"]]))

    def median(values: np.ndarray, name: str) -> float:
        return float(np.median(values[good & (labels == B[name])]))

    assert median(body, "locomotion") > 150
    assert median(body, "locomotion") > 10 * median(body, "rest")
    assert median(body, "rest") < 20
    assert median(head, "grooming") > 5 * median(body, "grooming")
    assert median(head, "grooming") > 5 * median(head, "rest")
    assert median(body, "rearing") < 20

    def dist(a: str, b: str) -> np.ndarray:
        return _concat(sessions, lambda s: np.hypot(*(s.pose[:, P[a]] - s.pose[:, P[b]]).T))

    head_tail, ears = dist("head", "tail_base"), dist("left_ear", "right_ear")
    assert median(head_tail, "rearing") < 0.8 * median(head_tail, "rest")
    assert median(ears, "rearing") < 0.75 * median(ears, "rest")
    # locomotion: body axis along the direction of travel
    s = sessions[0]
    moving = (s.labels == B["locomotion"]) & (_speed(s.pose[:, 4]) > 150)
    moving &= (s.likelihood > 0.9).all(axis=1)
    travel = np.gradient(s.pose[:, P["body_centre"]], axis=0)
    axis = s.pose[:, P["head"]] - s.pose[:, P["tail_base"]]
    cos = (travel * axis).sum(1) / (np.linalg.norm(travel, axis=1) * np.linalg.norm(axis, axis=1))
    assert np.median(cos[moving]) > 0.8
    # port visits: head held near the port
    for port, (px, py) in PORTS.items():
        at = good & (labels == B[port])
        hx = _concat(sessions, lambda s: s.pose[:, P["head"], 0])[at]
        hy = _concat(sessions, lambda s: s.pose[:, P["head"], 1])[at]
        assert np.percentile(np.hypot(hx - px, hy - py), 95) < 40, port


def test_experimental_mice_learn_centre_port() -> None:
    """Day 1 vs day 7 only (sessions do not depend on the other days)."""
    config = SyntheticConfig(mice=8, days=7, frames=6000, seed=11)
    share = {}
    for mi in range(config.mice):
        cond = condition_of(mi, config.mice)
        for day in (1, 7):
            _, _, labels = simulate_session(
                mi,
                day,
                cond,
                config.frames,
                session_rng(config.seed, mi, day),
                traits=mouse_traits(config.seed, mi),
            )
            share.setdefault((cond, day), []).append(np.mean(labels == B["centre_port"]))
    m = {k: float(np.mean(v)) for k, v in share.items()}
    assert m[("experimental", 1)] < 0.1
    assert m[("experimental", 7)] > 0.17
    assert m[("experimental", 7)] - m[("experimental", 1)] > 0.1
    assert abs(m[("control", 7)] - m[("control", 1)]) < 0.05
    assert m[("control", 7)] < 0.1


def test_tracking_noise(sessions: list[Session]) -> None:
    like = _concat(sessions, lambda s: s.likelihood)
    assert np.mean(like >= 0.95) > 0.9
    low = like < 0.3
    assert 0.001 < low.mean() < 0.1
    assert np.any((like > 0.3) & (like < 0.7))  # single-frame outliers
    # dropouts come in bursts, some longer than a 10-frame interpolation gap
    runs = []
    for s in sessions:
        for p in range(s.n_bodyparts):
            m = np.r_[False, s.likelihood[:, p] < 0.3, False].astype(int)
            d = np.diff(m)
            runs.extend((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).tolist())
    assert max(runs) > 10 and np.mean(runs) > 2
    # low-likelihood coordinates are garbage: far from where the part should be
    pose = np.concatenate([s.pose for s in sessions])
    nose_head = np.hypot(*(pose[:, P["nose"]] - pose[:, P["head"]]).T)
    bad = like[:, P["nose"]] < 0.3
    ok = (like[:, [P["nose"], P["head"]]] > 0.9).all(axis=1)
    assert np.median(nose_head[bad]) > 3 * np.median(nose_head[ok])


# --- pseudo-label rules vs truth ----------------------------------------------------------------


def test_rules_disagree_with_truth(sessions: list[Session]) -> None:
    from dbm_lightning.cli.config import compose_config
    from dbm_lightning.labeling import RuleLabeler

    labeler = RuleLabeler.from_config(compose_config(["labels=operant_box"])["labels"])
    names = np.array([*labeler.label_names, "<unlabelled>"])
    truth, rules = [], []
    for s in sessions:
        plain = Session(pose=s.pose, likelihood=s.likelihood, bodyparts=s.bodyparts, name=s.name)
        out = labeler.label(plain).labels
        rules.append(names[out])  # -1 -> "<unlabelled>"
        truth.append(np.asarray(TRUE_BEHAVIOURS)[s.labels])
    truth_a, rules_a = np.concatenate(truth), np.concatenate(rules)
    agree = float(np.mean(truth_a == rules_a))
    assert 0.4 < agree < 0.9  # the rules are a useful but imperfect proxy
    for port in PORTS:
        assert np.mean(rules_a[truth_a == port] == port) > 0.8
    assert np.mean(rules_a[truth_a == "rest"] == "rest") > 0.7
    assert np.mean(rules_a[truth_a == "locomotion"] == "locomotion") > 0.5
    # grooming and rearing have no rule: a still body reads as rest
    assert np.mean(rules_a[truth_a == "grooming"] == "rest") > 0.6
    assert np.mean(rules_a[truth_a == "rearing"] == "rest") > 0.6


# --- cache and CLI ------------------------------------------------------------------------------


def test_ensure_dataset_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = SyntheticConfig(mice=1, days=2, frames=300, seed=2)
    path = ensure_dataset(config, cache_root=tmp_path)
    assert path == tmp_path / "synthetic" / config_key(config)
    assert (path / "manifest.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "synthetic").iterdir()) == [path.name]
    stamp = (path / "m01_day1.csv").stat().st_mtime_ns

    def boom(*args, **kwargs):
        raise AssertionError("must not regenerate")

    monkeypatch.setattr(synthetic_dataset, "write_dataset", boom)
    assert ensure_dataset(config, cache_root=tmp_path) == path
    assert (path / "m01_day1.csv").stat().st_mtime_ns == stamp
    # the environment variable is the default root
    monkeypatch.setenv("DBM_LIGHTNING_CACHE", str(tmp_path))
    assert ensure_dataset(config) == path
    assert config_key(config) != config_key(SyntheticConfig(mice=1, days=2, frames=300, seed=3))


def test_ensure_dataset_interrupted_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SyntheticConfig(mice=1, days=1, frames=200, seed=0)
    real = synthetic_dataset.write_dataset

    def interrupted(out_dir, cfg):
        real(out_dir, cfg)
        os.remove(Path(out_dir) / "manifest.csv")
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic_dataset, "write_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_dataset(config, cache_root=tmp_path)
    assert list((tmp_path / "synthetic").iterdir()) == []
    monkeypatch.setattr(synthetic_dataset, "write_dataset", real)
    assert (ensure_dataset(config, cache_root=tmp_path) / "manifest.csv").is_file()


def test_cli_writes_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    rc = synth_main(["--out", str(out), "--mice", "2", "--days", "1", "--frames", "300"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "wrote 2 sessions" in printed and "manifest.csv" in printed
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["mouse"].tolist() == ["m01", "m02"]
    df = pd.read_csv(out / "m02_day1.csv", header=[0, 1, 2], index_col=0)
    assert df.shape == (300, 18)
    with pytest.raises(SystemExit):
        synth_main(["--out", str(out), "--frames", "1"])


def test_steady_behaviour_keeps_its_day_one_share() -> None:
    """``steady=("grooming",)``: the centre-port rise of experimental mice is taken from the
    other behaviours only, in the target shares and in the simulated labels; the default data
    is unchanged (same configuration record, so the same cache key and bytes)."""
    from dbm_lightning.synthetic.model import config_dict

    pref = mouse_traits(0, 0).preference
    first = behaviour_shares("experimental", 1, preference=pref, steady=("grooming",))
    last = behaviour_shares("experimental", 7, preference=pref, steady=("grooming",))
    g, c = B["grooming"], B["centre_port"]
    assert last[g] == pytest.approx(first[g]) and last.sum() == pytest.approx(1.0)
    assert last[c] == pytest.approx(0.25)
    np.testing.assert_allclose(first, behaviour_shares("experimental", 1, preference=pref))
    assert behaviour_shares("experimental", 7, preference=pref)[g] < 0.85 * first[g]
    assert "steady" not in config_dict(SyntheticConfig())
    assert config_dict(SyntheticConfig(steady=("grooming",)))["steady"] == ["grooming"]
    for bad, said in ((("centre_port",),), "cannot be held"), ((("jumping",),), "unknown"):
        with pytest.raises(ValueError, match=said):
            SyntheticConfig(steady=bad[0])
    with pytest.raises(ValueError, match="named twice"):
        SyntheticConfig(steady=("rest", "rest"))
    with pytest.raises(ValueError, match="one animal"):
        SyntheticConfig(animals=2, steady=("rest",))
