"""Bad input is never lost and never silent.

1. A corpus of malformed files, generated here from small valid ones: each must raise
   :class:`~dbm_lightning.errors.DataFormatError` whose message is ``"PATH: problem"`` with the
   offending file and a keyword of the problem (never a bare pandas/numpy/h5py/torch error).
2. Property-based fuzzing of the DeepLabCut CSV reader and the label CSV reader: random
   mutations of a valid file either load into a consistent session whose rows and values are
   exactly those of the text, or raise ``DataFormatError`` naming the file.
"""

from __future__ import annotations

import lzma
import math
import zlib
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers import dlc_frame, write_dlc_csv, write_dlc_h5
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from dbm_lightning.data import DBMDataModule, DLCFolderSource, prepare_session
from dbm_lightning.errors import DataFormatError
from dbm_lightning.io import (
    load_dbm_mat,
    load_dlc,
    load_labels,
    load_sessions,
    read_manifest,
    scan_folder,
)
from dbm_lightning.io.readers import load_pose
from dbm_lightning.labeling import CircleZone, FileLabeler, RuleLabeler
from dbm_lightning.preprocess import PreprocessConfig
from dbm_lightning.skeleton import BodypartMap

PARTS = ("nose", "body_centre", "tail_base")
T = 12
LABELS = ("rest", "run", "groom")


# ---------------------------------------------------------------------------- writers


def good_csv(
    folder: Path, name: str = "m01_day1.csv", parts=PARTS, t: int = T, lik: float = 0.9
) -> Path:
    """A valid single-animal DeepLabCut CSV (all points finite, likelihood ``lik``)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()) + len(parts))  # each file its own
    pose = rng.uniform(10, 400, (t, len(parts), 2))
    likelihood = np.full((t, len(parts)), lik)
    folder.mkdir(parents=True, exist_ok=True)
    return write_dlc_csv(folder / name, dlc_frame(pose, likelihood, list(parts)))


def edit_lines(path: Path, edit: Callable[[list[str]], object]) -> Path:
    """Apply ``edit`` to the file's lines in place (keeping the final newline)."""
    lines = path.read_text().splitlines()
    edit(lines)
    path.write_text("\n".join(lines) + "\n")
    return path


def set_cell(lines: list[str], line: int, col: int, text: str) -> None:
    cells = lines[line].split(",")
    cells[col] = text
    lines[line] = ",".join(cells)


def good_labels(folder: Path, name: str = "m01_day1.labels.csv", t: int = T) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("frame,label\n" + "".join(f"{i},{LABELS[i % 3]}\n" for i in range(t)))
    return path


def mat_file(path: Path, variables: dict[str, list[np.ndarray] | np.ndarray]) -> Path:
    """A MATLAB v7.3 (HDF5) file: a list value is a 1 x n cell of single matrices."""
    ref_dtype = h5py.special_dtype(ref=h5py.Reference)
    with h5py.File(path, "w", userblock_size=512) as f:
        for var, value in variables.items():
            if isinstance(value, np.ndarray):
                ds = f.create_dataset(var, data=value)
                ds.attrs["MATLAB_class"] = np.bytes_("double")
                continue
            refs = []
            for i, arr in enumerate(value):
                cell = f.create_dataset(f"#refs#/{var}_{i}", data=arr.T.astype(np.float32))
                cell.attrs["MATLAB_class"] = np.bytes_("single")
                refs.append(cell.ref)
            ds = f.create_dataset(var, data=np.array([refs], dtype=ref_dtype))
            ds.attrs["MATLAB_class"] = np.bytes_("cell")
    return path


def datamodule(folder: Path) -> DBMDataModule:
    return DBMDataModule(
        source=DLCFolderSource(folder),
        labeler=RuleLabeler(zone_bodypart="nose", speed_bodypart="body_centre"),
        preprocess=PreprocessConfig(likelihood_threshold=0.6, max_gap=3),
        window=4,
        stride=4,
        cache_dir=False,
    )


def pipeline_state(bodyparts=PARTS) -> dict:
    """Just enough of a checkpoint's pipeline state for :func:`prepare_session`."""
    n = len(bodyparts)
    n_feat = n * (n - 1) // 2 + n * n
    return {
        "bodyparts": list(bodyparts),
        "preprocess": {"likelihood_threshold": 0.6, "max_gap": 3},
        "features": {},
        "arena": {"x_min": 0.0, "x_max": 640.0, "y_min": 0.0, "y_max": 480.0},
        "standardizer": {"mean": [0.0] * n_feat, "std": [1.0] * n_feat},
        "fps": 30.0,
    }


