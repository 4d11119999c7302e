"""Config mistakes fail at start-up, naming the key, before any data is read
(`dbm_lightning.config_check` over the schema of `dbm_lightning.schema`); every shipped config
passes, and no YAML file restates a default of the schema."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_process import run_cli
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dbm_lightning import build
from dbm_lightning.cli.config import compose_config, composition_problems, conf_dir
from dbm_lightning.config_check import ConfigError, validate_config
from dbm_lightning.data import SOURCES, DLCFolderSource, LoaderConfig, SyntheticSource
from dbm_lightning.schema import GROUPS, OMEGACONF_MISSING, train_schema
from dbm_lightning.training import run_training

CONF = conf_dir()
NEEDS_PATH = {"dlc": "data.path=/nonexistent/dlc", "dbm_mat": "data.path=/nonexistent/x.mat"}


@pytest.fixture(scope="module")
def default_cfg() -> dict:
    """The composed default config as a plain nested dict."""
    return OmegaConf.to_container(compose_config([]), resolve=True)


def _problem(cfg: object) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    return str(info.value)


# --------------------------------------------------------------- every shipped config passes


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group",
    sorted(p.name for p in CONF.iterdir() if p.is_dir() and p.name not in ("hydra", "sweep")),
)
def test_every_option_of_every_group_passes(group: str) -> None:
    assert _options(group)
    for option in _options(group):
        overrides = [f"{group}={option}"]
        if group == "data" and option in NEEDS_PATH:
            overrides.append(NEEDS_PATH[option])
        validate_config(compose_config(overrides))  # raises on a problem


@pytest.mark.parametrize("sweep", _options("sweep"))
def test_every_sweep_value_passes(sweep: str) -> None:
    """Each value of each parameter a shipped sweep sets (the others at their first value),
    composed as the sweeper would."""
    text = (CONF / "sweep" / f"{sweep}.yaml").read_text()
    params = {
        k: str(v).split(",") for k, v in yaml.safe_load(text)["hydra"]["sweeper"]["params"].items()
    }
    for key, values in params.items():
        others = [f"{k}={v[0]}" for k, v in params.items() if k != key]
        for value in values:
            validate_config(compose_config([f"sweep={sweep}", *others, f"{key}={value}"]))


def test_shipped_data_configs_with_a_path_and_hydra_node_pass() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", ["data=dlc", "data.path=/x", "sweep=lr"], return_hydra_config=True)
    assert "hydra" in cfg
    validate_config(cfg)  # Hydra's own node is ignored


def test_plain_dicts_of_the_tests_pass() -> None:
    """A hand-written partial config (groups left out take their defaults) is fine, and comes
    back complete with the schema's defaults."""
    out = validate_config(
        {
            "data": {"source": "dlc", "path": "/somewhere", "window": 100, "stride": 50},
            "labels": {"kind": "rules", "zones": [], "speed_bodypart": "tail"},
            "preprocess": {},
            "features": {},
            "split": {"strategy": "leave_day_out", "val_days": [2]},
            "model": {"name": "dbm_baseline"},
            "trainer": {"max_epochs": 2, "enable_progress_bar": False},
            "callbacks": {},
        }
    )
    assert out["data"]["batch_size"] == LoaderConfig().batch_size
    assert out["optim"] == {"lr": 3e-3, "weight_decay": 1e-4}
    assert out["model"] == {
        "name": "dbm_baseline",
        "fc_width": 10,
        "lstm_width": 10,
        "noise_std": 0.1,
    }
    assert out["split"]["val_days"] == [2] and out["seed"] == 0


# --------------------------------------------------------------- the mistakes of the issue


def test_unknown_model_python_api(tmp_path: Path, default_cfg: dict) -> None:
    cfg = copy.deepcopy(default_cfg)
    cfg["model"] = {"name": "dbm_foo", "fc_width": 10}
    with pytest.raises(ConfigError) as info:
        run_training(cfg, tmp_path / "run")
    from dbm_lightning.models.factory import MODELS

    assert str(info.value).startswith("model.name: unknown model 'dbm_foo' (known: dbm_baseline, ")
    assert all(name in str(info.value) for name in MODELS)  # every registered network is listed
    assert info.value.key == "model.name"
    assert "did you mean dbm_modified?" in _problem({**cfg, "model": {"name": "dbm_modifed"}})


