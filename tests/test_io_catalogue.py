"""Catalogue (folder scan, manifest, load_sessions with skipping) and the on-disk cache."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import SCORER, dlc_frame, random_pose, write_dlc_csv, write_dlc_h5

import dbm_lightning.io.catalogue as catalogue
from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import (
    LoadResult,
    SessionEntry,
    load_dlc,
    load_sessions,
    read_manifest,
    scan_folder,
)
from dbm_lightning.io.cache import cache_key, cached_load, default_cache_dir, resolve_cache_dir

PARTS = ["nose", "body", "tail"]
REAL_SCORER = "DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000"


def _dlc(folder: Path, stem: str, suffix: str = ".csv", seed: int = 0, t: int = 15) -> Path:
    pose, lik = random_pose(t=t, parts=3, seed=seed)
    df = dlc_frame(pose, lik, PARTS)
    path = folder / f"{stem}{suffix}"
    return write_dlc_h5(path, df) if suffix == ".h5" else write_dlc_csv(path, df)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "sessions"
    d.mkdir()
    _dlc(d, f"m02_day1{SCORER}", seed=1)
    _dlc(d, f"m01_day10{SCORER}", seed=2)
    _dlc(d, f"m01_day2{SCORER}_filtered", seed=3)
    _dlc(d, "m03_day1", ".csv", seed=4)
    _dlc(d, "m03_day1", ".h5", seed=4)  # same session in both formats: keep one
    (d / "m01_day2.labels.csv").write_text("frame,label\n0,a\n")
    (d / "notes.txt").write_text("not a session")
    (d / "calibration.csv").write_text("x,y\n")
    return d


# ------------------------------------------------------------------------------ scanning


def test_scan_folder(folder: Path) -> None:
    entries = scan_folder(folder)
    got = [(e.mouse, e.day, e.path.name, e.name) for e in entries]
    assert got == [
        ("m01", 2, f"m01_day2{SCORER}_filtered.csv", "m01_day2"),
        ("m01", 10, f"m01_day10{SCORER}.csv", "m01_day10"),
        ("m02", 1, f"m02_day1{SCORER}.csv", "m02_day1"),
        ("m03", 1, "m03_day1.h5", "m03_day1"),  # h5 preferred over csv
    ]
    assert all(isinstance(e.day, int) for e in entries)


def test_scan_folder_other_pattern(tmp_path: Path) -> None:
    _dlc(tmp_path, "ctrl-m7-s3")
    _dlc(tmp_path, "exp-m8-s1")
    entries = scan_folder(tmp_path, pattern="{condition}-{mouse}-s{day}")
    assert [(e.condition, e.mouse, e.day) for e in entries] == [("ctrl", "m7", 3), ("exp", "m8", 1)]
    entries = scan_folder(tmp_path, pattern="{condition}-{mouse}-s{session}", suffixes=(".csv",))
    assert entries[0].extra == {"session": "3"} and entries[0].day is None


def test_scan_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        scan_folder(tmp_path / "missing")
    _dlc(tmp_path, "video1")
    with pytest.raises(DataFormatError, match="no session file matches"):
        scan_folder(tmp_path)


# ------------------------------------------------------------------------------ manifest


def test_read_manifest(folder: Path, tmp_path: Path) -> None:
    manifest = folder / "manifest.csv"
    absolute = folder / f"m02_day1{SCORER}.csv"
    manifest.write_text(
        "path,mouse,day,condition,cohort\n"
        f"m01_day10{SCORER}.csv,m01,10,experimental,A\n"
        f"{absolute},m02,1,control,B\n"
    )
    entries = read_manifest(manifest)
    assert entries[0].path == folder / f"m01_day10{SCORER}.csv"
    assert entries[1].path == absolute
    assert (entries[0].mouse, entries[0].day, entries[0].condition) == ("m01", 10, "experimental")
    assert entries[1].extra == {"cohort": "B"}
    # manifest.csv is never taken for a session by a folder scan
    assert all(e.path.name != "manifest.csv" for e in scan_folder(folder, pattern="{mouse}"))


def test_manifest_errors(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.csv"
    bad.write_text("path,mouse,condition\na.csv,m1,ctrl\n")
    with pytest.raises(DataFormatError, match=r"lacks column\(s\) \['day'\]"):
        read_manifest(bad)
    bad.write_text("path,mouse,day,condition\na.csv,m1,first,ctrl\n")
    with pytest.raises(DataFormatError, match="day 'first' is not an integer"):
        read_manifest(bad)


# ------------------------------------------------------------------------------- loading


def test_load_sessions_metadata(folder: Path, tmp_path: Path) -> None:
    entries = scan_folder(folder)
    entries[0].condition = "control"
    result = load_sessions(entries, cache_dir=tmp_path / "cache", fps=30.0, progress=False)
    assert isinstance(result, LoadResult) and result.skipped == []
    s = result.sessions[0]
    assert (s.name, s.mouse, s.day, s.condition, s.fps) == ("m01_day2", "m01", 2, "control", 30.0)
    assert s.source == entries[0].path and s.n_frames == 15
    assert len({x.name for x in result.sessions}) == 4


def test_skip_corrupted(folder: Path, tmp_path: Path) -> None:
    broken = folder / "m04_day1.csv"
    broken.write_text(_dlc(tmp_path, "tmp").read_text()[:-60])  # truncated
    entries = scan_folder(folder)
    entries.append(SessionEntry(folder / "m05_day1.csv", "m05", 1))  # missing file
    with pytest.raises(DataFormatError, match="truncated"):
        load_sessions(entries, progress=False, cache_dir=False)
    with pytest.warns(UserWarning) as record:
        result = load_sessions(entries, skip_corrupted=True, progress=False, cache_dir=False)
    assert any("m04_day1.csv" in str(w.message) for w in record)
    assert len(result.sessions) == 4
    assert [s.path.name for s in result.skipped] == ["m04_day1.csv", "m05_day1.csv"]
    assert any("not found" in str(w.message) for w in record)
    table = result.skipped_table()
    assert table[0]["path"] == str(broken) and "truncated" in table[0]["reason"]
    json.dumps(table)  # JSON-able for run outputs


def test_duplicate_names_fall_back_to_stem(tmp_path: Path) -> None:
    a, b = _dlc(tmp_path, "a", seed=1), _dlc(tmp_path, "b", seed=2)
    entries = [SessionEntry(a, "m1", 1), SessionEntry(b, "m1", 1)]
    result = load_sessions(entries, progress=False, cache_dir=False)
    assert [s.name for s in result.sessions] == ["m1_day1", "b"]


def test_progress_bar(folder: Path, capsys: pytest.CaptureFixture) -> None:
    load_sessions(scan_folder(folder), progress=True, cache_dir=False)
    assert "loading sessions" in capsys.readouterr().err


# --------------------------------------------------------------------------------- cache


def test_cache_hit_skips_parsing(folder: Path, tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    entries = scan_folder(folder)
    first = load_sessions(entries, cache_dir=cache, progress=False)
    assert len(list(cache.glob("*.npz"))) == 4 and len(list(cache.glob("*.json"))) == 4

    def fail(*args, **kwargs):
        raise AssertionError("parsed again despite the cache")

    monkeypatch.setattr(catalogue, "load_pose", fail)
    second = load_sessions(entries, cache_dir=cache, progress=False)
    for a, b in zip(first.sessions, second.sessions, strict=True):
        assert a.name == b.name and a.bodyparts == b.bodyparts and a.source == b.source
        np.testing.assert_array_equal(a.pose, b.pose)
        np.testing.assert_array_equal(a.likelihood, b.likelihood)
    # other reader settings miss the cache
    with pytest.raises(AssertionError, match="parsed again"):
        load_sessions(entries[:1], cache_dir=cache, fps=60.0, progress=False)


def test_cache_invalidated_by_content(tmp_path: Path) -> None:
    path = _dlc(tmp_path, "m1_day1", seed=1)
    key1 = cache_key(path, {"fps": None})
    assert key1 == cache_key(path, {"fps": None})
    assert key1 != cache_key(path, {"fps": 30.0})
    before = cached_load(path, load_dlc, {}, tmp_path / "cache")
    _dlc(tmp_path, "m1_day1", seed=2)
    assert cache_key(path, {"fps": None}) != key1
    after = cached_load(path, load_dlc, {}, tmp_path / "cache")
    assert not np.array_equal(before.pose, after.pose)


def test_cache_disabled_and_default_dir(tmp_path: Path, monkeypatch) -> None:
    path = _dlc(tmp_path, "m1_day1")
    monkeypatch.setenv("DBM_LIGHTNING_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env" / "sessions"
    assert resolve_cache_dir(False) is None
    load_sessions([SessionEntry(path, "m1", 1)], cache_dir=False, progress=False)
    assert not (tmp_path / "env").exists()
    load_sessions([SessionEntry(path, "m1", 1)], progress=False)
    assert len(list((tmp_path / "env" / "sessions").glob("*.npz"))) == 1
    monkeypatch.delenv("DBM_LIGHTNING_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "dbm_lightning" / "sessions"


def test_corrupt_cache_entry_is_rewritten(tmp_path: Path) -> None:
    path = _dlc(tmp_path, "m1_day1")
    cache = tmp_path / "cache"
    ref = cached_load(path, load_dlc, {}, cache)
    (npz,) = cache.glob("*.npz")
    npz.write_bytes(b"garbage")
    again = cached_load(path, load_dlc, {}, cache)
    np.testing.assert_array_equal(ref.pose, again.pose)
    assert np.load(npz)["pose_0"].shape == ref.pose.shape


def test_cached_list_reader(tmp_path: Path) -> None:
    path = _dlc(tmp_path, "m1_day1")

    def two(p: Path):
        s = load_dlc(p)
        return [s, s.with_labels(np.zeros(s.n_frames, np.int64), ("a",))]

    first = cached_load(path, two, {"reader": "two"}, tmp_path / "c")
    second = cached_load(path, two, {"reader": "two"}, tmp_path / "c")
    assert isinstance(second, list) and len(second) == 2
    assert second[1].label_names == ("a",) and second[0].labels is None
    np.testing.assert_array_equal(first[1].labels, second[1].labels)


@pytest.mark.real_data
def test_real_files_through_cache(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "bsoid_dlc_clips"
    entries = scan_folder(folder, pattern="raw_clip{mouse}")
    assert [e.path.suffix for e in entries] == [".h5", ".h5"]
    cache = tmp_path / "cache"
    t0 = time.perf_counter()
    cold = load_sessions(entries, cache_dir=cache, progress=False)
    t1 = time.perf_counter()
    warm = load_sessions(entries, cache_dir=cache, progress=False)
    t2 = time.perf_counter()
    assert [s.mouse for s in warm.sessions] == ["1", "2"]
    for a, b in zip(cold.sessions, warm.sessions, strict=True):
        assert b.n_frames == 7200 and b.bodyparts[0] == "Snout"
        np.testing.assert_array_equal(a.pose, b.pose)
    assert t2 - t1 < max(0.5, 2 * (t1 - t0)), (t1 - t0, t2 - t1)
    assert os.listdir(cache)


def test_scan_folder_names_every_file_it_leaves_out(tmp_path: Path, caplog) -> None:
    import lzma

    from helpers import dlc_frame, random_pose, write_dlc_csv

    pose, lik = random_pose(t=5, parts=2)
    plain = write_dlc_csv(tmp_path / "m01_day1.csv", dlc_frame(pose, lik, ["a", "b"]))
    (tmp_path / "m01_day2.csv.xz").write_bytes(lzma.compress(plain.read_bytes()))
    (tmp_path / "m01_day1.labels.csv").write_text("frame,label\n")
    (tmp_path / "m01_day3.avi").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "mouse1.csv").write_bytes(plain.read_bytes())
    with caplog.at_level("WARNING"):
        entries = scan_folder(tmp_path)
    assert [e.path.name for e in entries] == ["m01_day1.csv", "m01_day2.csv.xz"]
    assert [e.day for e in entries] == [1, 2]
    text = caplog.text
    assert "2 file(s) left out (not a pose format" in text and "m01_day3.avi" in text
    assert "notes.txt" in text and "mouse1.csv" in text and "does not match pattern" in text
    assert "labels" not in text
