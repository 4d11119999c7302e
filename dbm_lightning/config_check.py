"""Check a run config against the schema before anything is read: :func:`validate_config`.

The keys, types, defaults and ranges are those of :mod:`dbm_lightning.schema` (Hydra applies
the same schema when it composes ``conf/``); this module walks a plain or OmegaConf mapping
through it and reports every mistake at once, each with its dotted key and, for a misspelt
key or name, a "did you mean" (``data.window: must be a positive integer, got -5``). What the
schema cannot say stays here, small: the checks a group's own constructor makes across its
fields, and the rules across groups (:func:`_across_groups`). Nothing is read from disk and no
network is built.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ValidationError

from dbm_lightning.augment import AugmentConfig
from dbm_lightning.data import SplitConfig
from dbm_lightning.data.sources import SyntheticSource
from dbm_lightning.errors import ConfigError
from dbm_lightning.features import FeatureConfig
from dbm_lightning.labeling import build_labeler
from dbm_lightning.models.classic import CLASSIC_MODELS
from dbm_lightning.preprocess import ArenaBounds, PreprocessConfig
from dbm_lightning.ranges import did_you_mean, range_of
from dbm_lightning.schema import (
    GROUPS,
    OMEGACONF_MISSING,
    TRAINER_SET_BY_CODE,
    RunConfig,
    mirror,
)

__all__ = ["CheckedConfig", "ConfigError", "plain_config", "validate_config"]

Problems = list[tuple[str, str]]

CONSTRUCTORS: dict[str, Any] = {
    "labels": build_labeler,
    "preprocess": lambda c: PreprocessConfig(**c),
    "features": lambda c: FeatureConfig(**c),
    "split": lambda c: SplitConfig(**c),
    "augment": lambda c: AugmentConfig(**c),
}
"""The library object each group becomes: built once here for the checks across its fields."""


class CheckedConfig(dict):
    """A whole run config as :func:`validate_config` returned it: complete and checked, so it
    is not checked again (the builders receive it from ``run_training``). Change a copy
    (``dict(cfg)``), not it."""


def plain_config(cfg: Any, throw_on_missing: bool = False) -> Any:
    """A plain ``dict``/``list`` copy of ``cfg`` (OmegaConf containers resolved, Hydra's own
    node left out). A mandatory ``???`` value stays the string, or raises OmegaConf's
    ``MissingMandatoryValue`` with ``throw_on_missing``. A :class:`CheckedConfig` is returned
    as it is."""
    if isinstance(cfg, CheckedConfig):
        return cfg
    if isinstance(cfg, DictConfig):
        cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    if isinstance(cfg, DictConfig | ListConfig):
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=throw_on_missing)
    if isinstance(cfg, Mapping):
        return {k: plain_config(v, throw_on_missing) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [plain_config(v, throw_on_missing) for v in cfg]
    return cfg


def _type_name(hint: Any) -> str:
    """What a value of the schema type ``hint`` must be, for a message."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    hint = args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if hint in names:
        return names[hint]
    return "a list" if typing.get_origin(hint) is list else "a mapping of settings"