def test_misspelt_key_python_api_nested_dict(tmp_path: Path, default_cfg: dict) -> None:
    cfg = copy.deepcopy(default_cfg)
    cfg["model"]["hiden_size"] = 3
    with pytest.raises(ConfigError, match=r"^model\.hiden_size: unknown key for model dbm_base"):
        run_training(cfg, tmp_path / "run")
    cfg = copy.deepcopy(default_cfg)
    cfg["model"]["lstm_widht"] = 3
    assert _problem(cfg) == (
        "model.lstm_widht: unknown key for model dbm_baseline (did you mean lstm_width? "
        "known: name, fc_width, lstm_width, noise_std)"
    )
    cfg = copy.deepcopy(default_cfg)
    cfg["sed"] = 1
    assert _problem(cfg) == "sed: unknown top-level key (did you mean seed?)"


def test_negative_window_python_api(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        run_training(compose_config(["data.window=-5"]), tmp_path / "run")
    assert str(info.value) == "data.window: must be a positive integer, got -5"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.stride=-1"], "data.stride: must be a positive integer, got -1"),
        (["data.stride=300"], "data.stride: must not exceed data.window (300 > 200)"),
        (["data.batch_size=0"], "data.batch_size: must be a positive integer, got 0"),
        (["data.num_workers=-1"], "data.num_workers: must be an integer >= 0, got -1"),
        (["data.mice=0"], "data.mice: must be a positive integer, got 0"),
        (["data.steady=[jumping]"], "data.steady: must be distinct behaviours of the box"),
        (["data.steady=[rest]", "data.animals=2"], "data: steady behaviours are for one animal"),
        (["data.landmarks=true", "data.animals=2"], "data: landmarks are tracked for one animal"),
        (["data.source=dbm"], "data.source: unknown data source 'dbm' (did you mean dbm_mat?"),
        (["+data.windw=3"], "data.windw: unknown key for data source synthetic (did you mean"),
        (["+data.arena.x_mn=0"], "data.arena.x_mn: unknown key in data.arena (did you mean x_min"),
        (["data.arena.x_max=-1"], "data.arena: degenerate arena extent in x"),
        (["model=dbm_modified", "model.dropout=1.0"], "model.dropout: must be in [0, 1), got 1"),
        (["model=dbm_modified", "model.lstm_layers=0"], "model.lstm_layers: must be a positive"),
        (["model.noise_std=-0.1"], "model.noise_std: must be >= 0, got -0.1"),
        (["model=tcn", "model.kernel_size=4"], "model.kernel_size: must be an odd positive"),
        (["model=random_forest", "model.max_features=2.5"], "model.max_features: must be sqrt"),
        (["optim.lr=0"], "optim.lr: must be > 0, got 0"),
        (["optim.weight_decay=-1e-4"], "optim.weight_decay: must be >= 0, got -0.0001"),
        (["loss.class_weighting=inverted"], "loss.class_weighting: unknown class weighting"),
        (["split.strategy=leave_mice_out"], "split.strategy: unknown split strategy"),
        (["split.val_fraction=1.0"], "split.val_fraction: must be in [0, 1), got 1"),
        (["split.val_fraction=0.6", "split.test_fraction=0.5"], "split: val_fraction + test_"),
        (["preprocess.likelihood_threshold=1.5"], "preprocess.likelihood_threshold: must be in"),
        (["+preprocess.max_gaps=3"], "preprocess.max_gaps: unknown key in preprocess (did you"),
        (["features.pe_L=-2"], "features.pe_L: must be an integer >= 0, got -2"),
        (["features.distances=false"], "features: FeatureConfig selects no features"),
        (["labels.kind=rule"], "labels.kind: unknown label kind 'rule' (did you mean rules?"),
        (["+labels.zones.0.rr=3"], "labels: zone 'left_port' (circle) needs keys"),
        (["labels.rest_speed=500"], "labels: rest_speed (500"),
        (["trainer.max_epochs=0"], "trainer.max_epochs: must be a positive integer or -1"),
        (["+trainer.max_epoch=3"], "trainer.max_epoch: unknown key in trainer (did you mean max_e"),
        (["+trainer.logger=false"], "trainer.logger: is set by dbm-train itself"),
        (["trainer.accelerator=gpus"], "trainer.accelerator: unknown accelerator 'gpus' (did"),
        (["microstates.k=0"], "microstates.k: must be a positive integer, got 0"),
        (["callbacks.checkpoint.mode=maximum"], "callbacks.checkpoint.mode: unknown mode"),
        (["seed=-1"], "seed: must be an integer >= 0, got -1"),
        (["torch_threads=0"], "torch_threads: must be a positive integer, got 0"),
    ],
)
def test_bad_values_name_their_key(overrides: list[str], message: str) -> None:
    assert _problem(compose_config(overrides)).startswith(message)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("data.frames", "abc", "data.frames: must be an integer, got 'abc'"),
        ("model.fc_width", 2.5, "model.fc_width: must be an integer, got 2.5"),
        ("features.distances", "maybe", "features.distances: must be true or false, got 'maybe'"),
        ("data", 3, "data: must be a mapping of settings, got 3"),
    ],
)
def test_wrong_types_in_a_python_dict_name_their_key(
    default_cfg: dict, key: str, value: object, message: str
) -> None:
    """What Hydra refuses when it composes (a wrong type), the Python API refuses too."""
    cfg = copy.deepcopy(default_cfg)
    *path, last = key.split(".")
    node = cfg
    for part in path:
        node = node[part]
    node[last] = value
    assert _problem(cfg) == message


