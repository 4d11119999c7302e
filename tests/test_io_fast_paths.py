"""The fast paths of the readers give exactly what the fully checked paths give.

* ``load_dlc``: a well-formed CSV is parsed in one pass (pyarrow); every other
  file goes through the checked path. Both must agree on every file, valid or not.
* ``load_sessions(workers=...)``: reading in threads changes nothing but the time.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import SCORER, dlc_frame, random_pose, write_dlc_csv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import dlc, dlc_numbers, load_dlc, load_sessions, scan_folder
from dbm_lightning.io.catalogue import SessionEntry

PARTS = ["nose", "left_ear", "tail_base"]


def _checked(path: Path, **kwargs):
    """load_dlc through the checked path only."""
    fast = dlc.parse_body_fast
    dlc.parse_body_fast = lambda *a: None
    try:
        return load_dlc(path, **kwargs)
    finally:
        dlc.parse_body_fast = fast


def _outcome(load, path: Path):
    try:
        s = load(path)
    except DataFormatError as err:
        return ("error", str(err))
    return ("ok", s.pose, s.likelihood, s.bodyparts, s.name)


def _same(a, b) -> None:
    assert a[0] == b[0], (a, b)
    if a[0] == "error":
        assert a[1] == b[1]
        return
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[2], b[2])
    assert a[3:] == b[3:]


def _files(tmp_path: Path) -> list[Path]:
    """Valid and nearly valid DLC CSVs covering what the fast path must hand over."""
    pose, lik = random_pose(t=1200, parts=3, seed=3)
    pose[5, 1] = np.nan
    lik[5, 1] = np.nan
    base = dlc_frame(pose, lik, PARTS).to_csv()
    lines = base.split("\n")

    def cell(row: int, col: int, text: str) -> str:
        """``base`` with cell ``col`` of data row ``row`` replaced."""
        edited = list(lines)
        cells = edited[3 + row].split(",")
        cells[col] = text
        edited[3 + row] = ",".join(cells)
        return "\n".join(edited)

    def line(row: int, text: str | None) -> str:
        """``base`` with data row ``row`` replaced (``None``: removed)."""
        edited = list(lines)
        if text is None:
            del edited[3 + row]
        else:
            edited[3 + row] = text
        return "\n".join(edited)

    row50 = lines[3 + 50]
    images = [f"img{i:05d}.png," + ln.split(",", 1)[1] for i, ln in enumerate(lines[3:-1])]
    out = {
        "plain": base,
        "crlf": base.replace("\n", "\r\n"),
        "named_index": "\n".join(lines[:3] + ["frame" + "," * 9] + lines[3:]),
        "na_strings": cell(10, 1, "NA"),
        "nan_text": cell(11, 2, "nan"),
        "nan_likelihood": cell(12, 3, "NaN"),
        "quoted": cell(20, 1, f'"{lines[23].split(",")[1]}"'),
        "inf_text": cell(30, 1, "inf"),
        "padded_number": cell(40, 1, " 1.5"),
        "likelihood_above_1": cell(80, 3, "1.0000001"),
        "huge": cell(90, 1, "1e39"),
        "index_007": cell(7, 0, "007"),
        "index_plus": cell(10, 0, "+10"),
        "index_gap": line(10, None),
        "image_index": "\n".join(lines[:3] + images) + "\n",
        "short_row": line(50, row50.rsplit(",", 1)[0]),
        "long_row": line(50, row50 + ",1"),
        "blank_line": line(60, lines[3 + 60] + "\n"),
        "trailing_blank": base + "\n\n",
        "no_final_newline": base.rstrip("\n"),
        "lone_cr": line(70, lines[3 + 70].replace(",", "\r", 1)),
        "one_row": "\n".join(lines[:4]) + "\n",
    }
    paths = []
    for name, text in out.items():
        path = tmp_path / f"{name}{SCORER}.csv"
        path.write_bytes(text.encode())
        paths.append(path)
    return paths


def test_fast_path_equals_checked_path(tmp_path: Path) -> None:
    outcomes = {}
    for path in _files(tmp_path):
        fast, checked = _outcome(load_dlc, path), _outcome(_checked, path)
        _same(fast, checked)
        outcomes[path.name.split(SCORER)[0]] = fast[0]
    # the corpus has both kinds (and the fast path was taken for the plain file)
    assert outcomes["plain"] == "ok" and outcomes["short_row"] == "error"
    text = (tmp_path / f"plain{SCORER}.csv").read_bytes()
    assert dlc_numbers.parse_body_fast(text, dlc_numbers.body_offset(text, 3), 10) is not None


def test_fast_path_reads_multi_animal_files(tmp_path: Path) -> None:
    pose, lik = random_pose(t=40, parts=3, individuals=2, seed=4)
    path = write_dlc_csv(tmp_path / "ma.csv", dlc_frame(pose, lik, PARTS, individuals=["a", "b"]))
    for individuals in (["a"], ["b"], None, ["b", "a"]):
        _same(
            _outcome(lambda p, i=individuals: load_dlc(p, individuals=i), path),
            _outcome(lambda p, i=individuals: _checked(p, individuals=i), path),
        )


def test_frame_numbering_check() -> None:
    for n in (1, 2, 9, 10, 11, 99, 100, 101, 1000, 10_001):
        text = "".join(f"{i},1\n" for i in range(n)).encode()
        buf = np.frombuffer(text, dtype=np.uint8)
        newlines = dlc_numbers.find_byte(buf, ord("\n"), block=64)
        np.testing.assert_array_equal(newlines, np.flatnonzero(buf == ord("\n")))
        starts = np.concatenate([[0], newlines[:-1] + 1])
        assert dlc_numbers.is_frame_numbering(buf, starts), n
        lines = text.split(b"\n")
        for i in {0, n // 2, n - 1}:
            for bad in (str(i + 1), f"0{i}", f"+{i}", f" {i}", f"{i}0", "x"):
                edited = list(lines)
                edited[i] = bad.encode() + b",1"
                b2 = np.frombuffer(b"\n".join(edited), dtype=np.uint8)
                nl2 = np.flatnonzero(b2 == ord("\n"))
                assert not dlc_numbers.is_frame_numbering(b2, np.concatenate([[0], nl2[:-1] + 1]))


_CELLS = st.one_of(
    st.sampled_from(
        ["", "nan", "NaN", "NAN", "-nan", "+nan", "NA", "None", "null", "inf", "-Infinity",
         "1e5", "1E-3", "+1.5", ".5", "5.", "1_0", "0x10", " 1", "1 ", '"1"', "1e400", "-0"]
    ),
    st.text("0123456789.eE+-naifINF x", max_size=7),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(cells=st.lists(st.tuples(st.integers(0, 7), st.integers(1, 9), _CELLS), max_size=3))
def test_fuzzed_cells_fast_equals_checked(tmp_path: Path, cells) -> None:
    pose, lik = random_pose(t=8, parts=3, seed=1)
    lines = dlc_frame(pose, lik, PARTS).to_csv().split("\n")
    for row, col, text in cells:
        parts = lines[3 + row].split(",")
        parts[col] = text
        lines[3 + row] = ",".join(parts)
    path = tmp_path / "fuzz.csv"
    path.write_bytes("\n".join(lines).encode())
    _same(_outcome(load_dlc, path), _outcome(_checked, path))


# ------------------------------------------------------------------------- load_sessions


def _folder(tmp_path: Path, n: int = 7) -> Path:
    folder = tmp_path / "dlc"
    folder.mkdir()
    for i in range(n):
        pose, lik = random_pose(t=50 + i, parts=3, seed=i)
        write_dlc_csv(folder / f"m{i:02d}_day1.csv", dlc_frame(pose, lik, PARTS))
    return folder


@pytest.mark.parametrize("cache", [False, True])
def test_threads_change_nothing(tmp_path: Path, cache: bool) -> None:
    entries = scan_folder(_folder(tmp_path))
    cache_dir = tmp_path / "cache" if cache else False
    one = load_sessions(entries, cache_dir=cache_dir, progress=False, workers=1)
    for workers in (2, 3):
        many = load_sessions(entries, cache_dir=cache_dir, progress=False, workers=workers)
        assert [s.name for s in many.sessions] == [s.name for s in one.sessions]
        for a, b in zip(one.sessions, many.sessions, strict=True):
            np.testing.assert_array_equal(a.pose, b.pose)
            np.testing.assert_array_equal(a.likelihood, b.likelihood)
            assert (a.mouse, a.day, a.source) == (b.mouse, b.day, b.source)


def test_threads_raise_and_skip_in_order(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    for name in ("m02_day1.csv", "m05_day1.csv"):
        (folder / name).write_text((folder / name).read_text()[:-30])  # truncated
    entries = [*scan_folder(folder), SessionEntry(folder / "gone.csv", "m09", 1)]
    for workers in (1, 3):
        with pytest.raises(DataFormatError, match="m02_day1.csv"):
            load_sessions(entries, cache_dir=False, progress=False, workers=workers)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = load_sessions(
                entries, skip_corrupted=True, cache_dir=False, progress=False, workers=workers
            )
        assert [s.path.name for s in result.skipped] == ["m02_day1.csv", "m05_day1.csv", "gone.csv"]
        assert [str(w.message).split(":")[0] for w in caught] == [
            f"skipping {s.path}" for s in result.skipped
        ]
        assert len(result.sessions) == 5
