"""Checkpoint files: written atomically, read without executing pickled code, and checked
against the data they are applied to.

* :class:`AtomicCheckpointIO` is the Lightning checkpoint plugin ``run_training`` uses: a run
  killed while saving leaves the previous ``last.ckpt``, never a truncated one.
* :func:`read_checkpoint` loads a checkpoint with ``torch.load(weights_only=True)``: tensors,
  numbers, strings, lists and dicts only. A file that would need to unpickle arbitrary
  objects (code) is refused with a :class:`~dbm_lightning.errors.DataFormatError`; a file
  that is no checkpoint at all (a JSON, a CSV, an empty file, an ``.npz``, a folder) with a
  :class:`NotACheckpointError` that says what it is (:func:`not_a_checkpoint`).
* :func:`model_sha256` fingerprints a model's weights, so that what was derived from one model
  (its microstates) can be checked against the model it is applied to.
* :func:`check_compatible` compares what a checkpoint was trained on (body parts, classes,
  features) with a data module, so resuming or fine-tuning on other data fails with a message
  that names both, not with a tensor-size mismatch deep inside ``load_state_dict``.
"""

from __future__ import annotations

import errno
import hashlib
import pickle
import shutil
import zipfile
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
        try:
            write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))
        except RuntimeError as exc:  # torch's C++ writer reports a full disk this way
            raise OSError(
                errno.EIO, f"could not write the checkpoint ({_why_unwritten(path)})", str(path)
            ) from exc


def _why_unwritten(path: str | Path) -> str:
    """``"no space left on the device"`` when the folder's file system is (nearly) full, else
    the generic ``"an I/O error"``."""
    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return "an I/O error"
    return f"no space left on the device: {free} bytes free" if free < 2**20 else "an I/O error"


class NotACheckpointError(DataFormatError):
    """The file is no checkpoint at all (a JSON, a CSV, an empty file, a folder, ...)."""


_ZIP_MAGIC = b"PK\x03\x04"


def not_a_checkpoint(path: str | Path) -> str | None:
    """What ``path`` is when it surely is no ``torch.save`` file (``"a JSON file"``,
    ``"an empty file"``, ``"a folder"``...), else ``None`` (it may be one: a torch zip
    archive, a cut one, or a legacy pickle). Reads the first bytes only."""
    path = Path(path)
    if path.is_dir():
        return "a folder"
    with path.open("rb") as f:
        head = f.read(512)
    if not head:
        return "an empty file"
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return None  # a cut checkpoint: torch.load says what is wrong
        if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            return None
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy .npz archive"
        return "a zip archive without a checkpoint in it"
    if head[:1] == b"\x80":
        return None  # a pickle: the legacy torch format (weights_only loading decides)
    if b"\x00" in head:
        return "a binary file of another format"
    if head.lstrip()[:1] in (b"{", b"["):
        return "a JSON file"
    return "a text file" if path.suffix.lower() != ".csv" else "a CSV file"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict of ``path``, loaded on the CPU without unpickling arbitrary objects.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    NotACheckpointError
        When it is no checkpoint at all (:func:`not_a_checkpoint`; a torch file without a
        ``state_dict``).
    DataFormatError
        When it is not a readable checkpoint, or holds pickled objects other than tensors and
        plain containers (which ``weights_only`` loading refuses to execute).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    kind = not_a_checkpoint(path)
    if kind is not None:
        raise NotACheckpointError(path, f"not a checkpoint: {kind}")
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
        raise NotACheckpointError(path, "not a Lightning checkpoint (no state_dict)")
    return ckpt


def model_sha256(source: str | Path | Mapping[str, Any] | Any) -> str:
    """SHA-256 (hex) of a model's weights: every entry of its ``state_dict`` in sorted key
    order (name, dtype, shape and bytes of each tensor).

    ``source`` is a checkpoint file, a checkpoint dict (its ``state_dict`` is used), a
    ``state_dict`` or a module. A checkpoint and the module rebuilt from it give the same
    fingerprint; other weights (another run, another epoch) give another one.
    """
    if isinstance(source, str | Path):
        source = read_checkpoint(source)
    if isinstance(source, Mapping) and isinstance(source.get("state_dict"), Mapping):
        state = source["state_dict"]
    elif hasattr(source, "state_dict"):
        state = source.state_dict()
    else:
        state = source
    digest = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        digest.update(str(key).encode() + b"\0")
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            digest.update(f"{t.dtype}{tuple(t.shape)}".encode() + b"\0")
            digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(repr(value).encode())
        digest.update(b"\0")
    return digest.hexdigest()


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