# ------------------------------------------------------------------------- the corpus
# Each case writes its bad input under tmp and returns (the file the error must name,
# the call that must raise).

Case = Callable[[Path], tuple[Path, Callable[[], object]]]


def _dlc(edit: Callable[[list[str]], object], name: str = "m01_day1.csv") -> Case:
    def case(tmp: Path) -> tuple[Path, Callable[[], object]]:
        path = edit_lines(good_csv(tmp, name), edit)
        return path, lambda: load_dlc(path)

    return case


def _raw(content: bytes, name: str = "m01_day1.csv", reader=load_dlc) -> Case:
    def case(tmp: Path) -> tuple[Path, Callable[[], object]]:
        path = tmp / name
        path.write_bytes(content)
        return path, lambda: reader(path)

    return case


def dlc_truncated_mid_row(tmp: Path):
    path = good_csv(tmp)
    path.write_bytes(path.read_bytes()[:-25])
    return path, lambda: load_dlc(path)


def dlc_truncated_at_cell_boundary(tmp: Path):
    """Cut inside the last number: every row still has all its cells, only the final
    newline tells that the file did not end there."""
    path = good_csv(tmp)
    path.write_bytes(path.read_bytes()[:-4])
    return path, lambda: load_dlc(path)


def dlc_header_only(tmp: Path):
    path = edit_lines(good_csv(tmp), lambda lines: lines.__delitem__(slice(3, None)))
    return path, lambda: load_dlc(path)


def dlc_nan_only_bodypart(tmp: Path):
    def blank(lines: list[str]) -> None:
        for i in range(3, len(lines)):
            for col in (4, 5, 6):  # body_centre x, y, likelihood
                set_cell(lines, i, col, "")

    path = edit_lines(good_csv(tmp), blank)
    return path, lambda: load_dlc(path)


def dlc_semicolons(tmp: Path):
    path = good_csv(tmp)
    path.write_text(path.read_text().replace(",", ";"))
    return path, lambda: load_dlc(path)


def h5_wrong_key(tmp: Path):
    df = pd.read_csv(good_csv(tmp), header=[0, 1, 2], index_col=0)
    path = tmp / "m01_day1.h5"
    df.to_hdf(path, key="poses", format="table", mode="w")
    df.to_hdf(path, key="tracks", format="table", mode="a")
    return path, lambda: load_dlc(path)


def h5_no_pandas_table(tmp: Path):
    path = tmp / "m01_day1.h5"
    with h5py.File(path, "w") as f:
        f["pose"] = np.zeros((T, 6))
    return path, lambda: load_dlc(path)


def h5_repeated_frames(tmp: Path):
    df = pd.read_csv(good_csv(tmp), header=[0, 1, 2], index_col=0)
    path = write_dlc_h5(tmp / "m01_day1.h5", df.iloc[[0, 1, 2, 2, 3]])
    return path, lambda: load_dlc(path)


def labels_wrong_frame_count(tmp: Path):
    path = good_labels(tmp, t=T - 2)
    return path, lambda: load_labels(path, T, LABELS)


def labels_unknown_name(tmp: Path):
    """Through the FileLabeler, as the data module uses it, with the config's class order."""
    csv = good_csv(tmp)
    path = edit_lines(good_labels(tmp), lambda lines: set_cell(lines, 5, 1, "sniffing"))
    labeler = FileLabeler("{base}.labels.csv", label_names=LABELS)
    return path, lambda: labeler.label(load_dlc(csv))


def labels_non_integer_frame(tmp: Path):
    path = edit_lines(good_labels(tmp), lambda lines: set_cell(lines, 4, 0, "3.5"))
    return path, lambda: load_labels(path, T, LABELS)


def labels_duplicated_frame(tmp: Path):
    path = edit_lines(good_labels(tmp), lambda lines: set_cell(lines, 4, 0, "2"))
    return path, lambda: load_labels(path, T, LABELS)


def labels_mixed_codes_and_names(tmp: Path):
    path = edit_lines(good_labels(tmp), lambda lines: set_cell(lines, 4, 1, "2"))
    return path, lambda: load_labels(path, T)


def labels_malformed_code(tmp: Path):
    path = tmp / "m01_day1.labels.csv"
    path.write_text("frame,label\n" + "".join(f"{i},{i % 3}\n" for i in range(T)))
    edit_lines(path, lambda lines: set_cell(lines, 6, 1, "--1"))
    return path, lambda: load_labels(path, T)


