"""Check a composed training config before anything is read: :func:`validate_config`.

Every key of every group is checked against what the code consumes, and the values against
what they may be, so that a misspelt key, an unknown model or a negative window stops a run at
start-up with a message naming the dotted key (``data.window: must be a positive integer, got
-5``) instead of being ignored or failing minutes later inside the data module or Lightning.

Where the accepted keys come from:

- ``preprocess``, ``features``, ``split``, ``augment``, ``data.arena``: the fields of
  ``PreprocessConfig``, ``FeatureConfig``, ``SplitConfig``, ``AugmentConfig``, ``ArenaBounds``;
- ``data``: the keys ``build_datamodule`` reads for every source (:data:`DATA_KEYS`) plus the
  fields of the source class of ``data.source`` (:func:`sources`);
- ``labels``: ``kind`` plus the fields of the labeler class of that kind (:data:`LABEL_KINDS`),
  zone keys from the zone shapes of :mod:`dbm_lightning.labeling`;
- ``model``: ``name`` plus the constructor arguments of the network registered under that name
  in :data:`dbm_lightning.models.factory.MODELS` (after ``n_features, n_classes``) or of the
  classic model in :data:`dbm_lightning.classic.CLASSIC_MODELS`;
- ``trainer``: the arguments of ``pytorch_lightning.Trainer`` except those ``build_trainer`` sets;
- top level, ``optim``, ``loss``, ``logger``, ``callbacks``, ``microstates``: the keys that
  :mod:`dbm_lightning.training` reads (:data:`TOP_LEVEL_KEYS`, :data:`GROUP_KEYS`).

Values are type-checked from the defaults of those classes and signatures, with the ranges that
matter (positive sizes, fractions in [0, 1), ...) given by name. Nothing is read from disk and
no network is built.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from typing import Any

from dbm_lightning.augment import AugmentConfig
from dbm_lightning.data import (
    STRATEGIES,
    DBMMatSource,
    DLCFolderSource,
    SplitConfig,
    SyntheticSource,
)
from dbm_lightning.errors import ConfigError
from dbm_lightning.features import FeatureConfig
from dbm_lightning.labeling import (
    ZONE_KEYS,
    EmbeddedLabeler,
    FileLabeler,
    RuleLabeler,
    build_labeler,
)
from dbm_lightning.models.classic import CLASSIC_MODELS
from dbm_lightning.models.factory import MODELS
from dbm_lightning.models.losses import CLASS_WEIGHTINGS
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig

__all__ = [
    "DATA_KEYS",
    "GROUP_KEYS",
    "LABEL_KINDS",
    "TOP_LEVEL_KEYS",
    "TRAINER_SET_BY_CODE",
    "ConfigError",
    "allowed_keys",
    "model_params",
    "sources",
    "trainer_params",
    "validate_config",
]

MISSING = "???"
"""OmegaConf's mark of a mandatory value (left as this string in a plain dict)."""


# ----------------------------------------------------------------------------- key tables


@cache
def sources() -> dict[str, type]:
    """``data.source`` -> the source class ``training.build_source`` builds (its fields are
    keys)."""

    return {"synthetic": SyntheticSource, "dlc": DLCFolderSource, "dbm_mat": DBMMatSource}


def _models() -> dict[str, type]:
    """The live model registry (``register_model`` may add to it) and the classic models of
    :data:`dbm_lightning.classic.CLASSIC_MODELS` (their constructors' arguments are keys too)."""
    return {**MODELS, **CLASSIC_MODELS}


def _classic_models() -> dict[str, type]:
    return CLASSIC_MODELS


def _split_config() -> type:
    return SplitConfig


def _augment_config() -> type:
    return AugmentConfig


def _split_strategies() -> tuple[str, ...]:
    return tuple(STRATEGIES)


def _class_weightings() -> tuple[str, ...]:
    return tuple(CLASS_WEIGHTINGS)


def _accelerators() -> tuple[str, ...]:
    from pytorch_lightning.accelerators import AcceleratorRegistry

    return tuple(sorted(set(AcceleratorRegistry.available_accelerators()) | {"auto", "gpu"}))


