"""Checkpoint files: written atomically, read without executing pickled code, and checked
against the data they are applied to.

* :class:`AtomicCheckpointIO` is the Lightning checkpoint plugin ``run_training`` uses: a run
  killed while saving leaves the previous ``last.ckpt``, never a truncated one.
* :func:`read_checkpoint` loads a checkpoint with ``torch.load(weights_only=True)``: tensors,
  numbers, strings, lists and dicts only. A file that would need to unpickle arbitrary
  objects (code) is refused with a :class:`~dbm_lightning.errors.DataFormatError`.
* :func:`check_compatible` compares what a checkpoint was trained on (body parts, classes,
  features) with a data module, so resuming or fine-tuning on other data fails with a message
  that names both, not with a tensor-size mismatch deep inside ``load_state_dict``.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO

from dbm_lightning.atomic import write_atomic
from dbm_lightning.errors import DataFormatError


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes into a temporary file beside the target and renames
    it into place (Lightning's own writer stages the file in the system temp folder, whose
    move onto another file system is a copy that an interruption can cut short)."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of ``path``, loaded on the CPU without unpickling arbitrary objects.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    DataFormatError
        When it is not a readable checkpoint, or holds pickled objects other than tensors and
        plain containers (which ``weights_only`` loading refuses to execute).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()
        detail = next((line for line in first if "GLOBAL" in line or "Unsupported" in line), "")
        raise DataFormatError(
            path,
            "refused to load: the checkpoint holds pickled objects that are not plain data "
            f"(only tensors, numbers, strings, lists and dicts are loaded). {detail}".strip(),
        ) from None
    except Exception as exc:  # noqa: BLE001 - truncated zip, not a torch file, ...
        raise DataFormatError(path, f"not a readable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise DataFormatError(path, "not a Lightning checkpoint (no state_dict)")
    return ckpt


def _differences(name: str, trained: Sequence[Any], here: Sequence[Any]) -> str | None:
    trained, here = list(trained), list(here)
    if trained == here:
        return None
    missing = [x for x in trained if x not in here]
    extra = [x for x in here if x not in trained]
    if not missing and not extra:
        return f"{name} in another order: checkpoint {trained}, data {here}"
    parts = [f"{name} differ"]
    if missing:
        parts.append(f"the checkpoint's {missing} are not in the data")
    if extra:
        parts.append(f"the data's {extra} were not in the checkpoint")
    return "; ".join(parts) + f" (checkpoint: {trained})"


def check_compatible(path: str | Path, hparams: Mapping[str, Any], dm: Any) -> None:
    """Raise ``DataFormatError`` naming ``path`` when the checkpoint's hyperparameters do not
    fit the set-up data module ``dm`` (body parts, class names, feature names or count)."""
    state = hparams.get("pipeline_state") or {}
    problems = [
        _differences("body parts", state.get("bodyparts", dm.bodyparts), dm.bodyparts),
        _differences("classes", hparams.get("class_names", dm.class_names), list(dm.class_names)),
        _differences(
            "features", state.get("feature_names", dm.feature_names), list(dm.feature_names)
        ),
    ]
    n_features = hparams.get("n_features", dm.n_features)
    if n_features != dm.n_features:
        problems.append(f"{n_features} input features in the checkpoint, {dm.n_features} here")
    problems = [p for p in problems if p]
    if problems:
        raise DataFormatError(
            path, "was trained on other data than this run's: " + "; ".join(problems)
        )
