"""The ranges of model hyperparameters, by name, for both families: the config schema gives
every ``model.*`` key whose name matches the range here (any registered network included)."""

from __future__ import annotations

import numbers
from typing import Any

from dbm_lightning.ranges import Range, at_least, between, one_of, satisfies

__all__ = ["hparam_range"]


def _odd(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 and v % 2 == 1


def _max_features(v: Any) -> bool:
    if v in ("sqrt", "log2"):
        return True
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return False
    return (isinstance(v, numbers.Integral) and v >= 1) or 0 < v <= 1


def _windows(v: Any) -> bool:
    return all(isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in v)


_BY_NAME: dict[str, dict[str, Range]] = {
    "kernel_size": satisfies(_odd, "an odd positive integer"),
    "channels": at_least(1),
    "levels": at_least(1),
    # classic models (dbm_lightning.models.classic)
    "n_estimators": at_least(1),
    "max_depth": at_least(1),
    "min_samples_leaf": at_least(1),
    "max_features": satisfies(_max_features, "sqrt, log2, a fraction in (0, 1] or a count >= 1"),
    "class_weight": one_of(("balanced",), "class weight"),
    "rolling_windows": satisfies(_windows, "a list of positive integers (frames)"),
    "max_train_frames": at_least(1),
    "n_jobs": at_least(1, also=(-1,)),
    "max_iter": at_least(1),
    "learning_rate": at_least(0, integer=False, above=True),
    "max_leaf_nodes": at_least(2),
    "l2_regularization": at_least(0, integer=False),
}


def hparam_range(name: str) -> dict[str, Range]:
    """Field metadata with the range of hyperparameter ``name`` (empty when it has none):
    exact names above, else ``*_width``/``*_size``/``*_layers``/``*_dim`` positive integers,
    ``*dropout*`` in [0, 1), ``*_std`` >= 0."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if name.endswith(("_width", "_size", "_layers", "_dim")):
        return at_least(1)
    if "dropout" in name:
        return between(0, 1, high_open=True)
    if name.endswith("_std"):
        return at_least(0, integer=False)
    return {}