def labels_huge_frame_number(tmp: Path):
    path = edit_lines(good_labels(tmp), lambda lines: set_cell(lines, 4, 0, "9" * 25))
    return path, lambda: load_labels(path, T, LABELS)


def mat_missing_variable(tmp: Path):
    path = mat_file(tmp / "dbm.mat", {"body_parts_X": [np.ones((6, T))]})
    return path, lambda: load_dbm_mat(path)


def mat_variable_not_a_cell(tmp: Path):
    path = mat_file(
        tmp / "dbm.mat", {"body_parts_X": [np.ones((6, T))], "body_parts_Y": np.ones((6, T))}
    )
    return path, lambda: load_dbm_mat(path)


def scan_pattern_matches_nothing(tmp: Path):
    good_csv(tmp, "mouse1-session3.csv")
    return tmp, lambda: scan_folder(tmp, "{mouse}_day{day}")


def scan_folder_missing(tmp: Path):
    path = tmp / "no_such_folder"
    return path, lambda: scan_folder(path)


def manifest_file_missing(tmp: Path):
    good_csv(tmp, "m01_day1.csv")
    manifest = tmp / "manifest.csv"
    manifest.write_text("path,mouse,day,condition\nm01_day1.csv,m01,1,c\nm01_day2.csv,m01,2,c\n")
    return tmp / "m01_day2.csv", lambda: load_sessions(read_manifest(manifest), cache_dir=False)


def manifest_missing_columns(tmp: Path):
    good_csv(tmp, "m01_day1.csv")
    manifest = tmp / "manifest.csv"
    manifest.write_text("file,mouse\nm01_day1.csv,m01\n")
    return manifest, lambda: read_manifest(manifest)


def manifest_bad_day(tmp: Path):
    manifest = tmp / "manifest.csv"
    manifest.write_text("path,mouse,day,condition\nm01_day1.csv,m01,one,c\n")
    return manifest, lambda: read_manifest(manifest)


def session_bodyparts_differ(tmp: Path):
    """A session tracking other parts than the rest: named, not silently reduced."""
    good_csv(tmp, "m01_day1.csv")
    bad = good_csv(tmp, "m01_day2.csv", parts=(*PARTS, "left_ear"))
    return bad, lambda: datamodule(tmp).setup()


def session_lacks_bodypart(tmp: Path):
    good_csv(tmp, "m01_day1.csv")
    bad = good_csv(tmp, "m01_day2.csv", parts=("nose", "body_centre", "tail"))
    return bad, lambda: datamodule(tmp).setup()


def labels_config_bodypart_missing(tmp: Path):
    path = good_csv(tmp)
    zones = [CircleZone("centre_port", 320.0, 30.0, 55.0)]
    labeler = RuleLabeler(zones, zone_bodypart="head", speed_bodypart="body_centre")
    return path, lambda: labeler.label(load_dlc(path))


def checkpoint_bodypart_missing(tmp: Path):
    path = good_csv(tmp)
    state = pipeline_state((*PARTS, "left_ear"))
    return path, lambda: prepare_session(load_dlc(path), state)


def all_low_likelihood_setup(tmp: Path):
    good_csv(tmp, "m01_day1.csv")
    bad = good_csv(tmp, "m01_day2.csv", lik=0.2)
    return bad, lambda: datamodule(tmp).setup()


def all_low_likelihood_prepare(tmp: Path):
    path = good_csv(tmp, lik=0.2)
    return path, lambda: prepare_session(load_dlc(path), pipeline_state())


def compressed_truncated(tmp: Path):
    packed = tmp / "m01_day1.csv.xz"
    packed.write_bytes(lzma.compress(good_csv(tmp).read_bytes())[:-20])
    return packed, lambda: load_pose(packed)


def _pair_csv(tmp: Path, individuals=("a", "b"), parts=(PARTS, PARTS)) -> Path:
    rng = np.random.default_rng(1)
    header = [["scorer"], ["individuals"], ["bodyparts"], ["coords"]]
    for ind, ps in zip(individuals, parts, strict=True):
        for part in ps:
            for coord in ("x", "y", "likelihood"):
                header[0].append("DLC_x")
                header[1].append(ind)
                header[2].append(part)
                header[3].append(coord)
    n = len(header[0]) - 1
    rows = [f"{t}," + ",".join(f"{v:.2f}" for v in rng.uniform(0.5, 0.9, n)) for t in range(T)]
    path = tmp / "pairDLC_x.csv"
    path.write_text("\n".join([",".join(h) for h in header] + rows) + "\n")
    return path


def multi_unknown_individual(tmp: Path):
    path = _pair_csv(tmp)
    return path, lambda: load_pose(path, individuals=["c"])