def test_every_problem_is_reported_at_once(default_cfg: dict) -> None:
    cfg = copy.deepcopy(default_cfg)
    cfg["data"]["window"] = -5
    cfg["optim"]["lrr"] = 0.1
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert [k for k, _ in info.value.problems] == ["data.window", "optim.lrr"]
    assert str(info.value).startswith("data.window: ")
    assert "; optim.lrr: unknown key in optim (did you mean lr?" in str(info.value)


def test_required_values(default_cfg: dict) -> None:
    cfg = copy.deepcopy(default_cfg)
    cfg["data"] = {"source": "dlc", "path": "???"}
    assert _problem(cfg) == "data.path: is required for data source dlc, e.g. data.path=..."
    cfg["data"] = {"source": "dbm_mat", "path": None}
    assert _problem(cfg).startswith("data.path: is required for data source dbm_mat")
    assert _problem({k: v for k, v in default_cfg.items() if k != "model"}) == (
        "model: is required"
    )
    # through run_training, OmegaConf's own error for ??? still comes first (dbm-train
    # turns it into "data.path is required, e.g. dbm-train data.path=...")
    with pytest.raises(MissingMandatoryValue):
        run_training(compose_config(["data=dlc"]), "/nonexistent/never-written")


# --------------------------------------------------------------- before any data is read


