"""Label CSV reader: frame,label (names or codes) and one-hot annotation exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import load_labels


def _write(tmp_path: Path, text: str, name: str = "s.labels.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _raises(path: Path, n_frames: int, *fragments: str, **kwargs) -> None:
    with pytest.raises(DataFormatError) as info:
        load_labels(path, n_frames, **kwargs)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    for frag in fragments:
        assert frag in msg, msg


def test_string_labels_sorted_alphabetically(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,label\n0,rest\n1,run\n2,groom\n3,\n4,rest\n")
    labels, names = load_labels(path, 5)
    assert names == ("groom", "rest", "run")
    np.testing.assert_array_equal(labels, [1, 2, 0, -1, 1])
    assert labels.dtype == np.int64


def test_string_labels_with_given_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,label\n0,rest\n1,run\n2,rest\n")
    labels, names = load_labels(path, 3, label_names=["run", "rest", "groom"])
    assert names == ("run", "rest", "groom")
    np.testing.assert_array_equal(labels, [1, 0, 1])
    _raises(path, 3, "unknown label(s) ['run']", label_names=["rest", "groom"])


def test_integer_codes(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,label\n0,2\n1,0\n2,-1\n3,2\n")
    labels, names = load_labels(path, 4)
    np.testing.assert_array_equal(labels, [2, 0, -1, 2])
    assert names == ("0", "1", "2")
    labels, names = load_labels(path, 4, label_names=("a", "b", "c"))
    assert names == ("a", "b", "c")
    _raises(path, 4, "label code 2", "out of range", label_names=("a", "b"))


def test_frame_column_any_order(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,label\n2,c\n0,a\n1,b\n")
    labels, names = load_labels(path, 3)
    assert names == ("a", "b", "c")
    np.testing.assert_array_equal(labels, [0, 1, 2])


def test_label_column_only(tmp_path: Path) -> None:
    labels, _ = load_labels(_write(tmp_path, "label\nx\ny\n"), 2)
    np.testing.assert_array_equal(labels, [0, 1])


def test_length_mismatch_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,label\n0,a\n1,b\n2,a\n")
    _raises(path, 4, "3 labelled frames", "4 frames")
    _raises(path, 2, "3 labelled frames", "2 frames")  # never a silent trim


def test_bad_frame_column(tmp_path: Path) -> None:
    _raises(_write(tmp_path, "frame,label\n0,a\n0,b\n2,a\n", "dup.csv"), 3, "frame 0 appears")
    _raises(_write(tmp_path, "frame,label\n0,a\nx,b\n", "text.csv"), 2, "'x'", "not an integer")


def test_onehot_with_frame_column(tmp_path: Path) -> None:
    text = "frame,rest,run,groom\n0,1,0,0\n1,0,0,1\n2,0,0,0\n3,0,1,0\n"
    path = _write(tmp_path, text)
    labels, names = load_labels(path, 4)
    assert names == ("rest", "run", "groom")  # file column order
    np.testing.assert_array_equal(labels, [0, 2, -1, 1])
    labels, names = load_labels(path, 4, label_names=["groom", "run", "rest", "other"])
    np.testing.assert_array_equal(labels, [2, 0, -1, 1])
    _raises(path, 4, "unknown label column(s) ['groom']", label_names=["rest", "run"])


def test_onehot_without_frame_column(tmp_path: Path) -> None:
    labels, names = load_labels(_write(tmp_path, "a,b\n0,1\n1,0\n0,0\n"), 3)
    assert names == ("a", "b")
    np.testing.assert_array_equal(labels, [1, 0, -1])


def test_onehot_two_behaviours_in_one_frame(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,rest,run\n0,1,0\n1,1,1\n2,0,1\n")
    _raises(path, 3, "frame 1", "several behaviours", "['rest', 'run']")


def test_onehot_not_binary(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,rest,run\n0,1,0\n1,2,0\n")
    _raises(path, 2, "'2'", "'rest'", "not 0/1")


def test_empty_and_missing(tmp_path: Path) -> None:
    _raises(_write(tmp_path, ""), 3, "empty")
    _raises(tmp_path / "none.csv", 3, "not found")