SOURCE_KEYS_REQUIRED: dict[str, tuple[str, ...]] = {"synthetic": ("mice", "days", "frames", "seed")}
"""Keys ``build_source`` indexes directly although the source class has defaults for them."""

DATA_KEYS = (
    "source",
    "window",
    "stride",
    "eval_stride",
    "batch_size",
    "num_workers",
    "fps",
    "arena",
)
"""``data`` keys ``build_datamodule`` reads whatever the source."""

LABEL_KINDS: dict[str, type] = {
    "rules": RuleLabeler,
    "from_files": FileLabeler,
    "embedded": EmbeddedLabeler,
}
"""``labels.kind`` -> the labeler class ``labeling.build_labeler`` builds (its fields are keys)."""

TRAINER_SET_BY_CODE = ("logger", "callbacks", "plugins", "deterministic", "default_root_dir")
"""``pl.Trainer`` arguments ``build_trainer`` passes itself (a ``trainer.`` key would clash)."""

TOP_LEVEL_KEYS = (
    "task_name",
    "seed",
    "deterministic",
    "torch_threads",
    "ckpt_path",
    "test_after_fit",
    "microstates",
    "loss",
    "labels",
    "data",
    "preprocess",
    "features",
    "split",
    "model",
    "optim",
    "trainer",
    "logger",
    "callbacks",
    "augment",
)
"""Top-level keys of a composed ``conf/train.yaml`` (``hydra`` is ignored)."""

GROUP_KEYS: dict[str, tuple[str, ...]] = {
    "optim": ("lr", "weight_decay"),
    "loss": ("class_weighting", "effective_beta"),
    "logger": ("kind", "save_dir", "name", "version"),
    "microstates": ("enabled", "k"),
    "callbacks": ("checkpoint", "early_stopping"),
    "callbacks.checkpoint": ("monitor", "mode", "save_top_k", "save_last"),
    "callbacks.early_stopping": ("enabled", "monitor", "mode", "patience"),
}
"""Keys of the groups that map to no single class (read one by one in ``training.py``)."""

LOGGER_KINDS = ("tensorboard", "none")
MONITOR_MODES = ("min", "max")


def _init_fields(cls: type) -> dict[str, Any]:
    """Constructor fields of a dataclass -> default (``inspect.Parameter.empty`` if none)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = inspect.Parameter.empty
    return out


def _signature_params(func: Callable, skip: Iterable[str]) -> tuple[dict[str, Any], bool]:
    """Named parameters of ``func`` -> default, and whether it takes ``**kwargs``."""
    skip = set(skip)
    params: dict[str, Any] = {}
    var_kw = False
    for p in inspect.signature(func).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            var_kw = True
        elif p.kind is not p.VAR_POSITIONAL and p.name not in skip:
            params[p.name] = p.default
    return params, var_kw


def model_params(name: str) -> tuple[dict[str, Any], bool]:
    """Hyperparameters (-> default) of the network registered as ``name``, and whether its
    constructor also takes ``**kwargs``."""
    return _signature_params(_models()[name].__init__, ("self", "n_features", "n_classes"))


def trainer_params() -> tuple[str, ...]:
    """The ``trainer`` keys: ``pl.Trainer``'s arguments but those ``build_trainer`` sets."""
    import pytorch_lightning as pl

    params, _ = _signature_params(pl.Trainer.__init__, ("self", *TRAINER_SET_BY_CODE))
    return tuple(params)


