"""The vectorised CSV writer: pandas' text (floats as ``%.8f``), and values that parse back."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from dbm_lightning.io.csv_writer import csv_bytes, write_csv


def _columns(n: int = 2_000, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), n).astype(np.float32)
    names = ["rest", "run", 'odd,"name"', "x y"]
    cols = {
        "frame": np.arange(n, dtype=np.int64),
        "label": pd.Categorical.from_codes(probs.argmax(axis=1), names),
    }
    for c, name in enumerate(names):
        cols[f"prob_{name}"] = probs[:, c]
    cols["microstate"] = rng.integers(-1, 50, n)
    cols["valid"] = rng.random(n) > 0.2
    signed = rng.normal(0, 1e4, n)
    signed[[3, 7]] = np.nan
    signed[[4, 5, 6]] = [0.0, -0.0, -1e-12]
    cols["signed"] = signed
    cols["big_int"] = rng.integers(-(10**15), 10**15, n, dtype=np.int64)
    cols["small_uint"] = rng.integers(0, 200, n).astype(np.uint8)
    return cols


def _frame(cols: dict) -> pd.DataFrame:
    return pd.DataFrame(dict(cols))


def test_text_is_pandas_with_fixed_decimals() -> None:
    cols = _columns()
    expected = _frame(cols).to_csv(index=False, float_format="%.8f").encode()
    assert csv_bytes(cols, decimals=8) == expected
    for decimals in (0, 3):
        text = csv_bytes({"v": cols["signed"], "p": cols["prob_rest"]}, decimals=decimals)
        ref = pd.DataFrame({"v": cols["signed"], "p": cols["prob_rest"]})
        assert text == ref.to_csv(index=False, float_format=f"%.{decimals}f").encode()


def test_values_parse_back() -> None:
    cols = _columns(seed=1)
    back = pd.read_csv(io.BytesIO(csv_bytes(cols)))
    assert list(back.columns) == list(cols)
    for name, values in cols.items():
        got = back[name].to_numpy()
        if isinstance(values, pd.Categorical):
            assert got.tolist() == list(np.asarray(values))
        elif values.dtype.kind == "f":
            np.testing.assert_allclose(got, values, rtol=0, atol=5.1e-9, equal_nan=True)
        else:
            np.testing.assert_array_equal(got, values)


def test_edge_cases(tmp_path) -> None:
    assert csv_bytes({"a": np.zeros(0), "b": np.zeros(0, bool)}) == b"a,b\n"
    missing = pd.Categorical.from_codes([0, -1, 1], ["x", "y"])
    assert csv_bytes({"c": missing}, line_end="\r\n") == b"c\r\nx\r\n\r\ny\r\n"
    write_csv(tmp_path / "t.csv", {"i": np.array([-3, 0, 12])})
    assert (tmp_path / "t.csv").read_bytes() == b"i\n-3\n0\n12\n"
    for bad in (
        {"f": np.array([1.0, np.inf])},
        {"f": np.array([1e12])},
        {"o": np.array(["a", "b"], dtype=object)},
        {"a": np.zeros(2), "b": np.zeros(3)},
        {"m": np.zeros((2, 2))},
        {"i": np.array([np.iinfo(np.int64).min])},
    ):
        with pytest.raises(ValueError):
            csv_bytes(bad)


def test_decimals_per_column_and_no_header() -> None:
    """The synthetic DeepLabCut files' layout: no header row, x to 3 decimals, likelihood to 4,
    each exactly as printf writes it."""
    x = np.array([0.0005, 1.25, -0.0004, 639.99951])
    like = np.array([0.99995, 0.5, 0.12344, 1.0])
    text = csv_bytes({"x": x, "p": like}, decimals={"x": 3, "p": 4}, line_end="\n", header=False)
    expected = "".join(f"{a:.3f},{b:.4f}\n" for a, b in zip(x, like, strict=True))
    assert text.decode() == expected
    assert csv_bytes({"x": x[:1]}, decimals={}, line_end="\n") == b"x\n0.00050000\n"