def test_config_error_comes_before_any_data_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad key with a DLC folder that does not exist: the ConfigError (not the
    FileNotFoundError), nothing loaded, nothing written, nothing generated."""

    def must_not_load(self: object, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"{type(self).__name__}.load called before the config was checked")

    out = tmp_path / "run"
    missing = tmp_path / "no_such_folder"
    cfg = compose_config(["data=dlc", f"data.path={missing}", "data.window=-5"])
    monkeypatch.setenv("DBM_LIGHTNING_CACHE", str(tmp_path / "cache"))
    for cls in (DLCFolderSource, SyntheticSource):
        monkeypatch.setattr(cls, "load", must_not_load)
    with pytest.raises(ConfigError, match=r"^data\.window: "):
        run_training(cfg, out)
    with pytest.raises(ConfigError, match=r"^model\.hiden_size: "):
        run_training(compose_config(["+model.hiden_size=3"]), out)
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "cache").exists()
    monkeypatch.undo()
    # the same config without the mistake does get to the folder
    with pytest.raises((FileNotFoundError, ValueError)) as info:
        run_training(compose_config(["data=dlc", f"data.path={missing}"]), out)
    assert not isinstance(info.value, ConfigError)
    assert str(missing) in str(info.value)


# --------------------------------------------------------------- the schema follows the code


def test_the_schema_mirrors_the_library_classes(default_cfg: dict) -> None:
    """Each group's schema has its class's fields and defaults (written once, there)."""
    from dbm_lightning.features import FeatureConfig
    from dbm_lightning.models.factory import MODELS

    def defaults(schema: type) -> dict:
        out = {}
        for f in dataclasses.fields(schema):
            value = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            out[f.name] = value
        return out

    assert defaults(GROUPS["features"].schema()) == dataclasses.asdict(FeatureConfig())
    for kind, cls in SOURCES.items():
        fields = [f.name for f in dataclasses.fields(cls) if f.init]
        schema = GROUPS["data"].schema(kind)
        assert [f.name for f in dataclasses.fields(schema)][: len(fields) + 1] == [
            "source",
            *fields,
        ]
        loader = {f.name for f in dataclasses.fields(LoaderConfig)}
        assert loader <= {f.name for f in dataclasses.fields(schema)}
    assert defaults(GROUPS["data"].schema("dlc"))["path"] == OMEGACONF_MISSING
    assert defaults(GROUPS["model"].schema("bilstm"))["lstm_width"] == 64
    assert set(MODELS) <= set(GROUPS["model"].variants())
    assert set(default_cfg) == {f.name for f in dataclasses.fields(train_schema())}
    for kind, cls in SOURCES.items():
        data = {"source": kind, "path": "/x"} if kind != "synthetic" else {"source": kind}
        assert isinstance(build.build_source(data), cls)


def test_registered_model_keys_come_from_its_signature(default_cfg: dict) -> None:
    from torch import nn

    from dbm_lightning.models.factory import MODELS, register_model

    class Tiny(nn.Module):
        def __init__(self, n_features: int, n_classes: int, hidden_size: int = 4) -> None:
            super().__init__()

    register_model("tiny_test_model", Tiny)
    try:
        cfg = copy.deepcopy(default_cfg)
        cfg["model"] = {"name": "tiny_test_model", "hidden_size": 8}
        validate_config(cfg)
        cfg["model"]["hidden_size"] = -1
        assert _problem(cfg) == "model.hidden_size: must be a positive integer, got -1"
        cfg["model"] = {"name": "tiny_test_model", "hiden_size": 8}
        assert _problem(cfg) == (
            "model.hiden_size: unknown key for model tiny_test_model (did you mean hidden_size? "
            "known: name, hidden_size)"
        )
    finally:
        MODELS.pop("tiny_test_model")


# --------------------------------------------------------------- dbm-train


def _dbm_train(args: list[str]) -> subprocess.CompletedProcess:
    return run_cli("dbm-train", args, timeout=120)


def test_dbm_train_config_mistakes(tmp_path: Path) -> None:
    """Exit 2, one line naming the keys, no traceback, nothing but the failure record written
    (and no data read: the DLC folder does not exist); what Hydra refuses while composing (an
    unknown option or key, a wrong type) is reported the same way, before any run folder."""
    out = tmp_path / "run"
    args = ["data=dlc", f"data.path={tmp_path / 'nope'}", "data.window=-5", "+model.hiden_size=3"]
    proc = _dbm_train([*args, f"hydra.run.dir={out}"])
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert (
        "dbm-train: data.window: must be a positive integer, got -5; "
        "model.hiden_size: unknown key for model dbm_baseline (known: name, fc_width, "
        "lstm_width, noise_std)\n"
    ) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (out / "metrics.json").exists() and not (out / "config.yaml").exists()
    assert "ConfigError: data.window" in (out / "failed.json").read_text()


def test_dbm_train_refuses_what_hydra_would_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """What Hydra refuses while composing (an unknown option or key, a wrong type): every
    mistake on one line with a did-you-mean, exit 2, before any run folder (dbm-train's entry
    point, in this process: the check runs before Hydra starts)."""
    from dbm_lightning.cli import train

    args = ["model=dbm_modifed", "model.hiden_size=3", "data.window=abc"]
    monkeypatch.setattr(sys, "argv", ["dbm-train", *args, f"hydra.run.dir={tmp_path / 'h'}"])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "dbm-train: model: unknown model option 'dbm_modifed' (did you mean dbm_modified? "
        "known: bilstm, dbm_baseline, dbm_modified, gradient_boosting, majority, "
        "random_forest, tcn); "
        "model.hiden_size: unknown key in model (known: name, fc_width, lstm_width, noise_std); "
        "data.window: must be an integer, got 'abc'\n"
    )
    assert not (tmp_path / "h").exists()


def test_composition_problems_of_a_sweep_use_each_first_value() -> None:
    assert composition_problems(["-m", "seed=0,1", "model=bilstm,tcn"]) == []
    assert composition_problems(["-m", "model=bilstm,tcnn", "seed=0,1"]) == []  # first: bilstm
    assert composition_problems(["-m", "model=tcnn,bilstm"])[0][0] == "model"
    assert composition_problems(["--cfg", "job", "model=nope"]) == []  # left to Hydra


# --------------------------------------------------------------- every default is written once


def _schema_defaults(group: str, variant: str) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(GROUPS[group].schema(variant)))


def _restated(values: dict, defaults: dict, where: str) -> list[str]:
    """Keys of ``values`` whose value is the schema default (nested mappings walked)."""
    out = []
    for key, value in values.items():
        if key == "defaults" or key not in defaults:
            continue
        if isinstance(value, dict) and isinstance(defaults[key], dict):
            out += _restated(value, defaults[key], f"{where}.{key}")
        elif not (isinstance(value, str) and value.startswith("${")) and value == defaults[key]:
            out.append(f"{where}.{key}: {value!r}")
    return out


def _variant(name: str, group: str, option: str) -> str:
    """The schema variant of group ``name`` once option ``group=option`` is selected."""
    discriminator = GROUPS[name].discriminator
    if discriminator is None:
        return "default"
    extra = [NEEDS_PATH[option]] if group == "data" and option in NEEDS_PATH else []
    return compose_config([f"{group}={option}", *extra])[name][discriminator]


def test_no_yaml_value_repeats_a_schema_default() -> None:
    """Every option of every group names its schema (or a sibling that does) and sets only
    what differs from the schema's defaults; experiments and global options too."""
    restated = []
    for path in sorted(CONF.glob("*/*.yaml")):
        group, option = path.parent.name, path.stem
        if group in ("hydra", "sweep"):
            continue
        text = path.read_text()
        values = yaml.safe_load(text) or {}
        if "# @package _global_" in text:
            for name, sub in values.items():
                if name in GROUPS and isinstance(sub, dict):
                    variant = _variant(name, group, option)
                    restated += _restated(
                        sub, _schema_defaults(name, variant), f"{path.name}:{name}"
                    )
            continue
        assert group in GROUPS, path
        names_schema = f"/schema/{group}/" in text or any(
            (CONF / group / f"{d}.yaml").is_file()
            for d in values.get("defaults", [])
            if isinstance(d, str)
        )
        assert names_schema, f"{path} names no schema in its defaults list"
        restated += _restated(
            values, _schema_defaults(group, _variant(group, group, option)), path.name
        )
    top = yaml.safe_load((CONF / "train.yaml").read_text())
    restated += _restated(
        top, {f.name: f.default for f in dataclasses.fields(train_schema())}, "train.yaml"
    )
    assert restated == []


def test_the_restated_check_can_fail() -> None:
    defaults = _schema_defaults("optim", "default")
    assert _restated({"lr": defaults["lr"], "weight_decay": 0.5}, defaults, "x") == ["x.lr: 0.003"]
