"""Config mistakes fail at start-up, naming the key, before any data is read
(`dbm_lightning.config_check`); every shipped config passes."""

from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from dbm_lightning import build
from dbm_lightning.cli.config import compose_config, conf_dir
from dbm_lightning.config_check import (
    GROUP_KEYS,
    LABEL_KINDS,
    TOP_LEVEL_KEYS,
    TRAINER_SET_BY_CODE,
    ConfigError,
    sources,
    validate_config,
)
from dbm_lightning.data import DLCFolderSource, SyntheticSource
from dbm_lightning.labeling import build_labeler
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
    """A hand-written partial config (groups left out take their defaults) is fine."""
    validate_config(
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
        "model.lstm_widht: unknown key for model dbm_baseline (did you mean lstm_width?)"
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
        (["data.frames=abc"], "data.frames: must be a positive integer, got 'abc'"),
        (["data.source=dbm"], "data.source: unknown data source 'dbm' (did you mean dbm_mat?"),
        (["+data.windw=3"], "data.windw: unknown key for data source synthetic (did you mean"),
        (["+data.arena.x_mn=0"], "data.arena.x_mn: unknown key of the arena (did you mean x_min"),
        (["data.arena.x_max=-1"], "data.arena: degenerate arena extent in x"),
        (["model=dbm_modified", "model.dropout=1.0"], "model.dropout: must be in [0, 1), got 1"),
        (["model=dbm_modified", "model.lstm_layers=0"], "model.lstm_layers: must be a positive"),
        (["model.fc_width=2.5"], "model.fc_width: must be a positive integer, got 2.5"),
        (["model.noise_std=-0.1"], "model.noise_std: must be >= 0, got -0.1"),
        (["optim.lr=0"], "optim.lr: the learning rate must be > 0, got 0"),
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
        (["+labels.zones.0.rr=3"], "labels.zones[0].rr: unknown key for a circle zone (did you"),
        (["labels.rest_speed=500"], "labels: rest_speed (500"),
        (["trainer.max_epochs=0"], "trainer.max_epochs: must be a positive integer or -1"),
        (["+trainer.max_epoch=3"], "trainer.max_epoch: unknown key: not an argument of light"),
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


def test_every_problem_is_reported_at_once(default_cfg: dict) -> None:
    cfg = copy.deepcopy(default_cfg)
    cfg["data"]["window"] = -5
    cfg["optim"]["lrr"] = 0.1
    with pytest.raises(ConfigError) as info:
        validate_config(cfg)
    assert [k for k, _ in info.value.problems] == ["data.window", "optim.lrr"]
    assert str(info.value).startswith("data.window: ")
    assert "; optim.lrr: unknown key in optim (did you mean lr?)" in str(info.value)


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


# --------------------------------------------------------------- the key tables follow the code


def test_key_tables_follow_the_code(default_cfg: dict) -> None:
    assert set(TOP_LEVEL_KEYS) == set(default_cfg)
    from dbm_lightning import training

    source = Path(training.__file__).read_text() + Path(build.__file__).read_text()
    for group, keys in GROUP_KEYS.items():
        for key in keys:
            assert f'"{key}"' in source, f"{group}.{key} is not read in training.py / build.py"
    # the Trainer arguments build_trainer sets itself
    module = ast.parse(Path(build.__file__).read_text())
    (tree,) = [n for n in module.body if getattr(n, "name", None) == "build_trainer"]
    calls = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and ast.unparse(n.func) in ("pl.Trainer", "Trainer")
    ]
    assert len(calls) == 1
    assert {k.arg for k in calls[0].keywords if k.arg} == set(TRAINER_SET_BY_CODE)
    # data sources and labeler kinds: what build_source / build_labeler build
    for kind, cls in sources().items():
        data = {"source": kind, "path": "/x", "mice": 1, "days": 1, "frames": 10, "seed": 0}
        assert isinstance(build.build_source(data), cls)
    assert isinstance(build_labeler({"kind": "embedded"}), LABEL_KINDS["embedded"])
    assert isinstance(build_labeler({"kind": "from_files"}), LABEL_KINDS["from_files"])
    assert isinstance(build_labeler({"kind": "rules"}), LABEL_KINDS["rules"])


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
            "model.hiden_size: unknown key for model tiny_test_model (did you mean hidden_size?)"
        )
    finally:
        MODELS.pop("tiny_test_model")


# --------------------------------------------------------------- dbm-train


def _dbm_train(args: list[str]) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "dbm_lightning.cli.train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def test_dbm_train_config_mistakes(tmp_path: Path) -> None:
    """Exit 2, one line naming the keys, no traceback, nothing but the failure record written
    (and no data read: the DLC folder does not exist); overrides of keys that do not exist
    and unknown group options are Hydra's to refuse."""
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
    for args, expected in (
        (["model=dbm_foo"], "Could not find 'model/dbm_foo'"),
        (["model.hiden_size=3"], "Could not override 'model.hiden_size'"),
    ):
        proc = _dbm_train([*args, f"hydra.run.dir={tmp_path / 'hydra'}"])
        assert proc.returncode != 0
        assert expected in proc.stderr
        assert "Traceback" not in proc.stderr
