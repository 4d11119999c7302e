"""The benchmark suite runs end to end in its --quick mode (tiny sizes). No timing is
asserted here: the figures and targets live in benchmarks/RESULTS.md."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

SECTIONS = {"load", "train", "recommended", "infer", "main", "scaling", "ablation"}


@pytest.mark.slow
def test_benchmark_quick_mode_runs_and_writes_json(
    tmp_path: Path, repo_root: Path, shared_data_path: Path
) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--quick", "--json", str(out)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "| section | measure | value | target | met | note |" in proc.stdout
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["machine"]["cores"] >= 1
    rows = result["rows"]
    assert {r["section"] for r in rows} == SECTIONS
    for row in rows:
        skipped = row["note"].startswith("skipped")
        assert skipped or (math.isfinite(row["value"]) and row["value"] > 0), row
        if row["target"] and not skipped:
            assert isinstance(row["met"], bool), row
    measures = " ".join(r["measure"] for r in rows)
    for network in ("dbm_baseline", "dbm_modified", "bilstm", "tcn"):
        assert f"{network} framework time / bare loop time" in measures
    for expected in (
        "pandas.read_csv loop",
        "warm load",
        "bare PyTorch loop",
        "framework time / bare loop time",
        "peak memory",
        "one paper-scale epoch",
        "dbm-predict, one",
        "dbm-predict, a folder",
        "k-means microstates, k = 50, the default data",
        "k-means microstates, k = 50, the paper-scale data",
        "dbm-train with no arguments",
        "1x",
        "4x",
    ):
        assert expected in measures
    ablation = next(r for r in rows if r["section"] == "ablation")
    if shared_data_path.is_dir():
        assert ablation["note"].startswith("4/4 runs finished"), ablation
    else:
        assert "skipped" in ablation["note"]


def test_benchmark_rejects_unknown_section(repo_root: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--only", "load,bogus"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "bogus" in proc.stderr
