"""The run config's schema: one dataclass per config group, where every default and range lives.

The dataclasses are the library's own where one exists: the data sources with
:class:`~dbm_lightning.data.LoaderConfig` (``data``), the labelers (``labels``),
``PreprocessConfig``, ``FeatureConfig``, ``SplitConfig``, ``AugmentConfig``, the model
constructors of both families (``model``, ranges from :mod:`dbm_lightning.models.hparams`),
``OptimConfig``, ``LossConfig`` and Lightning's ``Trainer`` signature; the groups only the
runner reads are defined below. Each is mirrored once (:func:`mirror`: same fields, defaults
and ranges, with the types OmegaConf can hold) and registered in Hydra's ConfigStore as
``schema/<group>/<variant>`` (:func:`register_configs`). Every YAML option names its schema in
its defaults list, so the composing library refuses an unknown key or a wrong type with the
dotted key, and the YAML files only select and override.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pathlib
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, field
from functools import cache
from typing import Any, Optional, Union

import pytorch_lightning as pl

from dbm_lightning.augment import AugmentConfig
from dbm_lightning.data import (
    SOURCES,
    LoaderConfig,
    SplitConfig,
)
from dbm_lightning.evaluation.heldout import PostprocessConfig
from dbm_lightning.features import FeatureConfig
from dbm_lightning.labeling import EmbeddedLabeler, FileLabeler, RuleLabeler
from dbm_lightning.models.classic import CLASSIC_MODELS
from dbm_lightning.models.ensemble import EnsembleConfig
from dbm_lightning.models.factory import MODELS
from dbm_lightning.models.hparams import hparam_range
from dbm_lightning.models.lightning import OptimConfig
from dbm_lightning.models.losses import LossConfig
from dbm_lightning.preprocess import PreprocessConfig
from dbm_lightning.ranges import at_least, one_of, satisfies

__all__ = [
    "GROUPS",
    "TRAINER_SET_BY_CODE",
    "CallbacksConfig",
    "Group",
    "LoggerConfig",
    "MicrostatesConfig",
    "RunConfig",
    "mirror",
    "register_configs",
    "train_schema",
]

OMEGACONF_MISSING = "???"
"""OmegaConf's mark of a mandatory value."""

TRAINER_SET_BY_CODE = (
    "logger",
    "callbacks",
    "plugins",
    "deterministic",
    "default_root_dir",
    "use_distributed_sampler",
)
"""``pl.Trainer`` arguments ``build_trainer`` passes itself (not ``trainer`` keys); the data
module shares the windows between DDP processes itself."""


@dataclass
class RunConfig:
    """The top-level keys: ``seed`` (0 is honoured; it also draws the held-out sessions),
    ``deterministic`` algorithms, ``torch_threads`` per run (``None``: torch's default),
    ``ckpt_path`` to resume (``last``: the run folder's own), ``overwrite`` a finished or
    interrupted run in the output folder (its files are removed once the new run has set up
    its data), ``test_after_fit``, ``verbose`` (show the third-party notices that are filtered
    out by default, :mod:`dbm_lightning.console`)."""

    task_name: str = "train"
    seed: int = field(default=0, metadata=at_least(0))
    deterministic: bool = True
    torch_threads: int | None = field(default=1, metadata=at_least(1))
    ckpt_path: str | None = None
    overwrite: bool = False
    test_after_fit: bool = True
    verbose: bool = False


@dataclass
class MicrostatesConfig:
    """``microstates``: k-means on the best model's per-frame embedding after training.
    ``enabled``: ``None`` (the default) fits them after a single run and not after the runs
    of a sweep, where they would take a quarter of each run's time; ``true`` / ``false``
    always / never."""

    enabled: bool | None = None
    k: int = field(default=50, metadata=at_least(1))


@dataclass
class LoggerConfig:
    """``logger``: TensorBoard or none. ``save_dir`` ``None`` and ``name`` ``""``: the events
    in the run folder itself, so that TensorBoard pointed at a sweep names each run as its
    folder (``0_experiment=baseline,seed=0``)."""

    kind: str = field(default="tensorboard", metadata=one_of(("tensorboard", "none"), "logger"))
    save_dir: str | None = None
    name: str = ""
    version: str = ""


_MODES = one_of(("min", "max"), "mode")


@dataclass
class CheckpointConfig:
    """``callbacks.checkpoint``: the best checkpoint's monitor; ``last.ckpt`` every epoch."""

    monitor: str = "val/acc"
    mode: str = field(default="max", metadata=_MODES)
    save_top_k: int = field(default=1, metadata=at_least(0, also=(-1,)))
    save_last: bool = True


@dataclass
class EarlyStoppingConfig:
    """``callbacks.early_stopping`` (off by default)."""

    enabled: bool = False
    monitor: str = "val/acc"
    mode: str = field(default="max", metadata=_MODES)
    patience: int = field(default=10, metadata=at_least(0))