def multi_mixed_skeletons(tmp: Path):
    path = _pair_csv(tmp, parts=(PARTS, ("led",)))
    return path, lambda: load_pose(path, individuals=["a", "b"])


def sleap_h5_without_tracks(tmp: Path):
    path = tmp / "m01_day1.h5"
    with h5py.File(path, "w") as f:
        f["node_names"] = np.array([b"nose"])
    return path, lambda: load_pose(path)


def bodyparts_keep_missing(tmp: Path):
    path = good_csv(tmp)
    return path, lambda: BodypartMap(keep=("nose", "ear")).apply(load_pose(path))


def bodyparts_rename_collision(tmp: Path):
    path = good_csv(tmp)
    return path, lambda: BodypartMap(rename={"tail_base": "Nose"}).apply(load_pose(path))


CALTECH = (
    "Caltech Behavior Annotator - Annotation File\n\nConfiguration file:\nrest\tr\nrun\tu\n\n"
    "S1:\tstart\tend\ttype\n-----\n"
)


def _label_case(tmp: Path, text: str, name: str = "m01_day1.labels.txt", **labeler):
    csv = good_csv(tmp)
    path = tmp / name
    path.write_text(text)
    return path, lambda: FileLabeler(**labeler).label(load_pose(csv))


def caltech_unknown_stream(tmp: Path):
    return _label_case(tmp, CALTECH + "\t1\t12\trest\n", stream="S3")


def caltech_overlap(tmp: Path):
    return _label_case(tmp, CALTECH + "\t1\t8\trest\n\t6\t12\trun\n")


BORIS = (
    "Observation id,obs\n,\nTime offset (s),0.0\n,\n"
    "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
)


def boris_start_without_stop(tmp: Path):
    return _label_case(tmp, BORIS + "0.1,v.avi,0.4,30,adult,run,,,START\n", "m01_day1.labels.csv")


def boris_subject_not_chosen(tmp: Path):
    rows = "0.1,v.avi,0.4,30,adult,run,,,START\n0.2,v.avi,0.4,30,adult,run,,,STOP\n"
    rows += "0.1,v.avi,0.4,30,young,run,,,START\n0.2,v.avi,0.4,30,young,run,,,STOP\n"
    return _label_case(tmp, BORIS + rows, "m01_day1.labels.csv")


def simba_two_behaviours(tmp: Path):
    rows = "".join(f"{t},{t * 1.5},{t * 2.5},{int(t == 3)},{int(t in (3, 4))}\n" for t in range(T))
    return _label_case(tmp, ",nose_x,nose_y,rest,walk\n" + rows, "m01_day1.labels.csv")


def labels_pattern_ambiguous(tmp: Path):
    csv = good_csv(tmp)
    good_labels(tmp, "m01_day1.labels.csv")
    (tmp / "m01_day1.labels.txt").write_text(CALTECH)
    return tmp / "m01_day1.labels.*", lambda: FileLabeler().label(load_pose(csv))


def _drop_header(i: int) -> Callable[[list[str]], object]:
    return lambda lines: lines.pop(i)


