"""Where the Hydra configs live, and composing them from Python (tests, notebooks).

Importing this module registers the config schema (:func:`dbm_lightning.schema.register_configs`)
in Hydra's ConfigStore, which the YAML files' defaults lists name."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import Any

from dbm_lightning.schema import register_configs

CONF_ENV = "DBM_LIGHTNING_CONF"

register_configs()


def conf_dir() -> Path:
    """The ``conf/`` folder: ``$DBM_LIGHTNING_CONF`` if set, else the repository's ``conf/``."""
    env = os.environ.get(CONF_ENV)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "conf"
    if not (path / "train.yaml").is_file():
        raise FileNotFoundError(
            f"{path}: no train.yaml here; install the package in editable mode from its "
            f"repository (pip install -e .) or point {CONF_ENV} at the conf/ folder"
        )
    return path


def compose_config(overrides: list[str] | None = None, config_name: str = "train") -> Any:
    """The composed config (an OmegaConf ``DictConfig``) for ``overrides``, as ``dbm-train``
    would see it (without the ``hydra`` node)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compose(
            config_name=config_name, overrides=overrides or [], return_hydra_config=False
        )


_TYPE_WORDS = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}


def _override_problem(exc: Exception, override: Any, conf: Path, compose: Any) -> str:
    """What is wrong with one command-line ``override`` that Hydra refused with ``exc``."""
    from hydra.errors import MissingConfigException
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    from dbm_lightning.ranges import did_you_mean

    key = override.get_key_element().lstrip("+~")
    if isinstance(exc, MissingConfigException):
        options = sorted(p.stem for p in (conf / key).glob("*.yaml"))
        value = override.value()
        return f"unknown {key} option {value!r}" + did_you_mean(value, options, listing=True)
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        words = [w for w in _TYPE_WORDS if w in str(cause)]
        what = _TYPE_WORDS[words[0]] if words else "of another type"
        return f"must be {what}, got {override.value()!r}"
    parent, _, leaf = key.rpartition(".")
    try:
        node = OmegaConf.select(compose(), parent) if parent else compose()
        known = list(node.keys()) if node is not None else []
    except Exception:  # noqa: BLE001 - no better hint to give
        known = []
    where = f" in {parent}" if parent else ""
    return f"unknown key{where}" + did_you_mean(leaf, known, listing=bool(parent))


def _compose_without_refused(compose: Any, config_name: str, rest: list[str]) -> Any:
    """The config with the overrides not refused so far (or with fewer, if they do not
    compose either), for the keys a "did you mean" offers; ``None`` if nothing composes."""
    groups = [t for t in rest if "." not in t.split("=")[0]]
    for tried in (rest, groups, []):
        try:
            return compose(config_name=config_name, overrides=tried)
        except Exception:  # noqa: BLE001, S112 - try with fewer overrides
            continue
    return None


def composition_problems(args: list[str], config_name: str = "train") -> list[tuple[str, str]]:
    """``(key, problem)`` for every command-line override of ``args`` that Hydra would refuse
    while composing ``config_name`` (unknown option, unknown key, wrong type), with a "did you
    mean"; ``[]`` when it composes. Sweep overrides are tried with their first value; ``hydra``
    settings and calls with other flags than ``-m`` are left to Hydra."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in args):
        return []
    try:
        parsed = OverridesParser.create().parse_overrides([a for a in args if a[:1] != "-"])
    except Exception as exc:  # noqa: BLE001 - a syntax error: Hydra's own message
        return [("<command line>", str(exc).splitlines()[0])]
    todo = []
    for o in parsed:
        if o.get_key_element().lstrip("+~").startswith("hydra"):
            continue
        value = next(iter(o.sweep_string_iterator())) if o.is_sweep_override() else None
        text = o.input_line if value is None else f"{o.get_key_element()}={value}"
        todo.append((o, text))
    conf = conf_dir()
    problems: list[tuple[str, str]] = []
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        for _ in range(len(todo) + 1):
            current = [text for _, text in todo]
            try:
                compose(config_name=config_name, overrides=current)
                return problems
            except Exception as exc:  # noqa: BLE001 - find the override Hydra refused
                message = str(exc)
                culprit = next(
                    (item for item in todo if item[1] in message or f"'{item[0].key_or_group}'"
                     in message or f"'{item[0].key_or_group}/" in message),
                    None,
                )  # fmt: skip
                if culprit is None:
                    problems.append(("<config>", message.splitlines()[0]))
                    return problems
                todo.remove(culprit)
                rest = [t for _, t in todo]
                composed = partial(_compose_without_refused, compose, config_name, rest)
                key = culprit[0].key_or_group
                problems.append((key, _override_problem(exc, culprit[0], conf, composed)))
    return problems