@dataclass
class CallbacksConfig:
    """``callbacks``: the checkpoint and early-stopping callbacks."""

    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


# ------------------------------------------------------------------------------ mirroring

_PLAIN = (int, float, bool, str)


def _omegaconf_type(hint: Any) -> Any:
    """``hint`` as a type OmegaConf holds: plain scalars, Optional, List, nested dataclasses
    (mirrored); paths become strings and anything else ``Any``."""
    if hint in _PLAIN:
        return hint
    if hint is pathlib.Path:
        return str
    if dataclasses.is_dataclass(hint):
        return mirror(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        inner = _omegaconf_type(kept[0]) if len(kept) == 1 else Any
        return Optional[inner] if len(kept) < len(args) and inner is not Any else inner  # noqa: UP045
    if origin in (list, tuple, Sequence, typing.Sequence):
        elems = {a for a in args if a is not Ellipsis}
        elem = elems.pop() if len(elems) == 1 and next(iter(elems)) in _PLAIN else Any
        return list[elem]
    return Any


def _fields_of(source: Any, constructor: bool) -> list[tuple[str, Any, Any, dict]]:
    """``(name, type hint, default or MISSING, metadata)`` of a dataclass's init fields, or
    of a constructor's named parameters (``constructor``; ranges by hyperparameter name)."""
    if not constructor:
        hints = typing.get_type_hints(source)
        out = []
        for f in dataclasses.fields(source):
            if not f.init:
                continue
            default = f.default
            if f.default_factory is not MISSING:
                default = f.default_factory()
            out.append((f.name, hints.get(f.name, Any), default, dict(f.metadata)))
        return out
    init = source.__init__
    hints = typing.get_type_hints(init)
    skip = {"self", "n_features", "n_classes"}
    return [
        (p.name, hints.get(p.name, Any), MISSING if p.default is p.empty else p.default,
         hparam_range(p.name))
        for p in inspect.signature(init).parameters.values()
        if p.name not in skip and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]  # fmt: skip


def _field(default: Any, metadata: dict) -> Any:
    if default is MISSING:
        return field(default=OMEGACONF_MISSING, metadata=metadata)
    if dataclasses.is_dataclass(default):  # a nested group: its mirror, with the same values
        kind = mirror(type(default))
        values = {f.name: getattr(default, f.name) for f in dataclasses.fields(default) if f.init}
        return field(default_factory=lambda: kind(**copy.deepcopy(values)), metadata=metadata)
    if isinstance(default, tuple | list | dict):
        value = list(default) if isinstance(default, tuple) else default
        return field(default_factory=lambda v=value: copy.deepcopy(v), metadata=metadata)
    return field(default=default, metadata=metadata)


@cache
def mirror(
    source: Any,
    name: str | None = None,
    discriminator: tuple[str, str] | None = None,
    base: Any = None,
    constructor: bool = False,
) -> type:
    """A plain dataclass with ``source``'s fields, defaults and range metadata (a dataclass,
    or a constructor's parameters with ``constructor``), typed for OmegaConf; ``base``'s
    fields follow (``source``'s win on a shared name) and ``discriminator`` ``(key, value)``
    comes first (e.g. ``("name", "bilstm")``)."""
    rows = _fields_of(source, constructor)
    if base is not None:
        seen = {r[0] for r in rows}
        rows += [r for r in _fields_of(base, False) if r[0] not in seen]
    specs = [(n, _omegaconf_type(t), _field(d, m)) for n, t, d, m in rows]
    if discriminator is not None:
        specs.insert(0, (discriminator[0], str, field(default=discriminator[1])))
    label = name or f"{getattr(source, '__name__', 'Config')}Schema"
    return dataclasses.make_dataclass(label, specs)


# ------------------------------------------------------------------------------ groups


@dataclass(frozen=True)
class Group:
    """A config group: its schema per variant (``discriminator`` names the key that picks the
    variant, e.g. ``data.source``; ``None`` for a group with one schema, variant
    ``default``); ``what`` names a variant in messages."""

    variants: Callable[[], dict[str, type]]
    discriminator: str | None = None
    what: str = ""
    required: bool = False

    def schema(self, variant: str = "default") -> type:
        return self.variants()[variant]


def _data() -> dict[str, type]:
    return {
        kind: mirror(cls, f"Data_{kind}", ("source", kind), LoaderConfig)
        for kind, cls in SOURCES.items()
    }


def _labels() -> dict[str, type]:
    kinds = {"rules": RuleLabeler, "from_files": FileLabeler, "embedded": EmbeddedLabeler}
    return {kind: mirror(cls, f"Labels_{kind}", ("kind", kind)) for kind, cls in kinds.items()}


def _models() -> dict[str, type]:
    """Every registered network (live: ``register_model`` may add one) and classic model."""
    return {
        name: mirror(cls, f"Model_{name}", ("name", name), constructor=True)
        for name, cls in {**MODELS, **CLASSIC_MODELS}.items()
    }


def _one(cls: Any) -> Callable[[], dict[str, type]]:
    """The variants of a group with one schema: ``default``, ``cls`` mirrored."""
    return lambda: {"default": mirror(cls)}


def _accelerators() -> list[str]:
    from pytorch_lightning.accelerators import AcceleratorRegistry

    return sorted(set(AcceleratorRegistry.available_accelerators()) | {"auto", "gpu"})


def _batches(v: Any) -> bool:
    """A number of batches (int >= 0) or a fraction of them (float in [0, 1])."""
    if isinstance(v, bool):
        return False
    return (isinstance(v, int) and v >= 0) or (isinstance(v, float) and 0 <= v <= 1)


TRAINER_RANGES: dict[str, dict] = {
    "accelerator": one_of(_accelerators, "accelerator"),
    "max_epochs": at_least(1, also=(-1,)),
    "min_epochs": at_least(0),
    "max_steps": at_least(1, also=(-1,)),
    "log_every_n_steps": at_least(1),
    "check_val_every_n_epoch": at_least(1),
    "accumulate_grad_batches": at_least(1),
    "num_sanity_val_steps": at_least(0, also=(-1,)),
    "gradient_clip_val": at_least(0, integer=False),
    "fast_dev_run": satisfies(
        lambda v: isinstance(v, bool) or (isinstance(v, int) and v >= 0),
        "true, false or a number of batches >= 0",
    ),
    **{
        f"limit_{s}_batches": satisfies(_batches, "a number of batches >= 0 or a fraction")
        for s in ("train", "val", "test", "predict")
    },
}
"""Ranges of the ``trainer`` keys this project sets or users change most."""


@cache
def trainer_schema() -> type:
    """``trainer``: the arguments of Lightning's ``Trainer`` but those dbm-train sets itself,
    with Lightning's defaults (:data:`TRAINER_RANGES` for the common ones)."""
    params = inspect.signature(pl.Trainer.__init__).parameters
    hints = typing.get_type_hints(pl.Trainer.__init__)
    specs = [
        (
            n,
            _omegaconf_type(hints.get(n, Any)),
            field(default=p.default, metadata=TRAINER_RANGES.get(n, {})),
        )
        for n, p in params.items()
        if n != "self" and n not in TRAINER_SET_BY_CODE
        for ranges in (TRAINER_RANGES.get(n, {}),)
    ]
    return dataclasses.make_dataclass("TrainerSchema", specs)


GROUPS: dict[str, Group] = {
    "labels": Group(_labels, "kind", "label kind", required=True),
    "data": Group(_data, "source", "data source", required=True),
    "preprocess": Group(_one(PreprocessConfig)),
    "features": Group(_one(FeatureConfig)),
    "split": Group(_one(SplitConfig)),
    "model": Group(_models, "name", "model", required=True),
    "optim": Group(_one(OptimConfig)),
    "loss": Group(_one(LossConfig)),
    "trainer": Group(lambda: {"default": trainer_schema()}),
    "logger": Group(_one(LoggerConfig)),
    "callbacks": Group(_one(CallbacksConfig)),
    "augment": Group(_one(AugmentConfig)),
    "microstates": Group(_one(MicrostatesConfig)),
    "postprocess": Group(_one(PostprocessConfig)),
    "ensemble": Group(_one(EnsembleConfig)),
}
"""Every config group in the order of ``conf/train.yaml``."""

INLINE_GROUPS = ("microstates", "loss", "postprocess", "ensemble")
"""Groups set inline in ``conf/train.yaml`` (no YAML option files)."""


@cache
def train_schema() -> type:
    """The top-level schema of ``conf/train.yaml``: :class:`RunConfig`'s keys, each group
    (its variant's schema comes with the group's YAML option), ``microstates`` and ``loss``
    (set inline)."""
    specs: list[tuple[str, Any, Any]] = [
        (n, _omegaconf_type(t), _field(d, m)) for n, t, d, m in _fields_of(RunConfig, False)
    ]
    for name, group in GROUPS.items():
        if name in INLINE_GROUPS:
            specs.append((name, group.schema(), field(default_factory=group.schema())))
        else:
            specs.append((name, Any, field(default=OMEGACONF_MISSING)))
    return dataclasses.make_dataclass("TrainSchema", specs)


def register_configs() -> None:
    """Store every schema in Hydra's ConfigStore: ``schema/train`` and
    ``schema/<group>/<variant>`` (what the YAML defaults lists name)."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="schema", name="train", node=train_schema())
    for name, group in GROUPS.items():
        for variant, schema in group.variants().items():
            store.store(group=f"schema/{name}", name=variant, node=schema)
