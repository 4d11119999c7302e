"""The session cache's remembered file hashes (``.ref``) and its direct array reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import dlc_frame, random_pose, write_dlc_csv

from dbm_lightning.io import cache, clear_cache, load_dlc
from dbm_lightning.io.cache import cached_load, source_sha256

PARTS = ["nose", "left_ear", "tail_base"]


def _write(path: Path, seed: int, t: int = 40) -> Path:
    pose, lik = random_pose(t=t, parts=3, seed=seed)
    return write_dlc_csv(path, dlc_frame(pose, lik, PARTS))


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts of hashing and parsing; files count as settled at once (no 2 s wait)."""
    counts = {"hash": 0, "parse": 0}
    real_hash = cache.file_sha256

    def hash_(path):
        counts["hash"] += 1
        return real_hash(path)

    monkeypatch.setattr(cache, "file_sha256", hash_)
    monkeypatch.setattr(cache, "SETTLE_NS", -1)
    return counts


def _load(path: Path, directory: Path, counts: dict[str, int]):
    def reader(p: Path):
        counts["parse"] += 1
        return load_dlc(p)

    return cached_load(path, reader, {"reader": "dlc"}, directory)


def test_unchanged_file_is_not_hashed_again(tmp_path: Path, counted: dict[str, int]) -> None:
    path, directory = _write(tmp_path / "m1_day1.csv", 1), tmp_path / "cache"
    first = _load(path, directory, counted)
    assert counted == {"hash": 1, "parse": 1} and len(list(directory.glob("*.ref"))) == 1
    second = _load(path, directory, counted)
    assert counted == {"hash": 1, "parse": 1}  # neither hashed nor parsed
    np.testing.assert_array_equal(first.pose, second.pose)
    # another cache folder knows nothing of it
    _load(path, tmp_path / "other", counted)
    assert counted == {"hash": 2, "parse": 2}


def test_edit_with_same_size_and_mtime_misses(tmp_path: Path, counted: dict[str, int]) -> None:
    path, directory = _write(tmp_path / "m1_day1.csv", 1), tmp_path / "cache"
    before = _load(path, directory, counted)
    st = os.stat(path)
    text = path.read_bytes()
    lines = text.split(b"\n")
    cells = lines[3].split(b",")  # data row 0: its first x, one digit changed
    cells[1] = bytes([ord("1") + (cells[1][0] - ord("0")) % 8]) + cells[1][1:]
    lines[3] = b",".join(cells)
    edited = b"\n".join(lines)
    assert len(edited) == len(text) and edited != text
    path.write_bytes(edited)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: ctime still moves
    after = _load(path, directory, counted)
    assert counted == {"hash": 2, "parse": 2}
    assert not np.array_equal(before.pose, after.pose, equal_nan=True)


def test_new_content_misses_and_touch_rehashes_then_hits(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    path, directory = _write(tmp_path / "m1_day1.csv", 1), tmp_path / "cache"
    _load(path, directory, counted)
    _write(path, 2)  # new content
    new = _load(path, directory, counted)
    assert counted == {"hash": 2, "parse": 2}
    np.testing.assert_array_equal(new.pose, load_dlc(path).pose)
    # same bytes, new mtime: hashed again, and the content key still hits (no parse)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))
    again = _load(path, directory, counted)
    assert counted == {"hash": 3, "parse": 2}
    np.testing.assert_array_equal(again.pose, new.pose)
    _load(path, directory, counted)
    assert counted == {"hash": 3, "parse": 2}  # and remembered under the new stat


def test_recent_files_are_hashed_every_time(
    tmp_path: Path, counted: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "SETTLE_NS", 3600 * 10**9)  # everything is "just modified"
    path, directory = _write(tmp_path / "m1_day1.csv", 1), tmp_path / "cache"
    for _ in range(3):
        _load(path, directory, counted)
    assert counted == {"hash": 3, "parse": 1}  # hashed each time, parsed once
    assert not list(directory.glob("*.ref"))


def test_unreadable_ref_is_ignored_and_rewritten(tmp_path: Path, counted: dict[str, int]) -> None:
    path, directory = _write(tmp_path / "m1_day1.csv", 1), tmp_path / "cache"
    digest = source_sha256(path, directory)
    (ref,) = directory.glob("*.ref")
    for junk in (b"garbage", b'{"path": "x"}', json.dumps({"sha256": "0" * 64}).encode()):
        ref.write_bytes(junk)
        assert source_sha256(path, directory) == digest
        assert json.loads(ref.read_bytes())["sha256"] == digest
    assert clear_cache(directory) == 1 and not list(directory.iterdir())


def test_entries_are_read_directly_and_old_entries_upgraded(
    tmp_path: Path, counted: dict[str, int]
) -> None:
    path, directory = _write(tmp_path / "m1_day1.csv", 1, t=300), tmp_path / "cache"
    first = _load(path, directory, counted)
    (meta_path,) = directory.glob("*.json")
    (npz,) = directory.glob("*.npz")
    meta = json.loads(meta_path.read_text())
    assert set(meta["layout"]["arrays"]) == {"pose_0", "likelihood_0"}
    arrays = cache._read_arrays(npz, meta["layout"])
    with np.load(npz, allow_pickle=False) as z:
        for name, array in arrays.items():
            np.testing.assert_array_equal(array, z[name])
            assert array.dtype == z[name].dtype and array.flags.writeable
            assert array.flags.aligned and array.flags.c_contiguous
    # an entry written before layouts existed: read with np.load, then upgraded in place
    del meta["layout"]
    meta_path.write_text(json.dumps(meta))
    second = _load(path, directory, counted)
    np.testing.assert_array_equal(first.likelihood, second.likelihood)
    assert "layout" in json.loads(meta_path.read_text()) and counted["parse"] == 1
    # a layout that does not match the file (other size, other header): np.load decides
    bad = dict(meta, layout=dict(json.loads(meta_path.read_text())["layout"], size=1))
    assert cache._read_arrays(npz, bad["layout"]) is None
    wrong_header = json.loads(meta_path.read_text())["layout"]
    wrong_header["arrays"]["pose_0"]["header"] = wrong_header["arrays"]["pose_0"]["header"][::-1]
    assert cache._read_arrays(npz, wrong_header) is None
    object_dtype = json.loads(meta_path.read_text())["layout"]
    object_dtype["arrays"]["pose_0"]["dtype"] = "|O"
    assert cache._read_arrays(npz, object_dtype) is None
