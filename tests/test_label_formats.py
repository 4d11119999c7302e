"""Annotation-tool label readers: Caltech, BORIS, SimBA, DeepEthogram and plain CSV."""

from __future__ import annotations

import csv
import lzma
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.label_formats import LABEL_FORMATS, read_label_file

RAT_CLASSES = ("aggression", "nonsocial", "social")
ETHOME = "ethome_boris/boris/e3v813a-20210610T{}_reencode{}.csv"


def _write(tmp_path: Path, text: str, name: str = "labels.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _raises(path: Path, n_frames: int, *fragments: str, **kwargs) -> str:
    with pytest.raises(DataFormatError) as info:
        read_label_file(path, n_frames, **kwargs)
    msg = str(info.value)
    assert msg.startswith(str(path)), msg
    assert "\n" not in msg, msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


# ----------------------------------------------------------------------------- caltech

CONFIG = "Caltech Behavior Annotator - Annotation File\n\nConfiguration file:\nbase\tz\nrest\tr\n\n"


def _caltech(*streams: list[tuple[int, int, str]], newline: str = "\n") -> str:
    text = CONFIG
    for i, rows in enumerate(streams, 1):
        text += f"S{i}:\tstart\tend\ttype\n-----------------------------\n"
        text += "".join(f"   \t{s}\t{e}\t{t}\n" for s, e, t in rows) + "  \n"
    return text.replace("\n", newline)


S1 = [(1, 2, "base"), (3, 5, "Social "), (6, 6, "rest"), (8, 10, "social")]
S2 = [(1, 4, "rest"), (5, 10, "base")]


def test_caltech_streams_ignore_and_case(tmp_path: Path) -> None:
    path = _write(tmp_path, _caltech(S1, S2, newline="\r\n"))
    labels, names = read_label_file(path, 10, ignore=["BASE"])
    assert names == ("rest", "social")  # alphabetical; "Social " is "social"
    np.testing.assert_array_equal(labels, [-1, -1, 1, 1, 1, 0, -1, 1, 1, 1])
    assert labels.dtype == np.int64
    labels, names = read_label_file(path, 10, format="caltech")
    assert names == ("base", "rest", "social")
    np.testing.assert_array_equal(labels, [0, 0, 2, 2, 2, 1, -1, 2, 2, 2])
    for stream in ("S2", "s2", "2"):
        labels, names = read_label_file(path, 10, stream=stream, ignore=["base"])
        assert names == ("rest",)
        np.testing.assert_array_equal(labels, [0] * 4 + [-1] * 6)


def test_caltech_rename_and_label_names(tmp_path: Path) -> None:
    path = _write(tmp_path, _caltech(S1))
    labels, names = read_label_file(
        path, 10, rename={"REST": "social", "base": "other"}, ignore=["other"]
    )
    assert names == ("social",)
    np.testing.assert_array_equal(labels, [-1, -1, 0, 0, 0, 0, -1, 0, 0, 0])
    labels, names = read_label_file(path, 10, label_names=["Social", "Rest", "x"], ignore="base")
    assert names == ("Social", "Rest", "x")  # as given, in that order
    np.testing.assert_array_equal(labels, [-1, -1, 0, 0, 0, 1, -1, 0, 0, 0])
    _raises(path, 10, "label 'base' not in label_names ['social', 'rest']",
            label_names=["social", "rest"])  # fmt: skip
    with pytest.raises(ValueError, match="both in label_names and in ignore"):
        read_label_file(path, 10, label_names=["rest", "Base"], ignore=["base"])


def test_caltech_bad_files(tmp_path: Path) -> None:
    path = _write(tmp_path, _caltech(S1, S2), "streams.txt")
    _raises(path, 10, "stream 'S3' is not in the file", "['S1', 'S2']", stream="S3")
    over = _write(tmp_path, _caltech([(1, 5, "a"), (6, 8, "b"), (8, 10, "c")]), "overlap.txt")
    _raises(over, 10, "overlapping intervals in stream S1", "(6-8 b)", "(8-10 c)", "line 11")
    text = _write(tmp_path, _caltech([(1, 5, "a"), ("x6", 10, "b")]), "text.txt")
    _raises(text, 10, "line 10", "start frame 'x6' is not an integer")
    back = _write(tmp_path, _caltech([(5, 4, "a")]), "back.txt")
    _raises(back, 10, "line 9", "interval 5-4")
    stray = _write(tmp_path, "Caltech Behavior Annotator - Annotation File\n\nhello\n", "x.txt")
    _raises(stray, 10, "line 3", "unexpected text 'hello'", format="caltech")


def test_caltech_past_the_end(tmp_path: Path) -> None:
    ok = _write(tmp_path, _caltech([(1, 20, "a"), (21, 40, "b")]), "ok.txt")
    with pytest.warns(UserWarning, match=r"ok\.txt: the stream S1 intervals run 30 frame\(s\)"):
        labels, names = read_label_file(ok, 10)  # 30 extra frames: tolerated for 10 frames
    assert names == ("a", "b")
    np.testing.assert_array_equal(labels, [0] * 10)
    bad = _write(tmp_path, _caltech([(1, 20, "a"), (21, 41, "b")]), "bad.txt")
    _raises(bad, 10, "31 frames past the session's 10 frames", "wrong label file")
    big = _write(tmp_path, _caltech([(1, 4040, "a")]), "big.txt")  # 1 % of 4000 frames: 40
    with pytest.warns(UserWarning, match="40 frame"):
        assert read_label_file(big, 4000)[0].shape == (4000,)
    _raises(big, 3999, "41 frames past", "more than the 39 tolerated")


# ----------------------------------------------------------------------------- boris

BORIS_HEAD = (
    "Observation id,obs1,,,,,,,\n,,,,,,,,\nTime offset (s),0.5,,,,,,,\n,,,,,,,,\n"
    "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
)


def _events(*rows: tuple, fps: str = "10.0") -> str:
    return BORIS_HEAD + "".join(f"{t},v.avi,10,{fps},{s},{b},,,{k}\n" for t, s, b, k in rows)


GROOM = [(1.0, "adult", "groom", "START"), (1.5, "adult", "groom", "STOP"),
         (2.0, "adult", "bite", "POINT"),
         (2.5, "adult", "Groom ", "START"), (3.04, "adult", "Groom ", "STOP")]  # fmt: skip


def test_boris_events_point_offset_background(tmp_path: Path) -> None:
    path = _write(tmp_path, _events(*GROOM), "events.csv")
    labels, names = read_label_file(path, 30, fps=99)  # the file's FPS wins
    assert names == ("bite", "groom", "other")
    want = np.full(30, 2)
    want[5:10] = 1  # (1.0 - 0.5) * 10 = 5 .. (1.5 - 0.5) * 10 - 1
    want[15] = 0  # POINT at (2.0 - 0.5) * 10
    want[20:25] = 1  # 3.04 s -> round(25.4) = 25
    np.testing.assert_array_equal(labels, want)
    labels, names = read_label_file(path, 30, background=None, ignore=["bite"])
    assert names == ("groom",)
    np.testing.assert_array_equal(labels, np.where(want == 1, 0, -1))
    labels, names = read_label_file(path, 30, label_names=["other", "groom", "bite"])
    np.testing.assert_array_equal(labels, np.array([2, 1, 0])[want])
    _raises(path, 30, "background class 'other'", label_names=["groom", "bite"])


def test_boris_fps(tmp_path: Path) -> None:
    path = _write(tmp_path, _events(*GROOM[:2], fps="NA"), "nofps.csv")
    labels, _ = read_label_file(path, 20, fps=20)
    np.testing.assert_array_equal(np.flatnonzero(labels == 0), np.arange(10, 20))
    _raises(path, 20, "no FPS in the file", "fps=")
    bad = _write(tmp_path, _events(*GROOM[:2], fps="abc"), "badfps.csv")
    _raises(bad, 20, "line 6", "FPS 'abc' is not a number")


def test_boris_subjects(tmp_path: Path) -> None:
    rows = [*GROOM[:2], (0.5, "juvenile", "sniff", "START"), (0.8, "juvenile", "sniff", "STOP")]
    path = _write(tmp_path, _events(*rows), "subjects.csv")
    labels, names = read_label_file(path, 12, subject=" Juvenile")
    assert names == ("other", "sniff")
    np.testing.assert_array_equal(np.flatnonzero(labels == 1), [0, 1, 2])
    labels, names = read_label_file(path, 12, subject="adult")
    assert names == ("groom", "other")
    np.testing.assert_array_equal(np.flatnonzero(labels == 0), [5, 6, 7, 8, 9])
    _raises(path, 12, "several subjects ['adult', 'juvenile']", "subject=")
    _raises(path, 12, "subject 'cat' is not in the file", "['adult', 'juvenile']", subject="cat")


def test_boris_bad_events(tmp_path: Path) -> None:
    start = _write(tmp_path, _events(GROOM[0], (2.0, "adult", "groom", "START")), "start.csv")
    _raises(start, 30, "line 6: START of 'groom' without STOP", "next START at line 7")
    last = _write(tmp_path, _events(GROOM[0]), "last.csv")
    _raises(last, 30, "line 6: START of 'groom' without STOP")
    stop = _write(tmp_path, _events(GROOM[1]), "stop.csv")
    _raises(stop, 30, "line 6: STOP of 'groom' without START")
    rows = [*GROOM[:2], (1.2, "adult", "sniff", "START"), (2.5, "adult", "sniff", "STOP")]
    over = _write(tmp_path, _events(*rows), "overlap.csv")
    _raises(over, 30, "overlapping events 'groom' 1-1.5 s (line 6)", "'sniff' 1.2-2.5 s (line 8)")
    labels, names = read_label_file(over, 30, rename={"sniff": "groom"})  # one class: merged
    assert names == ("groom", "other")
    np.testing.assert_array_equal(np.flatnonzero(labels == 0), np.arange(5, 20))
    text = _write(tmp_path, _events(("1.o", "adult", "groom", "START")), "text.csv")
    _raises(text, 30, "line 6: time '1.o' is not a number")
    odd = _write(tmp_path, _events((1.0, "adult", "groom", "BEGIN")), "odd.csv")
    _raises(odd, 30, "line 6: status 'BEGIN'")
    far = _write(tmp_path, _events((1.0, "adult", "a", "START"), (9.0, "adult", "a", "STOP")))
    _raises(far, 30, "the events run to frame 85, 55 frames past the session's 30 frames")


def test_boris_aggregated_tsv(tmp_path: Path) -> None:
    cols = ["Observation id", "Observation date", "Description", "Observation type", "Source",
            "Time offset (s)", "Coding duration", "Media duration (s)", "FPS (frame/s)",
            "Subject", "Observation duration by subject by observation", "Behavior",
            "Behavioral category", "Behavior type", "Start (s)", "Stop (s)", "Duration (s)",
            "Media file name", "Image index start", "Image index stop", "Comment start",
            "Comment stop"]  # fmt: skip
    meta = ["obs1", "2024-01-15 12:00:00", "", "MEDIA", "v.mp4", "0.0", "1", "1.0", "25.0"]
    rows = [
        [*meta, "A", "1", "walk", "loco", "STATE", "0.2", "0.6", "0.4", "v.mp4", "5", "15", "", ""],
        [*meta, "A", "1", "rear", "", "POINT", "0.8", "NA", "NA", "v.mp4", "20", "20", "", ""],
        [*meta, "B", "1", "walk", "loco", "STATE", "0.0", "1.0", "1.0", "v.mp4", "0", "25", "", ""],
    ]
    path = _write(tmp_path, "\n".join("\t".join(r) for r in [cols, *rows]) + "\n", "agg.tsv")
    labels, names = read_label_file(path, 25, subject="A")
    assert names == ("other", "rear", "walk")
    want = np.zeros(25, int)
    want[5:15] = 2
    want[20] = 1
    np.testing.assert_array_equal(labels, want)
    _raises(path, 25, "several subjects ['A', 'B']")
    two = _write(tmp_path, "\n".join("\t".join(r) for r in [cols, rows[0], ["obs2", *rows[1][1:]]]))
    _raises(two, 25, "several observations ['obs1', 'obs2']")


# ----------------------------------------------------------------------------- simba

SIMBA = (
    ",Nose_1_x,Nose_1_y,Nose_1_p,Movement_mouse_1,Attack,Sniffing\n"
    "0,10.5,20.1,0.99,1.5,0,0\n1,10.6,20.2,0.98,2.5,1,0\n"
    "2,10.7,20.3,0.97,0.5,0,1\n3,10.8,20.4,0.96,0.0,0,0\n"
)


def test_simba(tmp_path: Path) -> None:
    path = _write(tmp_path, SIMBA, "Together_1.csv")
    labels, names = read_label_file(path, 4)
    assert names == ("other", "attack", "sniffing")  # no-behaviour class, then file order
    np.testing.assert_array_equal(labels, [0, 1, 2, 0])
    labels, names = read_label_file(path, 4, background=None, format="simba")
    assert names == ("attack", "sniffing")
    np.testing.assert_array_equal(labels, [-1, 0, 1, -1])
    labels, names = read_label_file(path, 4, ignore=["sniffing"])  # one behaviour left
    assert names == ("not_attack", "attack")
    np.testing.assert_array_equal(labels, [0, 1, -1, 0])
    labels, names = read_label_file(path, 4, label_names=["attack", "not_attack"])
    assert names == ("attack", "not_attack")  # label_names picks the column
    np.testing.assert_array_equal(labels, [1, 0, 1, 1])
    _raises(path, 4, "'not_attack'", "not in label_names ['attack']", label_names=["attack"])
    _raises(path, 4, "label_names ['chase'] are not columns", label_names=["chase", "attack"])
    _raises(path, 5, "4 labelled frames but the session has 5 frames")


def test_simba_bad_cells(tmp_path: Path) -> None:
    two = _write(tmp_path, SIMBA.replace("2.5,1,0", "2.5,1,1"), "two.csv")
    _raises(two, 4, "frame 1 (row 2) has several behaviours set to 1: ['Attack', 'Sniffing']")
    text = _write(tmp_path, SIMBA.replace("0.5,0,1", "0.5,x,1"), "text.csv")
    _raises(text, 4, "row 3, column 'Attack': value 'x' is not 0/1", format="simba",
            label_names=["other", "attack", "sniffing"])  # fmt: skip
    frames = _write(tmp_path, SIMBA.replace("\n3,", "\n0,"), "frames.csv")
    _raises(frames, 4, "frame 0 appears more than once")


# ----------------------------------------------------------------------------- deepethogram

DEG = ",background,groom,Rear\n0,1,0,0\n1,0,1,0\n2,0,0,1\n3,-1,-1,-1\n4,0,0,0\n"


def test_deepethogram(tmp_path: Path) -> None:
    path = _write(tmp_path, DEG, "mouse_labels.csv")
    labels, names = read_label_file(path, 5)
    assert names == ("background", "groom", "rear")
    np.testing.assert_array_equal(labels, [0, 1, 2, -1, -1])
    labels, names = read_label_file(path, 5, ignore=["Background"])
    assert names == ("groom", "rear")
    np.testing.assert_array_equal(labels, [-1, 0, 1, -1, -1])
    two = _write(tmp_path, DEG.replace("1,0,1,0", "1,1,1,0"), "two.csv")
    _raises(two, 5, "frame 1 (row 2)", "['background', 'groom']")
    text = _write(tmp_path, DEG.replace("2,0,0,1", "2,0,0,yes"), "text.csv")
    _raises(text, 5, "row 3, column 'Rear': value 'yes' is not 0/1")
    _raises(path, 6, "5 labelled frames but the session has 6 frames")


# ----------------------------------------------------------------------------- csv, detection


def test_plain_csv_with_name_rules(tmp_path: Path) -> None:
    path = _write(tmp_path, "frame,label\n0,Rest\n1,run \n2,rest\n3,\n", "plain.csv")
    labels, names = read_label_file(path, 4)
    assert names == ("rest", "run")
    np.testing.assert_array_equal(labels, [0, 1, 0, -1])
    labels, names = read_label_file(path, 4, rename={"RUN": "locomotion"})
    assert names == ("locomotion", "rest")
    np.testing.assert_array_equal(labels, [1, 0, 1, -1])
    labels, names = read_label_file(path, 4, ignore=["run"], format="csv")
    assert names == ("rest",)
    np.testing.assert_array_equal(labels, [0, -1, 0, -1])
    codes = _write(tmp_path, "frame,label\n0,1\n1,0\n", "codes.csv")
    labels, names = read_label_file(codes, 2, label_names=["a", "b"])
    assert names == ("a", "b")
    np.testing.assert_array_equal(labels, [1, 0])
    onehot = _write(tmp_path, "frame,Walk,rest\n0,1,0\n1,0,0\n", "onehot.csv")
    labels, names = read_label_file(onehot, 2)
    assert names == ("walk", "rest")
    np.testing.assert_array_equal(labels, [0, -1])


def test_format_detection_and_bad_files(tmp_path: Path) -> None:
    assert LABEL_FORMATS == ("csv", "caltech", "boris", "simba", "deepethogram")
    odd = _write(tmp_path, "a,b\nx,1.5\n", "odd.txt")
    _raises(odd, 1, "cannot tell the label format", *LABEL_FORMATS)
    _raises(_write(tmp_path, "", "empty.csv"), 3, "label file is empty")
    _raises(_write(tmp_path, " \n\n", "blank.csv"), 3, "label file is empty")
    _raises(tmp_path / "none.csv", 3, "label file not found")
    (tmp_path / "bin.h5").write_bytes(b"\x89HDF\r\n\x1a\n\x00\x00\x00")
    _raises(tmp_path / "bin.h5", 3, "binary")
    # a Caltech file read as BORIS is an error, not a traceback
    _raises(_write(tmp_path, _caltech(S1), "c.txt"), 10, "no BORIS header row", format="boris")
    with pytest.raises(ValueError, match="format 'mars'"):
        read_label_file(odd, 1, format="mars")


# ----------------------------------------------------------------------------- real files


def _caltech_counts(path: Path, stream: str, n_frames: int) -> dict[str, int]:
    """Frames per type of ``stream`` counted from the text (independent of the reader)."""
    counts: dict[str, int] = {}
    section = None
    for line in path.read_text().splitlines():
        if re.match(r"S\d+:", line):
            section = line.split(":")[0]
        parts = line.split()
        if section == stream and len(parts) == 3 and parts[0].isdigit():
            first, last = int(parts[0]), min(int(parts[1]), n_frames)
            counts[parts[2]] = counts.get(parts[2], 0) + max(0, last - first + 1)
    return counts


@pytest.mark.real_data
def test_rat_social_caltech_files(shared_data: Path) -> None:
    files = sorted((shared_data / "rat_social" / "annotations").glob("*_annot.txt"))
    assert len(files) == 46
    for path in files:
        counts = _caltech_counts(path, "S1", 10**9)
        n_frames = sum(counts.values())  # S1 tiles the video
        labels, names = read_label_file(path, n_frames, ignore=["base"], label_names=RAT_CLASSES)
        assert names == RAT_CLASSES
        assert labels.shape == (n_frames,)
        got = np.bincount(labels + 1, minlength=4)
        assert got.tolist() == [counts["base"], *(counts.get(c, 0) for c in RAT_CLASSES)]
        _, plain = read_label_file(path, n_frames, ignore=["base"])  # alphabetical, present
        assert set(plain) <= set(RAT_CLASSES) and "social" in plain
    one = shared_data / "rat_social" / "annotations" / "1_annot.txt"
    labels, names = read_label_file(one, 14734, ignore=["base"])
    assert names == RAT_CLASSES
    assert int((labels == 2).sum()) == _caltech_counts(one, "S1", 14734)["social"] == 4082
    labels, names = read_label_file(one, 14734, stream="S2", ignore=["base"])
    counts = _caltech_counts(one, "S2", 14734)
    assert names == tuple(sorted(set(counts) - {"base"}))
    assert {n: int((labels == i).sum()) for i, n in enumerate(names)} == {
        n: c for n, c in counts.items() if n != "base"
    }
    _raises(shared_data / "rat_social" / "annotations" / "4_annot.txt", 13909, "['S1']", stream=2)


@pytest.mark.real_data
def test_rat_social_annotations_past_the_pose(shared_data: Path) -> None:
    folder = shared_data / "rat_social"
    dlc = next((folder / "dlc").glob("14DLC_*.csv.xz"))
    with lzma.open(dlc, "rt") as f:
        n_frames = sum(1 for _ in f) - 4  # 4 header rows
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels, names = read_label_file(folder / "annotations" / "14_annot.txt", n_frames,
                                        ignore=["base"])  # fmt: skip
    assert [str(w.message) for w in caught] == [
        f"{folder / 'annotations' / '14_annot.txt'}: the stream S1 intervals run 59 frame(s) "
        f"past the session's {n_frames} frames; the extra frames were dropped"
    ]
    assert labels.shape == (n_frames,) == (15183,)


def _boris_frames(path: Path, behaviour: str, fps: float = 30.0) -> list[tuple[int, int]]:
    """START/STOP pairs of ``behaviour`` as frame ranges, straight from the CSV rows."""
    rows = [r for r in csv.reader(path.open()) if len(r) == 9 and r[5] == behaviour]
    times = [(float(r[0]), r[8]) for r in rows]
    starts = [t for t, k in times if k == "START"]
    stops = [t for t, k in times if k == "STOP"]
    return [(round(a * fps), round(b * fps)) for a, b in zip(starts, stops, strict=True)]


@pytest.mark.real_data
def test_ethome_boris_events(shared_data: Path) -> None:
    path = shared_data / ETHOME.format("122332-122642", "")
    labels, names = read_label_file(path, 5700)
    assert names == ("interact", "other")
    bouts = np.flatnonzero(np.diff(np.r_[0, (labels == 0).astype(int)]) == 1)
    assert bouts.size == 10
    expected = _boris_frames(path, "interact")
    assert int((labels == 0).sum()) == sum(b - a for a, b in expected) == 663  # 22.1 s x 30
    assert bouts.tolist() == [a for a, _ in expected]
    assert (labels == 1).sum() == 5700 - 663


@pytest.mark.real_data
def test_ethome_boris_multiple_behaviours(shared_data: Path) -> None:
    path = shared_data / ETHOME.format("120637-121213", "_multiple_behaviors")
    _raises(path, 10080, "overlapping events", "'mount' 18.075-23.1 s", "'interact' 17.075-22.1")
    labels, names = read_label_file(path, 10080, ignore=["interact"])
    assert names == ("mount", "other")
    mount = _boris_frames(path, "mount")
    assert int((labels == 0).sum()) == sum(b - a for a, b in mount) == 222
    in_mount = set().union(*(range(a, b) for a, b in mount))
    in_interact = set().union(*(range(a, b) for a, b in _boris_frames(path, "interact")))
    assert int((labels == -1).sum()) == len(in_interact - in_mount) == 935  # ignored: unlabelled
