"""DeepLabCut CSV/H5 reader: real files, multi-animal files and every malformed-file error."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest
from helpers import SCORER, dlc_frame, random_pose, write_dlc_csv, write_dlc_h5

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import load_dlc
from dbm_lightning.io.compressed import COMPRESSIONS, file_stem

CLIPS = ("raw_clip1", "raw_clip2")
REAL_SCORER = "DLC_resnet50_OpenFieldHighResApr8shuffle1_1030000"
PARTS = ["nose", "left_ear", "tail_base"]


def _clip(shared_data: Path, clip: str, suffix: str) -> Path:
    return shared_data / "bsoid_dlc_clips" / f"{clip}{REAL_SCORER}{suffix}"


@pytest.fixture
def csv_file(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    pose, lik = random_pose(t=30, parts=3)
    return write_dlc_csv(tmp_path / f"m01_day1{SCORER}.csv", dlc_frame(pose, lik, PARTS)), pose, lik


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _raises(path: Path, *fragments: str, **kwargs) -> DataFormatError:
    with pytest.raises(DataFormatError) as info:
        load_dlc(path, **kwargs)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    for frag in fragments:
        assert frag in msg, msg
    return info.value


# ---------------------------------------------------------------------------- real data


@pytest.mark.real_data
@pytest.mark.parametrize("clip", CLIPS)
def test_real_csv_equals_h5(shared_data: Path, clip: str) -> None:
    csv = load_dlc(_clip(shared_data, clip, ".csv"), fps=60.0)
    h5 = load_dlc(_clip(shared_data, clip, ".h5"))
    for s in (csv, h5):
        assert s.pose.shape == (7200, 6, 2)
        assert s.likelihood.shape == (7200, 6)
        assert s.bodyparts[0] == "Snout" and len(s.bodyparts) == 6
        assert s.name == clip
        assert s.extra["scorer"] == REAL_SCORER
        assert np.isfinite(s.pose).all()
        assert ((s.likelihood >= 0) & (s.likelihood <= 1)).all()
    assert csv.bodyparts == h5.bodyparts
    assert csv.fps == 60.0 and h5.fps is None
    np.testing.assert_allclose(csv.pose, h5.pose, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(csv.likelihood, h5.likelihood, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------ synthetic files


def test_csv_roundtrip(csv_file) -> None:
    path, pose, lik = csv_file
    s = load_dlc(path, fps=30)
    assert s.bodyparts == tuple(PARTS)
    assert s.name == "m01_day1"
    assert s.source == path and s.fps == 30.0
    assert s.pose.dtype == np.float32 and s.likelihood.dtype == np.float32
    np.testing.assert_allclose(s.pose, pose, rtol=1e-6)
    np.testing.assert_allclose(s.likelihood, lik, rtol=1e-6)


def test_csv_windows_line_endings(csv_file, tmp_path: Path) -> None:
    path, pose, _ = csv_file
    crlf = tmp_path / "crlf.csv"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    np.testing.assert_allclose(load_dlc(crlf).pose, pose, rtol=1e-6)


def test_all_empty_first_frame_keeps_frame_count(tmp_path: Path) -> None:
    pose, lik = random_pose(t=10, parts=3)
    pose[0] = np.nan
    lik[0] = np.nan
    path = write_dlc_csv(tmp_path / "gap.csv", dlc_frame(pose, lik, PARTS))
    assert _lines(path)[3] == "0" + "," * 9  # first data row really is all empty
    s = load_dlc(path)
    assert s.n_frames == 10
    assert np.isnan(s.pose[0]).all() and np.isfinite(s.pose[1:]).all()
    assert (s.likelihood[0] == 0).all()
    np.testing.assert_allclose(s.pose[1:], pose[1:], rtol=1e-6)


def test_h5_roundtrip_and_single_other_key(tmp_path: Path) -> None:
    pose, lik = random_pose(t=12, parts=3)
    df = dlc_frame(pose, lik, PARTS)
    for key in ("df_with_missing", "poses"):
        path = write_dlc_h5(tmp_path / f"{key}.h5", df, key=key)
        s = load_dlc(path)
        np.testing.assert_allclose(s.pose, pose, rtol=1e-6)
        assert s.bodyparts == tuple(PARTS)


def test_h5_several_keys_without_default(tmp_path: Path) -> None:
    pose, lik = random_pose(t=5)
    df = dlc_frame(pose, lik, PARTS)
    path = tmp_path / "two.h5"
    df.to_hdf(path, key="a", format="table", mode="w")
    df.to_hdf(path, key="b", format="table", mode="a")
    _raises(path, "several tables")


MULTI_CSV = (
    "scorer" + f",{SCORER}" * 12 + "\n"
    """\