CASES = [
    # --- DeepLabCut CSV
    pytest.param(_dlc(_drop_header(1)), "header row 'bodyparts'", id="dlc-missing-header-row"),
    pytest.param(_dlc(lambda ls: ls.__delitem__(slice(0, 3))), "header rows", id="dlc-no-header"),
    pytest.param(
        _dlc(lambda ls: ls.insert(3, ls[2])), "extra header row", id="dlc-extra-header-row"
    ),
    pytest.param(
        _dlc(lambda ls: ls.__setitem__(1, ls[1].replace("tail_base", "nose"))),
        "appears twice",
        id="dlc-duplicated-bodypart",
    ),
    pytest.param(
        _dlc(lambda ls: set_cell(ls, 6, 2, "n/a?")), "non-numeric", id="dlc-non-numeric-cell"
    ),
    pytest.param(dlc_truncated_mid_row, "truncated", id="dlc-truncated-last-line"),
    pytest.param(
        dlc_truncated_at_cell_boundary,
        "does not end with a newline",
        id="dlc-truncated-no-final-newline",
    ),
    pytest.param(_raw(b""), "empty", id="dlc-empty-file"),
    pytest.param(dlc_header_only, "no data rows", id="dlc-header-only"),
    pytest.param(dlc_nan_only_bodypart, "never tracked", id="dlc-nan-only-bodypart"),
    pytest.param(_dlc(lambda ls: ls.insert(7, ls[7])), "appears twice", id="dlc-repeated-row"),
    pytest.param(_dlc(lambda ls: ls.pop(8)), "missing", id="dlc-row-missing-inside"),
    pytest.param(_dlc(lambda ls: ls.pop(3)), "starts at 1", id="dlc-first-row-missing"),
    pytest.param(
        _dlc(lambda ls: ls.insert(6, ls.pop(7))), "out of order", id="dlc-rows-out-of-order"
    ),
    pytest.param(
        _dlc(lambda ls: set_cell(ls, 2, 3, "likelihod")), "unknown coord", id="dlc-unknown-coord"
    ),
    pytest.param(
        _dlc(lambda ls: set_cell(ls, 5, 3, "7.5")),
        "outside [0, 1]",
        id="dlc-likelihood-out-of-range",
    ),
    pytest.param(_dlc(lambda ls: set_cell(ls, 5, 1, "inf")), "infinite", id="dlc-infinite-value"),
    pytest.param(
        _dlc(lambda ls: ls.__setitem__(5, ls[5] + ",3.0")), "more than", id="dlc-extra-cell"
    ),
    pytest.param(_dlc(lambda ls: ls.insert(5, "")), "empty", id="dlc-blank-line-inside"),
    pytest.param(dlc_semicolons, "separator", id="dlc-semicolon-separator"),
    pytest.param(
        _dlc(lambda ls: ls.__setitem__(3, ls[3].replace(",", ";"))),
        "line 4 (data row 0) has 1 cells",
        id="dlc-first-row-other-separator",
    ),
    pytest.param(_raw(b"\x89PNG\r\n\x1a\n" + bytes(range(256))), "UTF-8", id="dlc-binary-file"),
    # --- DeepLabCut H5
    pytest.param(h5_wrong_key, "several tables", id="h5-wrong-key"),
    pytest.param(h5_no_pandas_table, "no pandas table", id="h5-no-pandas-table"),
    pytest.param(_raw(b"not HDF5 at all\n" * 20, "m01_day1.h5"), "cannot read", id="h5-not-hdf5"),
    pytest.param(h5_repeated_frames, "not consecutive", id="h5-repeated-frames"),
    # --- label files
    pytest.param(labels_wrong_frame_count, "session has 12 frames", id="labels-wrong-frame-count"),
    pytest.param(
        labels_unknown_name, "label 'sniffing' not in label_names", id="labels-unknown-name"
    ),
    pytest.param(labels_non_integer_frame, "not an integer", id="labels-non-integer-frame"),
    pytest.param(labels_duplicated_frame, "more than once", id="labels-duplicated-frame"),
    pytest.param(labels_mixed_codes_and_names, "mixes names and integer codes", id="labels-mixed"),
    pytest.param(labels_malformed_code, "name '--1' at row 6", id="labels-malformed-code"),
    pytest.param(labels_huge_frame_number, "too large", id="labels-huge-frame-number"),
    pytest.param(
        _raw(b"", "x.labels.csv", lambda p: load_labels(p, T)), "empty", id="labels-empty"
    ),
    # --- DBM .mat
    pytest.param(mat_missing_variable, "body_parts_Y", id="mat-missing-variable"),
    pytest.param(mat_variable_not_a_cell, "not a cell", id="mat-variable-not-a-cell"),
    pytest.param(
        _raw(b"MATLAB 5.0 MAT-file" + bytes(200), "dbm.mat", load_dbm_mat),
        "not a readable MATLAB .mat file",
        id="mat-v5-garbage",
    ),
    # --- the other pose formats, through the registry
    pytest.param(compressed_truncated, "corrupted or truncated .xz", id="csv-xz-truncated"),
    pytest.param(multi_unknown_individual, "unknown individual(s) ['c']", id="ma-unknown-id"),
    pytest.param(multi_mixed_skeletons, "have different body parts", id="ma-mixed-skeletons"),
    pytest.param(sleap_h5_without_tracks, "nor a SLEAP analysis file", id="sleap-h5-no-tracks"),
    pytest.param(_raw(b"junk" * 50, "m01_day1.slp", load_pose), "m01_day1.slp", id="slp-junk"),
    pytest.param(_raw(b"junk" * 50, "m01_day1.nwb", load_pose), "m01_day1.nwb", id="nwb-junk"),
    pytest.param(_raw(b"x", "m01_day1.avi", load_pose), "not a pose file", id="pose-unknown-kind"),
    pytest.param(bodyparts_keep_missing, "bodyparts.keep names part(s) ['ear']", id="map-keep"),
    pytest.param(bodyparts_rename_collision, "two parts are named 'Nose'", id="map-collision"),
    # --- the annotation tools' label formats, through the FileLabeler
    pytest.param(caltech_unknown_stream, "S3", id="caltech-unknown-stream"),
    pytest.param(caltech_overlap, "overlap", id="caltech-overlapping-intervals"),
    pytest.param(boris_start_without_stop, "START", id="boris-start-without-stop"),
    pytest.param(boris_subject_not_chosen, "subject", id="boris-several-subjects"),
    pytest.param(simba_two_behaviours, "walk", id="simba-two-behaviours-at-once"),
    pytest.param(labels_pattern_ambiguous, "matches 2 files", id="labels-pattern-ambiguous"),
    # --- catalogue
    pytest.param(scan_pattern_matches_nothing, "no session file matches", id="scan-no-match"),
    pytest.param(scan_folder_missing, "folder not found", id="scan-folder-missing"),
    pytest.param(manifest_file_missing, "file not found", id="manifest-file-missing"),
    pytest.param(manifest_missing_columns, "lacks column", id="manifest-missing-columns"),
    pytest.param(manifest_bad_day, "not an integer", id="manifest-bad-day"),
    # --- body parts against the other sessions, the labels config, a checkpoint
    pytest.param(session_bodyparts_differ, "unknown ['left_ear']", id="bodyparts-extra-in-session"),
    pytest.param(
        session_lacks_bodypart, "missing ['tail_base']", id="bodyparts-differ-between-sessions"
    ),
    pytest.param(
        labels_config_bodypart_missing, "no body part 'head'", id="bodyparts-labels-config"
    ),
    pytest.param(
        checkpoint_bodypart_missing, "lacks body part(s) ['left_ear']", id="bodyparts-checkpoint"
    ),
    # --- nothing valid left after cleaning
    pytest.param(all_low_likelihood_setup, "no valid frame", id="all-low-likelihood-setup"),
    pytest.param(all_low_likelihood_prepare, "no valid frame", id="all-low-likelihood-prepare"),
]