def allowed_keys(group: str, cfg: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The keys accepted in ``group`` (dotted, e.g. ``callbacks.checkpoint``); ``cfg`` is the
    whole config, needed for ``data`` (by source), ``labels`` (by kind), ``model`` (by name)."""
    cfg = cfg or {}
    sub = cfg.get(group) if isinstance(cfg.get(group), Mapping) else {}
    sub = {k: v for k, v in sub.items() if isinstance(v, str)}  # the names that pick the keys
    if group == "data":
        source = sources().get(sub.get("source"))
        extra = tuple(_init_fields(source)) if source else ()
        return tuple(dict.fromkeys((*DATA_KEYS, *extra)))
    if group == "labels":
        kind = LABEL_KINDS.get(sub.get("kind"))
        return ("kind", *(_init_fields(kind) if kind else ()))
    if group == "model":
        name = sub.get("name")
        return ("name", *(model_params(name)[0] if name in _models() else ()))
    if group == "trainer":
        return trainer_params()
    if group == "preprocess":
        return tuple(_init_fields(PreprocessConfig))
    if group == "features":
        return tuple(_init_fields(FeatureConfig))
    if group == "split":
        return tuple(_init_fields(_split_config()))
    if group == "augment":
        return tuple(_init_fields(_augment_config()))
    if group == "data.arena":
        return tuple(_init_fields(ArenaBounds))
    if group in GROUP_KEYS:
        return GROUP_KEYS[group]
    raise KeyError(f"no key table for config group {group!r}")


# ----------------------------------------------------------------------------- value rules

Rule = Callable[[Any], "str | None"]
"""A value check: ``None`` when the value is fine, else what is wrong with it."""


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    return isinstance(value, float) and value.is_integer()


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(minimum: int | None = None, also: Sequence[int] = ()) -> Rule:
    """An integer ``>= minimum`` (or one of ``also``, e.g. ``-1`` for "no limit")."""
    if minimum == 1:
        what = "a positive integer"
    elif minimum is None:
        what = "an integer"
    else:
        what = f"an integer >= {minimum}"
    if also:
        what += " or " + " or ".join(str(a) for a in also)

    def check(value: Any) -> str | None:
        if _is_int(value) and (int(value) in also or minimum is None or value >= minimum):
            return None
        return f"must be {what}, got {_show(value)}"

    return check


def number(
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    name: str = "",
) -> Rule:
    """A finite real number in the given interval (``name``: what it is, for the message)."""
    if low is not None and high is not None:
        what = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    elif low is not None:
        what = f"{'>' if low_open else '>='} {low:g}"
    elif high is not None:
        what = f"{'<' if high_open else '<='} {high:g}"
    else:
        what = "a number"

    def check(value: Any) -> str | None:
        ok = _is_number(value) and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        return None if ok else f"{name + ' ' if name else ''}must be {what}, got {_show(value)}"

    return check


def boolean(value: Any) -> str | None:
    """``true`` or ``false``."""
    return None if isinstance(value, bool) else f"must be true or false, got {_show(value)}"


def string(value: Any) -> str | None:
    """A string."""
    return None if isinstance(value, str) else f"must be a string, got {_show(value)}"


def string_list(value: Any) -> str | None:
    """A list of strings."""
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(isinstance(v, str) for v in value)
    ):
        return None
    return f"must be a list of names, got {_show(value)}"


def choice(options: Iterable[str] | Callable[[], Iterable[str]], what: str = "") -> Rule:
    """One of ``options`` (or of what calling it returns), with a "did you mean" for a near
    miss."""

    def check(value: Any) -> str | None:
        known = tuple(options() if callable(options) else options)
        if isinstance(value, str) and value in known:
            return None
        label = f"unknown {what} {_show(value)}" if what else f"unknown value {_show(value)}"
        return label + _hint(value, known, always_list=True)

    return check


def optional(rule: Rule) -> Rule:
    """``rule`` or ``None`` (null)."""

    def check(value: Any) -> str | None:
        return None if value is None else rule(value)

    return check


def anything(value: Any) -> str | None:
    """No check."""
    return None


POSITIVE_INT = integer(1)
NON_NEGATIVE_INT = integer(0)
POSITIVE = number(0, low_open=True)
NON_NEGATIVE = number(0)
FRACTION = number(0, 1, high_open=True)
PROBABILITY = number(0, 1)


def batch_limit(value: Any) -> str | None:
    """A number of batches (int >= 0) or a fraction of them (float in [0, 1])."""
    if (_is_int(value) and value >= 0) or (_is_number(value) and 0 <= value <= 1):
        return None
    return f"must be a number of batches >= 0 or a fraction in [0, 1], got {_show(value)}"


def fast_dev_run(value: Any) -> str | None:
    """``true``/``false`` or a number of batches."""
    if isinstance(value, bool) or (_is_int(value) and value >= 0):
        return None
    return f"must be true, false or a number of batches >= 0, got {_show(value)}"


def _max_features(value: Any) -> str | None:
    """A random forest's features per split: ``sqrt``, ``log2``, a fraction or a count."""
    if value in ("sqrt", "log2") or (_is_int(value) and value >= 1):
        return None
    if _is_number(value) and 0 < value <= 1:
        return None
    return f"must be sqrt, log2, a fraction in (0, 1] or a count >= 1, got {_show(value)}"


def _window_list(value: Any) -> str | None:
    """A list of window lengths in frames (positive integers; may be empty)."""
    if (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and all(_is_int(v) and v >= 1 for v in value)
    ):
        return None
    return f"must be a list of positive integers (frames), got {_show(value)}"


RULES: dict[str, Rule] = {
    # top level
    "task_name": string,
    "seed": NON_NEGATIVE_INT,
    "deterministic": boolean,
    "torch_threads": optional(POSITIVE_INT),
    "ckpt_path": optional(string),
    "test_after_fit": boolean,
    "microstates.enabled": boolean,
    "microstates.k": POSITIVE_INT,
    "loss.class_weighting": choice(_class_weightings, "class weighting"),
    "loss.effective_beta": FRACTION,
    # data (every source)
    "data.source": choice(sources, "data source"),
    "data.window": POSITIVE_INT,
    "data.stride": POSITIVE_INT,
    "data.eval_stride": optional(POSITIVE_INT),
    "data.batch_size": POSITIVE_INT,
    "data.num_workers": NON_NEGATIVE_INT,
    "data.fps": optional(POSITIVE),
    "data.mice": POSITIVE_INT,
    "data.days": POSITIVE_INT,
    "data.frames": POSITIVE_INT,
    "data.seed": NON_NEGATIVE_INT,
    "data.path": string,
    "data.pattern": string,
    "data.manifest": optional(string),
    "data.individual": optional(string),
    "data.arena.x_min": number(),
    "data.arena.x_max": number(),
    "data.arena.y_min": number(),
    "data.arena.y_max": number(),
    # labels
    "labels.kind": choice(LABEL_KINDS, "label kind"),
    "labels.zones": anything,  # checked zone by zone
    "labels.zone_bodypart": string,
    "labels.speed_bodypart": string,
    "labels.locomotion_speed": NON_NEGATIVE,
    "labels.rest_speed": NON_NEGATIVE,
    "labels.speed_smoothing": POSITIVE_INT,
    "labels.priority": optional(string_list),
    "labels.other": string,
    "labels.fps": POSITIVE,
    "labels.pattern": string,
    "labels.label_names": optional(string_list),
    # preprocess, features, split
    "preprocess.likelihood_threshold": PROBABILITY,
    "preprocess.max_gap": NON_NEGATIVE_INT,
    "features.pe_L": NON_NEGATIVE_INT,
    "features.ego_centre": optional(string),
    "features.ego_front": optional(string),
    "augment.rotation_deg": number(0, 180),
    "augment.reflection_p": PROBABILITY,
    "augment.translation": NON_NEGATIVE,
    "augment.scale": anything,  # [low, high]: checked by AugmentConfig
    "augment.jitter_px": NON_NEGATIVE,
    "split.strategy": choice(_split_strategies, "split strategy"),
    "split.val_fraction": FRACTION,
    "split.test_fraction": FRACTION,
    "split.seed": NON_NEGATIVE_INT,
    "split.fold": NON_NEGATIVE_INT,
    "split.n_folds": integer(2),
    "split.val_mice": anything,
    "split.test_mice": anything,
    "split.val_days": anything,
    "split.test_days": anything,
    # optim
    "optim.lr": number(0, low_open=True, name="the learning rate"),
    "optim.weight_decay": NON_NEGATIVE,
    # trainer (the arguments this project sets; the others go to Lightning unchecked)
    "trainer.max_epochs": optional(integer(1, also=(-1,))),
    "trainer.min_epochs": optional(NON_NEGATIVE_INT),
    "trainer.max_steps": integer(1, also=(-1,)),
    "trainer.log_every_n_steps": optional(POSITIVE_INT),
    "trainer.check_val_every_n_epoch": optional(POSITIVE_INT),
    "trainer.accumulate_grad_batches": POSITIVE_INT,
    "trainer.num_sanity_val_steps": optional(integer(0, also=(-1,))),
    "trainer.gradient_clip_val": optional(NON_NEGATIVE),
    "trainer.limit_train_batches": optional(batch_limit),
    "trainer.limit_val_batches": optional(batch_limit),
    "trainer.limit_test_batches": optional(batch_limit),
    "trainer.limit_predict_batches": optional(batch_limit),
    "trainer.fast_dev_run": fast_dev_run,
    "trainer.enable_progress_bar": optional(boolean),
    "trainer.enable_model_summary": optional(boolean),
    "trainer.enable_checkpointing": optional(boolean),
    # logger, callbacks
    "logger.kind": choice(LOGGER_KINDS, "logger kind"),
    "logger.save_dir": optional(string),
    "logger.name": string,
    "callbacks.checkpoint.monitor": string,
    "callbacks.checkpoint.mode": choice(MONITOR_MODES, "mode"),
    "callbacks.checkpoint.save_top_k": integer(0, also=(-1,)),
    "callbacks.checkpoint.save_last": boolean,
    "callbacks.early_stopping.enabled": boolean,
    "callbacks.early_stopping.monitor": string,
    "callbacks.early_stopping.mode": choice(MONITOR_MODES, "mode"),
    "callbacks.early_stopping.patience": NON_NEGATIVE_INT,
    # classic models (dbm_lightning.classic)
    "model.n_estimators": POSITIVE_INT,
    "model.max_depth": optional(POSITIVE_INT),
    "model.min_samples_leaf": POSITIVE_INT,
    "model.max_features": optional(_max_features),
    "model.class_weight": optional(choice(("balanced",), "class weight")),
    "model.rolling_windows": _window_list,
    "model.max_train_frames": optional(POSITIVE_INT),
    "model.n_jobs": optional(integer(1, also=(-1,))),
    "model.max_iter": POSITIVE_INT,
    "model.learning_rate": POSITIVE,
    "model.max_leaf_nodes": optional(integer(2)),
    "model.l2_regularization": NON_NEGATIVE,
}
"""Value checks by dotted key. Keys not listed are checked from their default's type."""


def _odd_positive_int(value: Any) -> str | None:
    """An odd integer >= 1 (a centred convolution kernel)."""
    if _is_int(value) and value >= 1 and int(value) % 2 == 1:
        return None
    return f"must be an odd positive integer, got {_show(value)}"


MODEL_PARAM_RULES: tuple[tuple[Callable[[str], bool], Rule], ...] = (
    (lambda n: n == "kernel_size", _odd_positive_int),
    (lambda n: n.endswith(("_width", "_size", "_layers", "_dim")), POSITIVE_INT),
    (lambda n: n in ("channels", "levels"), POSITIVE_INT),
    (lambda n: "dropout" in n, FRACTION),
    (lambda n: n.endswith("_std"), NON_NEGATIVE),
)
"""Value checks of network hyperparameters by name (any registered model)."""


def _rule_from_default(default: Any) -> Rule | None:
    """A type check from a default value (``None`` default: anything goes)."""
    if default is inspect.Parameter.empty or default is None:
        return None
    if isinstance(default, bool):
        return boolean
    if isinstance(default, numbers.Integral):
        return integer()
    if isinstance(default, numbers.Real):
        return number()
    if isinstance(default, str):
        return string
    return None


def _rule_for(key: str, default: Any = inspect.Parameter.empty) -> Rule | None:
    """The value check of dotted ``key`` (by name, else from its default)."""
    if key in RULES:
        return RULES[key]
    if key.startswith("model."):
        name = key.rsplit(".", 1)[1]
        for matches, rule in MODEL_PARAM_RULES:
            if matches(name):
                return rule if default is not None else optional(rule)
    rule = _rule_from_default(default)
    return rule


def _hint(
    name: Any, options: Iterable[str], always_list: bool = False, listing: bool = True
) -> str:
    """`` (did you mean X?)`` for a near miss, else the list of options (when short and
    ``listing``)."""
    options = list(options)
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    listing = ", ".join(options) if listing and len(options) <= 12 else ""
    if close and always_list and listing:
        return f" (did you mean {close[0]}? known: {listing})"
    if close:
        return f" (did you mean {close[0]}?)"
    if listing:
        return f" (known: {listing})"
    return ""


# ----------------------------------------------------------------------------- checker


class _Checker:
    """Walks the config and collects ``(key, problem)`` pairs."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = cfg
        self.problems: list[tuple[str, str]] = []

    def add(self, key: str, problem: str) -> None:
        self.problems.append((key, problem))

    def n(self) -> int:
        return len(self.problems)

    # -- generic helpers

    def group(self, key: str, required: bool = False, nullable: bool = False) -> dict | None:
        """The mapping at top-level ``key`` (``None`` when absent or allowed null)."""
        value = self.cfg.get(key)
        return self.mapping(
            key, value, required=required, nullable=nullable, present=key in self.cfg
        )

    def mapping(
        self,
        key: str,
        value: Any,
        required: bool = False,
        nullable: bool = False,
        present: bool = True,
    ) -> dict | None:
        """``value`` as a dict when it is a mapping; a problem for ``key`` otherwise."""
        if not present or value is None:
            if required:
                self.add(key, "is required")
            elif present and not nullable:
                self.add(key, "must be a mapping of settings, got null")
            return None
        if not isinstance(value, Mapping):
            self.add(key, f"must be a mapping of settings, got {_show(value)}")
            return None
        return dict(value)

    def keys(self, prefix: str, cfg: Mapping[str, Any], known: Iterable[str], where: str) -> set:
        """Flag keys of ``cfg`` not in ``known`` (``where``: e.g. "for model dbm_baseline");
        return them. The known keys are listed once, with the first unknown key."""
        known = list(known)
        unknown = [key for key in cfg if key not in known]
        for i, key in enumerate(unknown):
            hint = _hint(key, known) if i == 0 else _hint(key, known, listing=False)
            self.add(f"{prefix}.{key}", f"unknown key {where}{hint}")
        return set(unknown)

    def values(
        self,
        prefix: str,
        cfg: Mapping[str, Any],
        defaults: Mapping[str, Any] | None = None,
        skip: Iterable[str] = (),
    ) -> None:
        """Check the value of every key of ``cfg`` (but ``skip``) with its rule."""
        defaults = defaults or {}
        skip = set(skip)
        for key, value in cfg.items():
            if key in skip:
                continue
            dotted = f"{prefix}.{key}"
            if _is_missing(value):
                self.add(dotted, "is required" + _example(dotted))
                continue
            rule = _rule_for(dotted, defaults.get(key, inspect.Parameter.empty))
            problem = rule(value) if rule else None
            if problem:
                self.add(dotted, problem)

    def required(
        self, prefix: str, cfg: Mapping[str, Any], keys: Iterable[str], why: str
    ) -> set[str]:
        """Flag ``keys`` absent from ``cfg`` or left null/``???``; return those flagged."""
        flagged = set()
        for key in keys:
            if cfg.get(key) is None or _is_missing(cfg[key]):
                self.add(f"{prefix}.{key}", f"is required {why}{_example(f'{prefix}.{key}')}")
                flagged.add(key)
        return flagged

    def build(self, prefix: str, start: int, make: Callable[[], Any]) -> None:
        """Run the constructor ``make`` (cross-field checks) when ``prefix`` had no problem."""
        if self.n() != start:
            return
        try:
            make()
        except (ValueError, TypeError) as exc:
            self.add(prefix, str(exc))

    # -- groups

    def top(self) -> None:
        known = TOP_LEVEL_KEYS
        for key in self.cfg:
            if key == "hydra":
                continue
            if key not in known:
                self.add(key, f"unknown top-level key{_hint(key, known)}")
        top_scalars = {k: v for k, v in self.cfg.items() if k in RULES}
        for key, value in top_scalars.items():
            problem = RULES[key](value) if not _is_missing(value) else "is required"
            if problem:
                self.add(key, problem)

    def data(self) -> None:
        data = self.group("data", required=True)
        if data is None:
            return
        start = self.n()
        if "source" not in data or _is_missing(data["source"]):
            self.add("data.source", "is required" + _hint("", sources(), always_list=True))
            return
        kind = data["source"]
        problem = RULES["data.source"](kind)
        if problem:
            self.add("data.source", problem)
            return
        cls = sources()[kind]
        fields = _init_fields(cls)
        self.keys("data", data, allowed_keys("data", self.cfg), f"for data source {kind}")
        required = [k for k, d in fields.items() if d is inspect.Parameter.empty]
        required += SOURCE_KEYS_REQUIRED.get(kind, ())
        missing = self.required("data", data, dict.fromkeys(required), f"for data source {kind}")
        known = {k: v for k, v in data.items() if k != "arena" and (k in fields or k in DATA_KEYS)}
        self.values("data", known, fields, skip=missing)
        arena = self.mapping("data.arena", data.get("arena"), nullable=True)
        if arena is not None:
            a_start = self.n()
            self.keys("data.arena", arena, allowed_keys("data.arena"), "of the arena")
            missing = self.required(
                "data.arena", arena, _init_fields(ArenaBounds), "when an arena is given"
            )
            self.values("data.arena", arena, skip=missing)
            self.build("data.arena", a_start, lambda: ArenaBounds(**arena))
        window = data.get("window")
        for key in ("stride", "eval_stride"):
            stride = data.get(key)
            if self.n() == start and _is_int(window) and _is_int(stride) and stride > window:
                self.add(
                    f"data.{key}",
                    f"must not exceed data.window ({stride} > {window}): frames between "
                    "windows would never be seen",
                )

    def labels(self) -> None:
        labels = self.group("labels", required=True)
        if labels is None:
            return
        start = self.n()
        kind = labels.get("kind")
        if kind is None or _is_missing(kind):
            self.add("labels.kind", "is required" + _hint("", LABEL_KINDS, always_list=True))
            return
        problem = RULES["labels.kind"](kind)
        if problem:
            self.add("labels.kind", problem)
            return
        fields = _init_fields(LABEL_KINDS[kind])
        self.keys("labels", labels, ("kind", *fields), f"for labels of kind {kind}")
        self.values("labels", {k: v for k, v in labels.items() if k in fields}, fields)
        if kind == "rules":
            self.zones(labels.get("zones"))
        self.build("labels", start, lambda: build_labeler(labels))

    def zones(self, zones: Any) -> None:
        if zones is None:
            return
        if not isinstance(zones, Sequence) or isinstance(zones, str):
            self.add("labels.zones", f"must be a list of zones, got {_show(zones)}")
            return
        for i, zone in enumerate(zones):
            key = f"labels.zones[{i}]"
            zone = self.mapping(key, zone, required=True)
            if zone is None:
                continue
            shape = zone.get("shape")
            if shape not in ZONE_KEYS:
                self.add(f"{key}.shape", choice(ZONE_KEYS, "zone shape")(shape))
                continue
            coords = ZONE_KEYS[shape][1]
            self.keys(key, zone, ("name", "shape", *coords), f"for a {shape} zone")
            missing = self.required(key, zone, ("name", *coords), f"for a {shape} zone")
            if "name" not in missing and not isinstance(zone["name"], str):
                self.add(f"{key}.name", string(zone["name"]))
            for c in coords:
                if c not in missing and c != "vertices":
                    rule = POSITIVE if c == "r" else number()
                    problem = rule(zone[c])
                    if problem:
                        self.add(f"{key}.{c}", problem)

    def dataclass_group(self, name: str, cls: type) -> None:
        cfg = self.group(name)
        if cfg is None:
            return
        start = self.n()
        fields = _init_fields(cls)
        self.keys(name, cfg, fields, f"in {name}")
        self.values(name, cfg, fields)
        self.build(name, start, lambda: cls(**cfg))

    def model(self) -> None:
        model = self.group("model", required=True)
        if model is None:
            return
        name = model.get("name")
        if name is None or _is_missing(name):
            self.add("model.name", "is required" + _hint("", _models(), always_list=True))
            return
        if not isinstance(name, str) or name not in _models():
            self.add("model.name", choice(_models(), "model")(name))
            return
        params, var_kw = model_params(name)
        known = ("name", *params)
        unknown = set() if var_kw else self.keys("model", model, known, f"for model {name}")
        self.values("model", model, params, skip={"name", *unknown})
        if name in _classic_models() and self.cfg.get("ckpt_path") not in (None, ""):
            self.add(
                "ckpt_path",
                f"model {name} is fitted in one go and cannot resume from a checkpoint; "
                "remove ckpt_path (ckpt_path=null)",
            )

    def trainer(self) -> None:
        trainer = self.group("trainer")
        if trainer is None:
            return
        known = trainer_params()
        for key in trainer:
            if key in TRAINER_SET_BY_CODE:
                self.add(f"trainer.{key}", "is set by dbm-train itself; remove it")
            elif key not in known:
                self.add(
                    f"trainer.{key}",
                    f"unknown key: not an argument of lightning's Trainer{_hint(key, known)}",
                )
        self.values("trainer", {k: v for k, v in trainer.items() if v is not None})
        acc = trainer.get("accelerator")
        if isinstance(acc, str) and acc not in _accelerators():
            self.add("trainer.accelerator", choice(_accelerators, "accelerator")(acc))

    def simple(self, name: str, nullable: bool = False) -> None:
        cfg = self.group(name, nullable=nullable)
        if cfg is None:
            return
        self.keys(name, cfg, GROUP_KEYS[name], f"in {name}")
        nested = {k: v for k, v in cfg.items() if f"{name}.{k}" in GROUP_KEYS}
        self.values(name, {k: v for k, v in cfg.items() if k not in nested})
        for key, value in nested.items():
            dotted = f"{name}.{key}"
            sub = self.mapping(dotted, value, nullable=key == "early_stopping")
            if sub is not None:
                self.keys(dotted, sub, GROUP_KEYS[dotted], f"in {dotted}")
                self.values(dotted, sub)


def _is_missing(value: Any) -> bool:
    return isinstance(value, str) and value == MISSING


def _example(key: str) -> str:
    return f", e.g. {key}=..." if key.count(".") == 1 else ""


def _to_plain(cfg: Any) -> Any:
    """A plain dict of an OmegaConf container (mandatory ``???`` values kept as the string)."""
    try:
        from omegaconf import DictConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return cfg
    if isinstance(cfg, DictConfig):
        # Hydra's own node resolves only inside a running app: leave it out
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return cfg


def validate_config(cfg: Mapping[str, Any]) -> None:
    """Check a whole training config (plain nested dict or OmegaConf ``DictConfig``).

    Raises :class:`ConfigError` naming every unknown key (with a "did you mean"), every value
    out of range or of the wrong type and every required value left ``???``/null; returns
    ``None`` when the config is fine. Reads no file and builds no network.
    """
    cfg = _to_plain(cfg)
    if not isinstance(cfg, Mapping):
        raise ConfigError("<config>", f"must be a mapping of config groups, got {_show(cfg)}")
    check = _Checker(cfg)
    check.top()
    check.data()
    check.labels()
    check.dataclass_group("preprocess", PreprocessConfig)
    check.dataclass_group("features", FeatureConfig)
    check.dataclass_group("split", _split_config())
    check.dataclass_group("augment", _augment_config())
    check.model()
    check.simple("optim")
    check.simple("loss")
    check.trainer()
    check.simple("logger", nullable=True)
    check.simple("callbacks")
    check.simple("microstates", nullable=True)
    if check.problems:
        (key, problem), *more = check.problems
        raise ConfigError(key, problem, more)