def _nested(hint: Any) -> type | None:
    """The dataclass schema of a nested field (``arena``, ``callbacks.checkpoint``), if any."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate):
            return candidate
    return None


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _check_mapping(prefix: str, schema: type, value: Any, where: str, problems: Problems) -> dict:
    """``value`` merged into ``schema``'s defaults; every unknown key, wrong type, value out
    of range and missing required value added to ``problems`` (``where``: "for model x")."""
    base = OmegaConf.structured(schema)
    dot = f"{prefix}." if prefix else ""
    if not isinstance(value, Mapping):
        problems.append((prefix, f"must be a mapping of settings, got {_show(value)}"))
        return OmegaConf.to_container(base)
    fields = {f.name: f for f in dataclasses.fields(schema)}
    unknown = [key for key in value if key not in fields]
    for i, key in enumerate(unknown):
        if prefix == "trainer" and key in TRAINER_SET_BY_CODE:
            problems.append((f"trainer.{key}", "is set by dbm-train itself; remove it"))
            continue
        what = f"unknown key {where}" if prefix else "unknown top-level key"
        hint = did_you_mean(key, fields, listing=bool(prefix) and i == 0)
        problems.append((f"{dot}{key}", what + hint))
    hints = typing.get_type_hints(schema)
    for name, v in value.items():
        if name not in fields:
            continue
        sub = _nested(hints[name])
        if sub is not None and isinstance(v, Mapping):
            inner = _check_mapping(f"{dot}{name}", sub, v, f"in {dot}{name}", problems)
            base[name] = OmegaConf.merge(OmegaConf.structured(sub), inner)
            continue
        try:
            base[name] = v
        except ValidationError:
            problems.append((f"{dot}{name}", f"must be {_type_name(hints[name])}, got {_show(v)}"))
    out = OmegaConf.to_container(base, throw_on_missing=False)
    for name, f in fields.items():
        example = f", e.g. {dot}{name}=..." if dot.count(".") == 1 else ""
        declared = range_of(f)
        required = f.default == OMEGACONF_MISSING
        if out[name] == OMEGACONF_MISSING or (required and out[name] is None):
            problems.append((f"{dot}{name}", " ".join(("is required", where)).strip() + example))
        elif declared and name in value and (problem := declared.problem(out[name])):
            problems.append((f"{dot}{name}", problem))
    return out


def _check_group(name: str, value: Any, problems: Problems) -> dict | None:
    """The complete config of group ``name`` (defaults filled), its problems added."""
    group = GROUPS[name]
    if value is None:
        if group.required:
            problems.append((name, "is required"))
            return None
        value = {}
    if not isinstance(value, Mapping):
        problems.append((name, f"must be a mapping of settings, got {_show(value)}"))
        return None
    if group.discriminator is None:
        schema, where = group.schema(), f"in {name}"
    else:
        variant = value.get(group.discriminator)
        variants = group.variants()
        key = f"{name}.{group.discriminator}"
        if variant in (None, OMEGACONF_MISSING):
            problems.append((key, "is required" + did_you_mean("", variants, listing=True)))
            return None
        if variant not in variants:
            problem = f"unknown {group.what} {_show(variant)}"
            problems.append((key, problem + did_you_mean(variant, variants, listing=True)))
            return None
        schema, where = variants[variant], f"for {group.what} {variant}"
    start = len(problems)
    out = _check_mapping(name, schema, value, where, problems)
    if len(problems) == start:  # checks across the group's fields, by its own constructor
        try:
            if name in CONSTRUCTORS:
                CONSTRUCTORS[name](dict(out))
            elif name == "data" and out.get("arena") is not None:
                ArenaBounds(**out["arena"])
        except (ValueError, TypeError) as exc:
            problems.append(("data.arena" if name == "data" else name, str(exc)))
        if name == "data" and out.get("source") == "synthetic":
            try:  # the simulator's own checks across fields (e.g. landmarks with animals=2)
                fields = [f.name for f in dataclasses.fields(SyntheticSource) if f.init]
                SyntheticSource(**{k: out[k] for k in fields if k in out})
            except (ValueError, TypeError) as exc:
                problems.append(("data", str(exc)))
    return out


def _across_groups(cfg: Mapping[str, Any], problems: Problems) -> None:
    """The rules the schema cannot say: one group's value against another's."""
    data = cfg.get("data") or {}
    window = data.get("window")
    for key in ("stride", "eval_stride"):
        stride = data.get(key)
        valid = all(isinstance(v, int) and v >= 1 for v in (window, stride))
        if valid and stride > window:
            problems.append(
                (
                    f"data.{key}",
                    f"must not exceed data.window ({stride} > {window}): frames between "
                    "windows would never be seen",
                )
            )
    model = (cfg.get("model") or {}).get("name")
    if model in CLASSIC_MODELS and cfg.get("ckpt_path") not in (None, ""):
        problems.append(
            (
                "ckpt_path",
                f"model {model} is fitted in one go and cannot resume from a checkpoint; "
                "remove ckpt_path (ckpt_path=null)",
            )
        )


def validate_config(cfg: Any, groups: Iterable[str] | None = None) -> dict[str, Any]:
    """Check a run config (plain nested dict or OmegaConf ``DictConfig``, the shape of the
    composed ``conf/train.yaml``) and return it complete: every group present, defaults
    filled in from the schema.

    ``groups``: check only these groups and the top-level keys (what a builder needs);
    ``None`` checks the whole config, unknown top-level keys included, and returns a
    :class:`CheckedConfig` (which any later call returns unchanged). Raises
    :class:`ConfigError` naming every mistake at once. Reads no file.
    """
    if isinstance(cfg, CheckedConfig):
        return cfg
    cfg = plain_config(cfg)
    if not isinstance(cfg, Mapping):
        raise ConfigError("<config>", f"must be a mapping of config groups, got {_show(cfg)}")
    problems: Problems = []
    names = list(GROUPS) if groups is None else list(groups)
    top = {k: v for k, v in cfg.items() if k not in GROUPS and k != "hydra"}
    if groups is not None:
        top = {k: v for k, v in top.items() if k in {f.name for f in dataclasses.fields(RunConfig)}}
    out: dict[str, Any] = _check_mapping("", mirror(RunConfig), top, "", problems)
    for name in names:
        out[name] = _check_group(name, cfg.get(name), problems)
    if groups is None:
        _across_groups(out, problems)
    if problems:
        (key, problem), *more = problems
        raise ConfigError(key, problem, more)
    return CheckedConfig(out) if groups is None else out