@pytest.mark.parametrize(("case", "keyword"), CASES)
def test_bad_input_is_a_clear_error(case: Case, keyword: str, tmp_path: Path) -> None:
    path, call = case(tmp_path)
    with pytest.raises(DataFormatError) as info:
        call()
    err = info.value
    msg = str(err)
    assert msg.startswith(f"{path}: "), msg
    assert keyword in msg, msg
    # no pandas/h5py/numpy exception chained behind it (a traceback would print it)
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), msg


def _no_likelihood(lines: list[str]) -> None:
    keep = [i for i, c in enumerate(lines[2].split(",")) if c != "likelihood"]
    lines[:] = [",".join(ln.split(",")[i] for i in keep) for ln in lines]


def _image_index(lines: list[str]) -> None:
    for i in range(3, len(lines)):
        set_cell(lines, i, 0, f"labeled-data/img{i - 3:03d}.png")


TOLERATED = [
    pytest.param(lambda ls: [set_cell(ls, 5, 1, ""), set_cell(ls, 5, 2, "")], id="a-nan-point"),
    pytest.param(lambda ls: ls.insert(3, "frame" + "," * 9), id="pandas-index-name-row"),
    pytest.param(lambda ls: ls.extend(["", ""]), id="trailing-blank-lines"),
    pytest.param(_no_likelihood, id="no-likelihood-columns"),
    pytest.param(_image_index, id="image-name-index"),
]


@pytest.mark.parametrize("edit", TOLERATED)
def test_tolerated_input_loads_every_frame(edit, tmp_path: Path) -> None:
    """What real DeepLabCut/pandas output does is not an error, and no frame is lost."""
    ref = load_dlc(good_csv(tmp_path / "ref"))
    path = edit_lines(good_csv(tmp_path), edit)
    s = load_dlc(path)
    assert s.pose.shape == ref.pose.shape and s.bodyparts == PARTS
    finite = np.isfinite(s.pose)
    assert finite.sum() >= finite.size - 2
    np.testing.assert_array_equal(s.pose[finite], ref.pose[finite])


