"""Tests of dbm_lightning.analysis.microstates: fitting, renumbering, assignment, persistence,
summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dbm_lightning.analysis.microstates import (
    Microstates,
    assign_sessions,
    collect_embeddings,
    fit_microstates,
)
from dbm_lightning.analysis.summaries import (
    group_microstates,
    group_names,
    overlap_table,
    time_share_by_group,
    transition_probabilities,
)

LABELS = ("left_port", "centre_port", "right_port", "other")

# Hand-made clusters: (centre, [(label, n_frames), ...]). Expected order after renumbering:
# dominant label index first, then frame count descending, unlabelled-only state last.
CLUSTERS = [
    ((0.0, 0.0), [(2, 30)]),  # right_port, 30     -> 3
    ((10.0, 0.0), [(0, 50)]),  # left_port, 50     -> 0
    ((0.0, 10.0), [(0, 15), (3, 5)]),  # left_port (15 of 20) -> 1
    ((10.0, 10.0), [(1, 30), (2, 10)]),  # centre_port, 40 -> 2
    ((20.0, 20.0), [(-1, 10)]),  # no labelled frame   -> 4
]
EXPECTED_CENTRES = np.array([(10, 0), (0, 10), (10, 10), (0, 0), (20, 20)], dtype=float)
EXPECTED_DOMINANT = [0, 0, 1, 2, -1]
EXPECTED_COUNTS = [50, 20, 40, 30, 10]


def _hand_made(seed: int = 0, nan_frames: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for centre, parts in CLUSTERS:
        for label, n in parts:
            xs.append(np.asarray(centre) + rng.normal(0, 0.3, size=(n, 2)))
            ys.append(np.full(n, label))
    x, y = np.concatenate(xs), np.concatenate(ys)
    perm = rng.permutation(len(y))
    x, y = x[perm], y[perm]
    if nan_frames:
        x = np.concatenate([x, np.full((nan_frames, 2), np.nan)])
        y = np.concatenate([y, np.zeros(nan_frames, dtype=int)])  # labelled but invalid
    half = len(y) // 2
    return [x[:half], x[half:]], [y[:half], y[half:]]


def _blobs(n: int, k: int = 6, dims: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, size=(k, dims))
    which = rng.integers(0, k, size=n)
    return centres[which] + rng.normal(0, 0.5, size=(n, dims)), which % 3


def test_renumbering_by_dominant_label_then_count():
    emb, lab = _hand_made(nan_frames=7)
    ms = fit_microstates(emb, lab, LABELS, k=5, seed=0)
    assert ms.method == "kmeans"
    np.testing.assert_allclose(ms.centroids, EXPECTED_CENTRES, atol=0.3)
    assert ms.dominant_label.tolist() == EXPECTED_DOMINANT
    assert ms.counts.tolist() == EXPECTED_COUNTS  # NaN frames ignored
    assert ms.label_names == LABELS
    assert ms.dominant_label_names() == ["left_port", "left_port", "centre_port", "right_port", "-"]
    # label counts follow the new order; % table rows sum to 100 where labelled
    assert ms.label_counts[1].tolist() == [15, 0, 0, 5]
    np.testing.assert_allclose(ms.overlap_percent[:4].sum(axis=1), 100.0)
    assert ms.overlap_percent[4].sum() == 0


def test_renumbering_without_labels_orders_by_count():
    emb, _ = _hand_made()
    ms = fit_microstates(emb, None, k=5, seed=0)
    assert ms.counts.tolist() == [50, 40, 30, 20, 10]
    assert ms.dominant_label.tolist() == [-1] * 5
    assert ms.label_names == ()


def test_assign_nearest_centroid_and_invalid_frames():
    emb, lab = _hand_made()
    ms = fit_microstates(emb, lab, LABELS, k=5, seed=0)
    new = EXPECTED_CENTRES[[3, 0, 4, 1, 2]] + 0.5
    new = np.vstack([new, [np.nan, 1.0]])
    assert ms.assign(new).tolist() == [3, 0, 4, 1, 2, -1]
    # the fitting data gets the counts that were used for renumbering
    states = assign_sessions(ms, emb)
    assert np.bincount(np.concatenate(states), minlength=5).tolist() == EXPECTED_COUNTS


def test_assign_chunked_matches_brute_force():
    rng = np.random.default_rng(3)
    ms = Microstates(centroids=rng.normal(size=(7, 3)), dominant_label=np.full(7, -1))
    x = rng.normal(size=(1000, 3))
    brute = np.argmin(((x[:, None, :] - ms.centroids[None]) ** 2).sum(-1), axis=1)
    assert np.array_equal(ms.assign(x, chunk=37), brute)
    with pytest.raises(ValueError, match="embedding must be"):
        ms.assign(np.zeros((4, 2)))


def test_save_load_round_trip(tmp_path):
    emb, lab = _hand_made()
    ms = fit_microstates(emb, lab, LABELS, k=5, seed=0)
    npz = ms.save(tmp_path / "sub" / "ms")
    assert npz.name == "ms.npz" and (tmp_path / "sub" / "ms.json").is_file()
    meta = json.loads((tmp_path / "sub" / "ms.json").read_text())
    assert meta["label_names"] == list(LABELS) and meta["k"] == 5
    for p in (tmp_path / "sub" / "ms", npz, tmp_path / "sub" / "ms.json"):
        back = Microstates.load(p)
        np.testing.assert_array_equal(back.centroids, ms.centroids)
        np.testing.assert_array_equal(back.dominant_label, ms.dominant_label)
        np.testing.assert_array_equal(back.counts, ms.counts)
        np.testing.assert_array_equal(back.label_counts, ms.label_counts)
        assert back.label_names == ms.label_names and back.method == ms.method
        x = np.random.default_rng(1).normal(0, 10, size=(500, 2))
        np.testing.assert_array_equal(back.assign(x), ms.assign(x))
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        Microstates.load(tmp_path / "nope")


def test_minibatch_path_above_threshold():
    x, y = _blobs(3000)
    ms_mb = fit_microstates([x], [y], k=6, seed=0, minibatch_threshold=1000, batch_size=256)
    assert ms_mb.method == "minibatch"
    ms_full = fit_microstates([x], [y], k=6, seed=0, minibatch_threshold=3000)
    assert ms_full.method == "kmeans"  # threshold is inclusive
    assert ms_mb.counts.sum() == 3000 and ms_mb.centroids.shape == (6, 4)
    # well-separated blobs: both paths find the same partition
    a, b = ms_mb.assign(x), ms_full.assign(x)
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    assert len(pairs) == 6


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_deterministic_for_a_seed(threshold):
    x, y = _blobs(1500, k=8, seed=5)
    kwargs = dict(k=8, seed=7, n_init=3, minibatch_threshold=threshold, batch_size=256)
    a = fit_microstates([x[:700], x[700:]], [y[:700], y[700:]], **kwargs)
    b = fit_microstates([x[:700], x[700:]], [y[:700], y[700:]], **kwargs)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    np.testing.assert_array_equal(a.dominant_label, b.dominant_label)


def test_fit_errors():
    with pytest.raises(ValueError, match="valid frames"):
        fit_microstates([np.zeros((3, 2))], k=5)
    with pytest.raises(ValueError, match="labels shape"):
        fit_microstates([np.zeros((10, 2))], [np.zeros(9, dtype=int)], k=2)
    with pytest.raises(ValueError, match="label names"):
        fit_microstates([np.random.rand(10, 2)], [np.full(10, 3)], ["a"], k=2)
    with pytest.raises(TypeError, match="keyword"):
        fit_microstates([np.random.rand(10, 2)], [np.zeros(10, int)], 2)


def test_overlap_table_percentages():
    states = [np.array([0, 0, 0, 1, 1]), np.array([1, 2, -1])]
    labels = [np.array([0, 0, 1, 1, -1]), np.array([1, 0, 1])]
    table = overlap_table(states, labels, k=4, n_labels=2)
    np.testing.assert_allclose(table[0], [200 / 3, 100 / 3])
    np.testing.assert_allclose(table[1], [0, 100])  # unlabelled frame not counted
    np.testing.assert_allclose(table[2], [100, 0])
    np.testing.assert_allclose(table[3], [0, 0])  # empty state


def test_transition_probabilities_rows_sum_to_one():
    s = [np.array([0, 0, 1, 2, 2, 0, -1, 1]), np.array([2, 1])]
    p = transition_probabilities(s, k=4)
    np.testing.assert_allclose(p[:3].sum(axis=1), 1.0)
    assert p[3].sum() == 0
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0, 0])  # 0->0, 0->1; 0->-1 skipped
    np.testing.assert_allclose(p[2], [1 / 3, 1 / 3, 1 / 3, 0])  # 2->2, 2->0, 2->1 (2nd session)
    q = transition_probabilities(s, k=4, exclude_self=True)
    assert np.all(np.diag(q) == 0)
    np.testing.assert_allclose(q[2], [0.5, 0.5, 0, 0])


def test_group_microstates_and_time_share():
    emb, lab = _hand_made()
    ms = fit_microstates(emb, lab, LABELS, k=5, seed=0)
    groups = {"left": ["left_port"], "centre": ["centre_port"], "right": ["right_port"]}
    names = group_names(groups)
    assert names == ["left", "centre", "right", "other"]
    g = group_microstates(ms, groups)
    assert g.tolist() == [0, 0, 1, 2, 3]
    # "other" as an explicit group collects the label and the label-less state
    g2 = group_microstates(ms, {"ports": ["left_port", "right_port"], "other": ["other"]})
    assert g2.tolist() == [0, 0, 1, 0, 1]
    with pytest.raises(KeyError, match="unknown label 'lever'"):
        group_microstates(ms, {"x": ["lever"]})
    with pytest.raises(ValueError, match="is in groups"):
        group_microstates(ms, {"a": ["left_port"], "b": ["left_port"]})

    states = [np.array([0, 1, 2, 3, -1]), np.array([4, 4]), np.array([2, 2])]
    meta = [("m01", 1), ("m01", 2), ("m01", 2)]
    df = time_share_by_group(states, meta, g, names)
    assert list(df.columns) == ["mouse", "day", "group", "share", "frames"]
    assert len(df) == 2 * 4
    day1 = df[df.day == 1].set_index("group")["share"]
    np.testing.assert_allclose(day1.loc[names].to_numpy(), [0.5, 0.25, 0.25, 0.0])
    day2 = df[df.day == 2].set_index("group")["share"]  # two sessions pooled
    np.testing.assert_allclose(day2.loc[names].to_numpy(), [0, 0.5, 0, 0.5])
    np.testing.assert_allclose(df.groupby(["mouse", "day"])["share"].sum(), 1.0)


def test_collect_embeddings_callable_and_module():
    feats = [np.arange(12, dtype=np.float32).reshape(6, 2), np.ones((3, 2), np.float32)]
    valid = [np.array([1, 1, 0, 1, 1, 1], bool), np.ones(3, bool)]
    out = collect_embeddings(lambda f: np.column_stack([f.sum(1), f[:, 0], -f[:, 1]]), feats, valid)
    assert [o.shape for o in out] == [(6, 3), (3, 3)]
    assert np.isnan(out[0][2]).all() and np.isfinite(out[0][[0, 1, 3]]).all()
    assert out[1][0].tolist() == [2.0, 1.0, -1.0]

    torch = pytest.importorskip("torch")

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 4)

        def embed(self, x):  # (B, W, F) -> (B, W, H)
            assert x.ndim == 3 and not torch.is_grad_enabled()
            return torch.tanh(self.lin(x))

    net = Net().train()
    emb = collect_embeddings(net, feats)
    assert [e.shape for e in emb] == [(6, 4), (3, 4)] and emb[0].dtype == np.float32
    assert net.training  # mode restored

    class WithPredict:
        def predict_session(self, f):
            return np.zeros((len(f), 2)), f * 2

    assert collect_embeddings(WithPredict(), feats)[1].tolist() == [[2.0, 2.0]] * 3
    with pytest.raises(TypeError, match="embed_fn must be"):
        collect_embeddings(42, feats)
