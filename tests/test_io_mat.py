"""DBM MATLAB reader: the real sample file (v7.3, and re-saved as v5), hand-built files and
error cases."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import load_dbm_mat
from dbm_lightning.session import UNLABELLED

CATEGORIES = (
    "LEVERSLOT",
    "LEVER",
    "PORT",
    "EATING",
    "SIPPER",
    "LOCOMOTION",
    "WALLS",
    "RESTING",
    "OTHER",
)
COUNTS = {
    "LEVERSLOT": 4655,
    "LEVER": 1248,
    "PORT": 2669,
    "EATING": 5449,
    "SIPPER": 251,
    "LOCOMOTION": 5824,
    "WALLS": 2945,
    "RESTING": 14708,
    "OTHER": 7851,
}


@pytest.mark.real_data
def test_real_mat_equals_npz(shared_data: Path) -> None:
    folder = shared_data / "dbm_sample"
    sessions = load_dbm_mat(folder / "DBM_sample_data.mat")
    ref = np.load(folder / "dbm_sample.npz")
    assert len(sessions) == 57
    assert [s.name for s in sessions[:2]] == ["trial_01", "trial_02"]
    assert sessions[-1].name == "trial_57" and sessions[-1].extra["trial"] == 57
    for s in sessions:
        assert s.pose.shape == (800, 6, 2)
        assert s.bodyparts == tuple(f"part{i}" for i in range(1, 7))
        assert s.label_names == CATEGORIES
        assert (s.likelihood == 1).all()
    assert tuple(ref["categories"]) == CATEGORIES
    # the .mat stores (frames, parts); the npz (parts, frames) as in MATLAB
    x = np.stack([s.pose[:, :, 0].T for s in sessions])
    y = np.stack([s.pose[:, :, 1].T for s in sessions])
    np.testing.assert_array_equal(x, ref["body_parts_X"])
    np.testing.assert_array_equal(y, ref["body_parts_Y"])
    labels = np.stack([s.labels for s in sessions])
    np.testing.assert_array_equal(labels, ref["labels"].astype(np.int64))
    counts = np.bincount(labels.ravel(), minlength=9)
    assert dict(zip(CATEGORIES, counts.tolist(), strict=True)) == COUNTS
    assert counts.sum() == 45_600


def _char(f: h5py.File, name: str, text: str) -> h5py.Reference:
    ds = f.create_dataset(f"#refs#/{name}", data=np.array([[ord(c)] for c in text], np.uint16))
    ds.attrs["MATLAB_class"] = np.bytes_("char")
    return ds.ref


def _build_v73(
    path: Path, xs: list[np.ndarray], ys: list[np.ndarray], cats=None, codes=None
) -> Path:
    """A minimal MATLAB v7.3 file laid out like MATLAB writes cells and categoricals."""
    ref_dtype = h5py.special_dtype(ref=h5py.Reference)
    with h5py.File(path, "w", userblock_size=512) as f:
        for var, cells in (("body_parts_X", xs), ("body_parts_Y", ys)):
            refs = []
            for i, arr in enumerate(cells):
                ds = f.create_dataset(f"#refs#/{var}_{i}", data=arr.T.astype(np.float32))
                ds.attrs["MATLAB_class"] = np.bytes_("single")
                refs.append(ds.ref)
            cell = f.create_dataset(var, data=np.array([refs], dtype=ref_dtype))
            cell.attrs["MATLAB_class"] = np.bytes_("cell")
        if cats is None:
            return path
        empty = f.create_dataset("#refs#/empty", data=np.zeros(2, np.uint64))
        mcos = [empty.ref, empty.ref]
        obj_refs = []
        for k, (names, trial_codes) in enumerate(zip(cats, codes, strict=True), start=1):
            name_refs = [_char(f, f"c{k}_{j}", n) for j, n in enumerate(names)]
            cell = f.create_dataset(f"#refs#/names{k}", data=np.array([name_refs], ref_dtype))
            cell.attrs["MATLAB_class"] = np.bytes_("cell")
            code_ds = f.create_dataset(
                f"#refs#/codes{k}", data=np.asarray(trial_codes, np.uint8)[:, None]
            )
            mcos += [cell.ref, code_ds.ref]
            obj = f.create_dataset(
                f"#refs#/obj{k}", data=np.array([[3707764736, 2, 1, 1, k, 1]], np.uint32)
            )
            obj.attrs["MATLAB_class"] = np.bytes_("categorical")
            obj.attrs["MATLAB_object_decode"] = np.int32(3)
            obj_refs.append(obj.ref)
        f.create_dataset("#subsystem#/MCOS", data=np.array([mcos], ref_dtype))
        lab = f.create_dataset("behavior_pseudolabels", data=np.array([obj_refs], ref_dtype))
        lab.attrs["MATLAB_class"] = np.bytes_("cell")
    return path


def test_hand_built_v73(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    xs = [rng.uniform(0, 100, (3, 5)) for _ in range(2)]  # MATLAB (parts, frames)
    ys = [rng.uniform(0, 100, (3, 5)) for _ in range(2)]
    cats = [("rest", "run"), ("run", "groom")]
    codes = [[1, 2, 0, 2, 1], [1, 1, 2, 2, 0]]
    path = _build_v73(tmp_path / "small.mat", xs, ys, cats, codes)
    sessions = load_dbm_mat(path)
    assert [s.name for s in sessions] == ["trial_01", "trial_02"]
    np.testing.assert_allclose(sessions[1].pose[:, :, 0], xs[1].T, rtol=1e-6)
    np.testing.assert_allclose(sessions[1].pose[:, :, 1], ys[1].T, rtol=1e-6)
    # categories merged in first-appearance order; code 0 (undefined) -> UNLABELLED
    assert sessions[0].label_names == ("rest", "run", "groom")
    np.testing.assert_array_equal(sessions[0].labels, [0, 1, UNLABELLED, 1, 0])
    np.testing.assert_array_equal(sessions[1].labels, [1, 1, 2, 2, UNLABELLED])


def test_v73_without_labels(tmp_path: Path) -> None:
    xs = [np.ones((2, 4))]
    path = _build_v73(tmp_path / "nolabels.mat", xs, xs)
    (s,) = load_dbm_mat(path)
    assert s.labels is None and s.pose.shape == (4, 2, 2)


def test_not_a_mat_file(tmp_path: Path) -> None:
    path = tmp_path / "old.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, Platform: GLNXA64" + bytes(200))
    with pytest.raises(DataFormatError, match="not a readable MATLAB .mat file"):
        load_dbm_mat(path)


def _cells(arrays: list) -> np.ndarray:
    out = np.empty((1, len(arrays)), dtype=object)
    for i, a in enumerate(arrays):
        out[0, i] = a
    return out


def _cellstr(names: list[str]) -> np.ndarray:
    out = np.empty((len(names), 1), dtype=object)
    out[:, 0] = names
    return out


@pytest.mark.real_data
def test_real_sample_resaved_as_v5_reads_the_same(shared_data: Path, tmp_path: Path) -> None:
    v73 = load_dbm_mat(shared_data / "dbm_sample" / "DBM_sample_data.mat")
    names = []
    for s in v73:
        table = np.array([*s.label_names, ""], dtype=object)
        names.append(_cellstr(list(table[s.labels])))
    path = tmp_path / "v5.mat"
    scipy.io.savemat(
        path,
        {
            "body_parts_X": _cells([s.pose[:, :, 0].T.astype(np.float64) for s in v73]),
            "body_parts_Y": _cells([s.pose[:, :, 1].T.astype(np.float64) for s in v73]),
            "behavior_pseudolabels": _cells(names),
        },
    )
    v5 = load_dbm_mat(path)
    assert [s.name for s in v5] == [s.name for s in v73]
    assert v5[0].label_names == tuple(sorted(CATEGORIES))  # text labels: alphabetical
    counts = dict.fromkeys(CATEGORIES, 0)
    for a, b in zip(v73, v5, strict=True):
        np.testing.assert_array_equal(a.pose, b.pose)
        as_text = np.array([*b.label_names, ""])[b.labels]
        np.testing.assert_array_equal(np.array([*a.label_names, ""])[a.labels], as_text)
        for name in CATEGORIES:
            counts[name] += int((as_text == name).sum())
    assert counts == COUNTS


def test_v5_numeric_codes_with_categories(tmp_path: Path) -> None:
    x = np.arange(8, dtype=np.float64).reshape(2, 4)
    path = tmp_path / "codes.mat"
    scipy.io.savemat(
        path,
        {
            "body_parts_X": _cells([x]),
            "body_parts_Y": _cells([x + 10]),
            "behavior_pseudolabels": _cells([np.array([[2.0, 0.0, 1.0, np.nan]])]),
            "behavior_categories": _cellstr(["rest", "walk"]),
        },
    )
    (s,) = load_dbm_mat(path)
    assert s.label_names == ("rest", "walk")
    np.testing.assert_array_equal(s.labels, [1, UNLABELLED, 0, UNLABELLED])
    np.testing.assert_array_equal(s.pose[:, :, 1], (x + 10).T)
    bad = tmp_path / "bad_code.mat"
    scipy.io.savemat(
        bad,
        {
            "body_parts_X": _cells([x]),
            "body_parts_Y": _cells([x]),
            "behavior_pseudolabels": _cells([np.array([[3.0, 1.0, 1.0, 1.0]])]),
            "behavior_categories": _cellstr(["rest", "walk"]),
        },
    )
    with pytest.raises(DataFormatError, match=r"code 3 for 2 behavior_categories"):
        load_dbm_mat(bad)


def test_v5_missing_variable_and_not_a_cell(tmp_path: Path) -> None:
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"body_parts_X": np.zeros((2, 3))})
    with pytest.raises(DataFormatError, match=r"missing variable\(s\) \['body_parts_Y'\]"):
        load_dbm_mat(path)
    scipy.io.savemat(path, {"body_parts_X": np.zeros((2, 3)), "body_parts_Y": np.zeros((2, 3))})
    with pytest.raises(DataFormatError, match="'body_parts_X' is not a cell"):
        load_dbm_mat(path)


def test_missing_variables(tmp_path: Path) -> None:
    path = tmp_path / "other.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("something_else", data=np.zeros(3))
    with pytest.raises(DataFormatError) as info:
        load_dbm_mat(path)
    msg = str(info.value)
    assert msg.startswith(str(path)) and "body_parts_X" in msg and "something_else" in msg


def test_mismatched_cells(tmp_path: Path) -> None:
    path = _build_v73(tmp_path / "bad.mat", [np.ones((2, 4))], [np.ones((2, 4))] * 2)
    with pytest.raises(DataFormatError, match="has 1 cells but body_parts_Y has 2"):
        load_dbm_mat(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        load_dbm_mat(tmp_path / "none.mat")