def test_windows_line_endings_and_missing_likelihood_are_fine(tmp_path: Path) -> None:
    path = good_csv(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert load_dlc(path).n_frames == T
    edit_lines(path, _no_likelihood)
    assert (load_dlc(path).likelihood == 1).all()


def test_corpus_is_large_and_the_writers_make_valid_files(tmp_path: Path) -> None:
    """The malformed files are only meaningful if the files they start from are fine."""
    assert len(CASES) >= 20
    s = load_dlc(good_csv(tmp_path / "a"))
    assert s.pose.shape == (T, 3, 2) and s.bodyparts == PARTS
    features, valid = prepare_session(s, pipeline_state())
    assert features.shape == (T, 12) and valid.all()
    labels, names = load_labels(good_labels(tmp_path / "a"), T, LABELS)
    assert names == LABELS and (labels >= 0).all()
    xs = [np.ones((6, T))]
    assert (
        len(load_dbm_mat(mat_file(tmp_path / "ok.mat", {"body_parts_X": xs, "body_parts_Y": xs})))
        == 1
    )
    good_csv(tmp_path / "b", "m01_day2.csv")
    good_csv(tmp_path / "b", "m01_day1.csv")
    dm = datamodule(tmp_path / "b")
    dm.setup()
    assert dm.bodyparts == PARTS


# ---------------------------------------------------------------------------- fuzzing

FUZZ_PARTS = ("a", "b", "c")
_TEXT = ",.;:\t \"'#-+eE0123456789abxyzNnaIif\r\x00\x0c\u00e9"
_SPECIAL_CELLS = (
    "",
    "nan",
    "NaN",
    "NA",
    "null",
    "inf",
    "-inf",
    "1e400",
    "-1",
    "2",
    "0.5",
    " 3",
    "1_0",
    "0x10",
    "1.5.2",
    "99999999999999999999",
    "--1",
    "likelihood",
    "x",
    "scorer",
    '"1.5"',
)
cell_text = st.one_of(
    st.sampled_from(_SPECIAL_CELLS),
    st.text(_TEXT, max_size=6),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(0, 1).map(str),  # plausible values keep some mutated files loadable
    st.integers(-(10**12), 10**12).map(str),
)


def _fuzz_base() -> bytes:
    """A small valid DLC CSV: 8 frames, 3 parts, a NaN cell, likelihoods in [0, 1]."""
    rng = np.random.default_rng(0)
    pose = rng.uniform(0, 500, (8, 3, 2))
    pose[2, 1] = np.nan
    lik = rng.uniform(0, 1, (8, 3))
    lik[2, 1] = np.nan
    return dlc_frame(pose, lik, list(FUZZ_PARTS)).to_csv().encode()


DLC_BASE = _fuzz_base()
LABEL_BASES = {
    "names": "frame,label\n" + "".join(f"{i},{LABELS[i % 3]}\n" for i in range(8)),
    "codes": "frame,label\n" + "".join(f"{i},{i % 3 if i != 5 else -1}\n" for i in range(8)),
    "onehot": "frame,"
    + ",".join(LABELS)
    + "\n"
    + "".join(
        f"{i}," + ",".join("1" if j == i % 3 else "0" for j in range(3)) + "\n" for i in range(8)
    ),
}


def mutate(data, text: bytes) -> bytes:
    """One random mutation of ``text``, drawn with hypothesis' interactive ``data``."""
    lines = text.split(b"\n")
    n = len(lines)
    kind = data.draw(
        st.sampled_from(
            [
                "delete",
                "duplicate",
                "swap",
                "cell",
                "truncate",
                "cut_rows",
                "insert",
                "delimiter",
                "column",
            ]
        ),
        label="mutation",
    )
    if kind == "cut_rows":  # a copy that stopped at the end of a row
        return b"\n".join(lines[: data.draw(st.integers(0, n), label="rows kept")]) + b"\n"
    if kind == "truncate":
        return text[: data.draw(st.integers(0, max(len(text) - 1, 0)), label="offset")]
    if kind == "insert":
        pos = data.draw(st.integers(0, len(text)), label="offset")
        junk = data.draw(
            st.one_of(st.binary(min_size=1, max_size=3), st.text(_TEXT, min_size=1, max_size=3)),
            label="junk",
        )
        junk = junk.encode() if isinstance(junk, str) else junk
        return text[:pos] + junk + text[pos:]
    # half the time one of the first 5 lines: the header and the rows right after it are
    # where the reader's header logic can go wrong
    i = data.draw(st.integers(0, n - 1) | st.integers(0, min(4, n - 1)), label="line")
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = data.draw(st.integers(0, n - 1), label="other line")
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "cell":
        cells = lines[i].split(b",")
        c = data.draw(st.integers(0, len(cells) - 1), label="cell")
        cells[c] = data.draw(cell_text, label="text").encode()
        lines[i] = b",".join(cells)
    elif kind == "delimiter":
        sep = data.draw(st.sampled_from([b";", b"\t", b" ", b"|", b""]), label="sep")
        count = data.draw(st.sampled_from([1, -1]), label="count")
        lines[i] = lines[i].replace(b",", sep, count)
    else:  # drop one column from every line
        c = data.draw(st.integers(0, 9), label="column")
        lines = [
            b",".join(cells[:c] + cells[c + 1 :]) for cells in (ln.split(b",") for ln in lines)
        ]
    return b"\n".join(lines)


def _float_or_none(cell: bytes) -> float | None:
    """The value a strict reader must give a cell (empty -> NaN); None when unsure."""
    if cell == b"":
        return math.nan
    try:
        return float(cell.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def check_dlc_session(session, path: Path, text: bytes) -> None:
    """What a successful load must satisfy, checked against the text itself."""
    t, p = session.pose.shape[:2]
    assert session.pose.dtype == np.float32 and session.pose.shape == (t, p, 2)
    assert session.likelihood.dtype == np.float32 and session.likelihood.shape == (t, p)
    assert t > 0 and p == len(session.bodyparts) == len(set(session.bodyparts))
    assert ((session.likelihood >= 0) & (session.likelihood <= 1)).all()
    assert not np.isinf(session.pose).any()
    assert session.source == path

    # no row silently dropped or added: T = the non-blank lines after the 3 header rows
    lines = [ln.removesuffix(b"\r") for ln in text.split(b"\n")]
    while lines and not lines[-1]:
        lines.pop()
    header, rows = lines[:3], lines[3:]
    first = rows[0].split(b",") if rows else []
    if first and first[0].strip() and _float_or_none(first[0]) is None and not any(first[1:]):
        rows = rows[1:]  # pandas' index-name row ('frame,,,,')
    assert t == len(rows), (t, len(rows))

    # ... and every value a strict parser can read is the value loaded
    if header != DLC_BASE.split(b"\n")[:3]:
        return
    assert session.bodyparts == FUZZ_PARTS
    for r, row in enumerate(rows):
        cells = row.split(b",")
        assert len(cells) == 10
        for k, cell in enumerate(cells[1:]):
            want = _float_or_none(cell)
            if want is None:
                continue
            part, coord = divmod(k, 3)
            got = session.pose[r, part, coord] if coord < 2 else session.likelihood[r, part]
            if coord == 2 and math.isnan(want):
                want = 0.0  # no likelihood -> 0
            np.testing.assert_allclose(got, np.float32(want), rtol=1e-6, equal_nan=True)


@settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_fuzzed_dlc_csv_loads_exactly_or_fails_clearly(tmp_path_factory, data) -> None:
    text = DLC_BASE
    for _ in range(data.draw(st.integers(1, 3), label="n_mutations")):
        text = mutate(data, text)
    path = tmp_path_factory.getbasetemp() / "fuzz" / "m01_day1.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text)
    try:
        session = load_dlc(path)
    except DataFormatError as err:
        assert str(err).startswith(f"{path}: "), err
        event("DataFormatError")
        return
    event("loaded")
    check_dlc_session(session, path, text)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    data=st.data(), base=st.sampled_from(sorted(LABEL_BASES)), names=st.sampled_from([None, LABELS])
)
def test_fuzzed_label_csv_loads_exactly_or_fails_clearly(
    tmp_path_factory, data, base: str, names
) -> None:
    text = LABEL_BASES[base].encode()
    for _ in range(data.draw(st.integers(1, 2), label="n_mutations")):
        text = mutate(data, text)
    path = tmp_path_factory.getbasetemp() / "fuzz" / "m01_day1.labels.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text)
    try:
        labels, out_names = load_labels(path, 8, names)
    except DataFormatError as err:
        assert str(err).startswith(f"{path}: "), err
        event("DataFormatError")
        return
    event("loaded")
    assert labels.shape == (8,) and labels.dtype == np.int64
    assert ((labels >= -1) & (labels < len(out_names))).all()
    if names is not None:
        assert out_names == LABELS
    # a plain 'frame,label' file: every row's label (name or code) lands on its frame
    lines = text.splitlines()
    rows = [ln.split(b",") for ln in lines[1:] if ln]
    if not (lines and lines[0] == b"frame,label" and all(len(r) == 2 for r in rows)):
        return
    frames = [int(f) for f, _ in rows if f.isdigit()]
    if len(frames) != len(rows):
        return
    if all(v.decode("ascii", "replace") in out_names for _, v in rows):
        expected = [out_names.index(v.decode()) for _, v in rows]
    elif all(v.isdigit() or v == b"-1" for _, v in rows):
        expected = [int(v) for _, v in rows]
    else:
        return
    assert labels[frames].tolist() == expected