individuals,mouse1,mouse1,mouse1,mouse1,mouse1,mouse1,mouse2,mouse2,mouse2,mouse2,mouse2,mouse2
bodyparts,nose,nose,nose,tail,tail,tail,nose,nose,nose,tail,tail,tail
coords,x,y,likelihood,x,y,likelihood,x,y,likelihood,x,y,likelihood
0,1.0,2.0,0.9,3.0,4.0,0.8,101.0,102.0,0.7,,,
1,1.5,2.5,0.95,3.5,4.5,0.85,101.5,102.5,0.75,103.5,104.5,0.65
2,,,,3.7,4.7,0.5,101.7,102.7,0.6,103.7,104.7,0.55
"""
)


def test_multi_animal_csv(tmp_path: Path) -> None:
    path = tmp_path / "pair.csv"
    path.write_text(MULTI_CSV)
    both = load_dlc(path)
    assert both.extra["individuals"] == ["mouse1", "mouse2"]
    assert both.individuals == ("mouse1", "mouse2") and both.parts == ("nose", "tail")
    assert both.bodyparts == ("mouse1/nose", "mouse1/tail", "mouse2/nose", "mouse2/tail")
    animals = both.animal_pose()
    assert animals.shape == (3, 2, 2, 2)
    np.testing.assert_allclose(animals[:, 0, 0, 0], [1.0, 1.5, np.nan])
    np.testing.assert_allclose(animals[:, 1, 0, 1], [102.0, 102.5, 102.7])
    assert both.likelihood[2, 0] == 0.0 and both.likelihood[0, 3] == 0.0
    second = load_dlc(path, individuals=["mouse2"])
    assert second.bodyparts == ("nose", "tail") and second.individuals == ()
    np.testing.assert_allclose(second.pose[:, 0, 1], [102.0, 102.5, 102.7])
    assert np.isnan(second.pose[0, 1]).all()
    swapped = load_dlc(path, individuals=["mouse2", "mouse1"])
    np.testing.assert_array_equal(swapped.animal_pose()[:, ::-1], animals)
    err = _raises(path, "unknown individual(s) ['mouse3']", "mouse1", individuals=["mouse3"])
    assert err.path == path


def test_multi_animal_unique_bodyparts_left_out_with_warning(tmp_path: Path) -> None:
    text = MULTI_CSV.splitlines()
    rows = [r.split(",") for r in text]
    extra = [["scorer", SCORER][1:] * 3, ["single"] * 3, ["led"] * 3, ["x", "y", "likelihood"]]
    rows = [r + extra[i] if i < 4 else r + ["5", "6", "0.9"] for i, r in enumerate(rows)]
    path = tmp_path / "unique.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.warns(UserWarning, match=r"\['single'\] left out"):
        s = load_dlc(path)
    assert s.individuals == ("mouse1", "mouse2")
    assert s.extra["file_individuals"] == ["mouse1", "mouse2", "single"]
    _raises(path, "have different body parts", individuals=["mouse1", "single"])
    alone = load_dlc(path, individuals=["single"])
    assert alone.bodyparts == ("led",)


def test_multi_animal_h5_matches_csv(tmp_path: Path) -> None:
    pose, lik = random_pose(t=8, parts=3, individuals=2)
    df = dlc_frame(pose, lik, PARTS, individuals=["a", "b"])
    csv = write_dlc_csv(tmp_path / "m.csv", df)
    h5 = write_dlc_h5(tmp_path / "m.h5", df)
    for path in (csv, h5):
        s = load_dlc(path, individuals=["b"])
        np.testing.assert_allclose(s.pose, pose[:, 1], rtol=1e-6)
        both = load_dlc(path)
        np.testing.assert_allclose(both.animal_pose(), pose, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.xz"])
def test_compressed_csv_reads_like_plain(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "pair.csv"
    path.write_text(MULTI_CSV)
    packed = tmp_path / f"pairDLC_x{suffix}"
    packer = {".gz": gzip.compress, ".bz2": bz2.compress, ".xz": lzma.compress}
    assert set(packer) == set(COMPRESSIONS)
    packed.write_bytes(packer["." + suffix.rsplit(".", 1)[1]](path.read_bytes()))
    s = load_dlc(packed)
    np.testing.assert_array_equal(s.pose, load_dlc(path).pose, strict=True)
    assert file_stem(packed) == "pairDLC_x" == s.name
    broken = tmp_path / f"broken{suffix}"
    broken.write_bytes(packed.read_bytes()[: len(packed.read_bytes()) // 2])
    _raises(broken, "corrupted or truncated")


def test_individual_on_single_animal_file(csv_file) -> None:
    _raises(csv_file[0], "single-animal", individuals=["mouse1"])


# ------------------------------------------------------------------------------ errors


def test_missing_file(tmp_path: Path) -> None:
    _raises(tmp_path / "nope.csv", "not found")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    _raises(path, "empty")
    path.write_text("\n\n")
    _raises(path, "empty")


def test_missing_header_rows(tmp_path: Path, csv_file) -> None:
    lines = _lines(csv_file[0])
    plain = _write_lines(tmp_path / "plain.csv", ["x,y", "1,2"])
    _raises(plain, "missing DeepLabCut header rows", "'scorer'")
    no_coords = _write_lines(tmp_path / "nocoords.csv", lines[:2] + lines[3:])
    _raises(no_coords, "missing DeepLabCut header row 'coords'")
    only_header = _write_lines(tmp_path / "onlyheader.csv", lines[:3])
    _raises(only_header, "no data rows")


def test_no_xy_coords(tmp_path: Path, csv_file) -> None:
    lines = _lines(csv_file[0])
    lines[2] = "coords" + ",a,b,c" * 3
    _raises(_write_lines(tmp_path / "coords.csv", lines), "no x/y/likelihood coords")


def test_non_numeric_cell(tmp_path: Path, csv_file) -> None:
    lines = _lines(csv_file[0])
    cells = lines[8].split(",")  # data row 5
    cells[5] = "oops"  # left_ear y
    lines[8] = ",".join(cells)
    _raises(
        _write_lines(tmp_path / "text.csv", lines),
        "non-numeric value 'oops'",
        "line 9",
        "data row 5",
        "left_ear y",
    )


def test_truncated_file(tmp_path: Path, csv_file) -> None:
    data = csv_file[0].read_bytes()
    cut = tmp_path / "cut.csv"
    cut.write_bytes(data[: len(data) - 40])  # crash mid-write: last row loses cells
    _raises(cut, "line 33", "fewer", "truncated")


def test_row_with_extra_cells(tmp_path: Path, csv_file) -> None:
    lines = _lines(csv_file[0])
    lines[5] += ",1.0"
    _raises(_write_lines(tmp_path / "extra.csv", lines), "line 6", "more")


def test_blank_line_inside_data(tmp_path: Path, csv_file) -> None:
    lines = _lines(csv_file[0])
    lines.insert(6, "")
    _raises(_write_lines(tmp_path / "blank.csv", lines), "line 7 is empty")


def test_nan_only_bodypart(tmp_path: Path) -> None:
    pose, lik = random_pose(t=10, parts=3)
    pose[:, 1] = np.nan
    lik[:, 1] = np.nan
    df = dlc_frame(pose, lik, PARTS)
    _raises(write_dlc_csv(tmp_path / "never.csv", df), "['left_ear']", "never tracked")
    _raises(write_dlc_h5(tmp_path / "never.h5", df), "['left_ear']", "never tracked")


def test_unreadable_h5(tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not an HDF5 file" * 10)
    _raises(bad, "cannot read as a DeepLabCut H5 file")
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    _raises(empty, "cannot read")


def test_h5_not_dlc_columns(tmp_path: Path) -> None:
    import pandas as pd

    path = tmp_path / "flat.h5"
    pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 4.0]}).to_hdf(path, key="df_with_missing")
    _raises(path, "MultiIndex")
