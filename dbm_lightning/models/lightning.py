"""``DBMClassifier``: the LightningModule that trains a DBM network frame by frame.

Batches are ``(x (B, W, F) float32, y (B, W) int64)`` with ``y == -1`` for frames to ignore
(missing pose, unlabelled, window padding). Loss: cross-entropy over valid frames, optionally
class-weighted (:func:`compute_class_weights`). Metrics per stage (``train``, ``val``, ``test``),
on valid frames only, logged once per epoch. A step only adds its frames to the stage's
confusion counts (:class:`ConfusionCounts`, one ``bincount``) and its loss to a running
frame-weighted sum, with no host sync; at the epoch's end every metric is computed from the
counts, with the same values as torchmetrics' ``MulticlassAccuracy(average="micro")``,
``MulticlassF1Score`` (macro and per class) and ``MulticlassConfusionMatrix``
(:func:`metrics_from_confusion`), and the loss is the valid-frame-weighted mean of the steps'
losses, as ``self.log(..., on_epoch=True, batch_size=n_valid)`` would give:

- ``<stage>/loss``, ``<stage>/acc`` (micro: fraction of frames right, the paper's number),
  ``<stage>/balanced_acc`` (mean recall over the classes present in the targets, as
  ``sklearn.metrics.balanced_accuracy_score``), ``<stage>/macro_f1``, ``<stage>/f1/<class>``;
- ``val/acc_best`` (best ``val/acc`` so far); every validation epoch's headline metrics are
  kept in :attr:`DBMClassifier.val_history` (the best epoch's are read from it);
- the row-normalised confusion matrix (rows = true class) as an image
  ``<stage>/confusion_matrix`` on every TensorBoard logger: for ``val`` at each epoch that is
  the best so far by the best checkpoint's monitor, and at the last epoch; for ``test`` once.

The HPARAMS tab is written once the run has its results (:mod:`dbm_lightning.hparams_tab`),
not by the module: build the logger with ``default_hp_metric=False``, otherwise Lightning writes
a meaningless ``hp_metric`` of -1.

Throughput: ``train_frames_seen`` (valid frames of all training steps), ``train_seconds`` (wall
time inside training steps: forward, backward, optimiser; excludes validation and data loading)
and ``train_frames_per_s`` can be read after ``trainer.fit``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torchmetrics import MaxMetric

from dbm_lightning.checkpoints import read_checkpoint
from dbm_lightning.data.windows import WindowBatch
from dbm_lightning.ddp import all_reduce
from dbm_lightning.errors import DataFormatError
from dbm_lightning.models.confusion_images import ConfusionImages
from dbm_lightning.models.factory import build_model
from dbm_lightning.models.inference import accumulate_windows, predict_overlapping, window_weights
from dbm_lightning.models.losses import (
    IGNORE_INDEX,
    LossConfig,
    compute_class_weights,
    masked_cross_entropy,
)
from dbm_lightning.models.metrics import (
    ConfusionCounts,
    named_frame_metrics,
    normalise_rows,
)
from dbm_lightning.ranges import at_least, check_ranges

__all__ = ["DBMClassifier", "OptimConfig"]

STAGES = ("train", "val", "test")
RUN_STATE_KEY = "dbm_run_state"
"""Checkpoint entry with the running best val/acc and throughput counters."""


# --------------------------------------------------------------------------------------------
# the LightningModule
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimConfig:
    """The ``optim`` config group: Adam's learning rate and its coupled L2 penalty (the
    original's ``L2Regularization``)."""

    lr: float = field(default=3e-3, metadata=at_least(0, integer=False, above=True))
    weight_decay: float = field(default=1e-4, metadata=at_least(0, integer=False))

    def __post_init__(self) -> None:
        check_ranges(self)


OPTIM, LOSS = OptimConfig(), LossConfig()


class DBMClassifier(pl.LightningModule):
    """Frame-by-frame behaviour classifier around a network from :func:`build_model`.

    Parameters
    ----------
    net_name, net_kwargs
        Registered network name (``"dbm_baseline"``, ``"dbm_modified"``) and its keyword
        arguments (``fc_width``, ``lstm_width``, ...).
    n_features, n_classes, class_names
        Input width, number of classes and their names (default ``class_0..``).
    lr, weight_decay
        Adam learning rate and L2 penalty (MATLAB's ``L2Regularization``, coupled L2).
    class_weighting, class_counts, effective_beta
        Loss weighting ``"none" | "inverse" | "effective"`` from the training frame counts per
        class (see :func:`compute_class_weights`).
    pipeline_state
        JSON-able dict of the data pipeline (``DBMDataModule.pipeline_state()``), stored in the
        hyperparameters so a checkpoint alone can prepare new sessions.
    run_config
        Optional JSON-able copy of the whole run configuration (provenance; its scalar entries
        are also shown in TensorBoard's HPARAMS tab).

    All arguments are saved with ``save_hyperparameters()``, so
    ``DBMClassifier.load_from_checkpoint(path)`` needs nothing else. The logger, if TensorBoard,
    should be built with ``default_hp_metric=False`` (see the module docstring).
    """

    def __init__(
        self,
        net_name: str = "dbm_baseline",
        net_kwargs: Mapping[str, Any] | None = None,
        n_features: int = 51,
        n_classes: int = 2,
        class_names: Sequence[str] | None = None,
        lr: float = OPTIM.lr,
        weight_decay: float = OPTIM.weight_decay,
        class_weighting: str = LOSS.class_weighting,
        class_counts: Sequence[int] | None = None,
        effective_beta: float = LOSS.effective_beta,
        pipeline_state: Mapping[str, Any] | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # store plain, JSON-able values (numpy arrays/tuples -> lists)
        names = (
            [str(n) for n in class_names]
            if class_names is not None
            else [f"class_{i}" for i in range(n_classes)]
        )
        if len(names) != n_classes:
            raise ValueError(f"{len(names)} class_names for n_classes={n_classes}")
        self.hparams["class_names"] = names
        self.hparams["net_kwargs"] = dict(net_kwargs or {})
        if class_counts is not None:
            self.hparams["class_counts"] = [int(c) for c in np.asarray(class_counts).tolist()]

        self.class_names: list[str] = names
        self.net = build_model(net_name, n_features, n_classes, **self.hparams["net_kwargs"])
        weights = compute_class_weights(
            self.hparams["class_counts"], class_weighting, effective_beta, n_classes
        )
        self.register_buffer("class_weights", weights, persistent=False)
        self._use_weights = class_weighting != "none"

        self.train_metrics = ConfusionCounts(n_classes)
        self.val_metrics = ConfusionCounts(n_classes)
        self.test_metrics = ConfusionCounts(n_classes)
        self.val_acc_best = MaxMetric()
        # per stage: (sum of loss x valid frames, sum of valid frames), as tensors (no sync)
        self._loss_sums: dict[str, tuple[torch.Tensor, torch.Tensor] | None] = dict.fromkeys(STAGES)
        # overlapping evaluation windows of the epoch: (starts, probabilities, targets) per batch
        self._eval_windows: dict[str, list[tuple[torch.Tensor, ...]]] = {"val": [], "test": []}
        self._best_val_acc = float("nan")
        self._epoch_loss: dict[str, float] = {}  # this epoch's loss per stage, as logged
        self._image_best: float | None = None  # monitored value of the last confusion image
        self._image_epoch: int | None = None  # epoch of the last validation confusion image
        self._images = ConfusionImages()  # drawn in a thread beside the training
        self.val_history: list[dict[str, float]] = []
        """One entry per validation epoch: ``epoch``, ``loss`` and every metric of the epoch
        (``acc``, ``macro_f1``, ``balanced_acc``, ``f1/<class>``), as ``val/*`` logs them."""
        self.confusion_matrices: dict[str, np.ndarray] = {}
        """Last epoch's row-normalised confusion matrix per stage (rows = true class)."""

        self._train_frames = 0
        self._train_frames_pending: torch.Tensor | None = None  # this epoch's, not yet read
        self.train_seconds = 0.0
        self._batch_started: float | None = None

    @classmethod
    def from_checkpoint_file(
        cls, path: str | Path, checkpoint: Mapping[str, Any] | None = None
    ) -> DBMClassifier:
        """The module of a checkpoint file, on the CPU, in eval mode.

        The file is read with :func:`~dbm_lightning.checkpoints.read_checkpoint` (no pickled
        code is executed; ``checkpoint``: the dict already read from ``path``) and the module
        rebuilt from its hyperparameters.

        Raises
        ------
        FileNotFoundError
            When the file does not exist.
        DataFormatError
            When it is not a DBM checkpoint with a pipeline state, or holds pickled objects.
        """
        path = Path(path)
        ckpt = read_checkpoint(path) if checkpoint is None else checkpoint
        try:
            module = cls(**ckpt["hyper_parameters"])
            module.load_state_dict(ckpt["state_dict"])
            module.on_load_checkpoint(ckpt)
        except Exception as exc:  # noqa: BLE001 - any rebuild failure is a bad checkpoint
            raise DataFormatError(path, f"not a readable DBM checkpoint ({exc})") from None
        if not module.hparams.get("pipeline_state"):
            raise DataFormatError(
                path, "checkpoint has no pipeline_state (train it with dbm-train / run_training)"
            )
        module.eval()
        return module

    # ---------------------------------------------------------------- network
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame logits ``(B, W, C)`` of ``x (B, W, F)``."""
        return self.net(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame LSTM output ``(B, W, H)`` (see ``networks.embed``)."""
        return self.net.embed(x)

    @property
    def embedding_dim(self) -> int:
        return int(self.net.embedding_dim)

    @property
    def train_frames_seen(self) -> int:
        """Valid (labelled) frames of all training steps so far."""
        pending = self._train_frames_pending
        return self._train_frames + (int(pending) if pending is not None else 0)

    @train_frames_seen.setter
    def train_frames_seen(self, value: int) -> None:
        self._train_frames = int(value)
        self._train_frames_pending = None

    @property
    def train_frames_per_s(self) -> float:
        """Valid training frames per second of training-step wall time (0 before training)."""
        return self.train_frames_seen / self.train_seconds if self.train_seconds > 0 else 0.0

    def best_val_acc(self) -> float:
        """Best epoch ``val/acc`` seen so far (NaN before any validation epoch)."""
        return self._best_val_acc

    def val_epoch(self, epoch: int) -> dict[str, float] | None:
        """The validation metrics of ``epoch`` (0-based), ``None`` when it was not validated
        here (a run resumed from a checkpoint that kept no history)."""
        return next((h for h in self.val_history if h["epoch"] == epoch), None)

    def _metrics(self, stage: str) -> ConfusionCounts:
        return {"train": self.train_metrics, "val": self.val_metrics, "test": self.test_metrics}[
            stage
        ]

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        batch = WindowBatch.of(batch)
        x, y = batch.x, batch.y
        logits = self(x)
        loss = masked_cross_entropy(logits, y, self.class_weights if self._use_weights else None)
        n_valid = (y >= 0).sum()
        if stage != "train" and batch.starts is not None:
            # overlapping windows (data.eval_stride < window): scored per frame at epoch end
            probs = torch.softmax(logits.detach().float(), dim=-1)
            self._eval_windows[stage].append((batch.starts, probs, y))
        else:
            self._metrics(stage).update(logits.detach(), y)
        self._add_loss(stage, loss.detach(), n_valid)
        if stage == "train":
            pending = self._train_frames_pending
            self._train_frames_pending = n_valid if pending is None else pending + n_valid
        return loss

    def _add_loss(self, stage: str, loss: torch.Tensor, n_valid: torch.Tensor) -> None:
        """Add a step's loss weighted by its valid frames (at least 1), the arithmetic of
        Lightning's ``self.log(..., on_epoch=True, batch_size=n_valid)``."""
        if loss.dtype not in (torch.float32, torch.float64):
            loss = loss.float()
        weight = n_valid.clamp_min(1)
        sums = self._loss_sums[stage]
        if sums is None:
            sums = (torch.zeros((), device=loss.device), torch.zeros_like(weight))
        self._loss_sums[stage] = (sums[0] + loss * weight, sums[1] + weight)

    def _log_loss(self, stage: str) -> None:
        sums = self._loss_sums[stage]
        self._loss_sums[stage] = None
        if self._processes > 1:  # every process's frames: the sums of all of them
            local = torch.zeros(2, dtype=torch.float64, device=self.device)
            if sums is not None:
                local = torch.stack([sums[0].double(), sums[1].double()])
            total = all_reduce(local)
            sums = (total[0].float(), total[1]) if total[1] > 0 else None
        self._epoch_loss[stage] = math.nan
        if sums is not None:
            loss = sums[0] / sums[1]
            self._epoch_loss[stage] = float(loss)
            self.log(f"{stage}/loss", loss, prog_bar=stage != "test")

    @property
    def _processes(self) -> int:
        """How many processes train this model together (DDP), 1 without a trainer."""
        trainer = self._trainer
        return int(trainer.world_size) if trainer is not None else 1

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """``{"probs": (B, W, C), "embedding": (B, W, H)}`` of a batch ``x`` or ``(x, y)``."""
        x = WindowBatch.of(batch).x if isinstance(batch, list | tuple) else batch
        probs, h = self._run_windows(x)
        return {"probs": probs, "embedding": h}

    def inference_windows(self) -> tuple[int, int] | None:
        """``(window, stride)`` of the overlapping windows :meth:`predict_session` uses, or
        ``None`` for one pass over the whole session.

        From the data pipeline the model was trained with: a stateful network (the
        unidirectional-LSTM DBM nets) with tiled evaluation windows runs each session as one
        sequence, as the original DBM does; otherwise the session is cut into training-length
        windows every ``eval_stride`` frames and averaged per frame, exactly as the
        validation/test metrics were computed. Without a recorded pipeline (a module built by
        hand), the whole session is one sequence.
        """
        state = self.hparams.get("pipeline_state") or {}
        window = state.get("window")
        stride = state.get("eval_stride") or window
        if window is None or (getattr(self.net, "stateful", False) and stride >= window):
            return None
        return int(window), int(stride)

    @torch.no_grad()
    def predict_session(
        self,
        features: np.ndarray,
        chunk: int | None = 8192,
        window: int | None = None,
        stride: int | None = None,
        batch_size: int = 64,
        valid: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities ``(T, C)`` and embedding ``(T, H)`` of a whole session.

        ``valid`` is accepted for the interface every trained model shares (the network sees
        invalid frames as zeros, as in training, so it does not need the mask).

        With ``window``/``stride`` given, or when :meth:`inference_windows` says so, the
        session is cut into overlapping windows and every frame gets the taper-weighted mean
        of its windows' probabilities and embeddings
        (:func:`~dbm_lightning.models.inference.predict_overlapping`; ``batch_size`` windows at a
        time). Otherwise ``features (T, F)`` is run as *one* sequence in eval mode: for a
        stateful network in chunks of ``chunk`` frames (``None`` = all at once) that carry the
        LSTM state across, which gives the same result as one pass with bounded memory.
        Non-finite features are set to 0 (the data pipeline's value for invalid frames). The
        module's train/eval mode is restored.
        """
        x = np.asarray(features, dtype=np.float32)
        n_features = self.hparams["n_features"]
        if x.ndim != 2 or x.shape[1] != n_features:
            raise ValueError(f"features must be (T, {n_features}), got shape {x.shape}")
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        t = x.shape[0]
        if t == 0:
            return (
                np.zeros((0, self.hparams["n_classes"]), np.float32),
                np.zeros((0, self.embedding_dim), np.float32),
            )
        plan = (window, stride or window) if window is not None else self.inference_windows()
        was_training = self.training
        self.eval()
        try:
            if plan is not None:
                return predict_overlapping(
                    self._run_windows,
                    x,
                    plan[0],
                    plan[1],
                    batch_size=batch_size,
                    device=self.device,
                )
            # the LSTM state carries a sequence across chunks; other encoders need it whole
            stateful = getattr(self.net, "stateful", False)
            step = t if chunk is None or not stateful else max(int(chunk), 1)
            state = None
            probs, embs = [], []
            for start in range(0, t, step):
                xb = torch.from_numpy(x[start : start + step]).to(self.device)[None]
                h, state = self.net.encode(xb, state)
                probs.append(torch.softmax(self.net.head(h), dim=-1)[0].float().cpu())
                embs.append(h[0].float().cpu())
        finally:
            self.train(was_training)
        return torch.cat(probs).numpy(), torch.cat(embs).numpy()

    def _run_windows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Probabilities and embedding of a batch of windows (for :meth:`predict_session`)."""
        h, _ = self.net.encode(x)
        return torch.softmax(self.net.head(h), dim=-1), h

    # ---------------------------------------------------------------- epoch ends
    def _score_overlapping(self, stage: str) -> None:
        """Average the epoch's overlapping windows per frame (taper-weighted class
        probabilities, :mod:`dbm_lightning.models.inference`) and count every frame once."""
        windows = self._eval_windows.get(stage) or []
        self._eval_windows[stage] = []
        if self._processes > 1:
            self._score_overlapping_shared(stage, windows)
            return
        if not windows:
            return
        starts = torch.cat([w[0] for w in windows]).to(self.device)
        probs = torch.cat([w[1] for w in windows])
        targets = torch.cat([w[2] for w in windows])
        n, width, c = probs.shape
        n_frames = int(starts.max()) + width
        sums = torch.zeros(n_frames, c, dtype=torch.float32, device=probs.device)
        weight_sums = torch.zeros(n_frames, dtype=torch.float32, device=probs.device)
        accumulate_windows(probs, starts, window_weights(width), sums, weight_sums)
        labels = torch.full((n_frames,), IGNORE_INDEX, dtype=torch.long, device=probs.device)
        frames = (starts[:, None] + torch.arange(width, device=starts.device)).reshape(-1)
        labels[frames] = targets.reshape(-1)  # every window holding a frame has its label
        self._metrics(stage).update(sums, labels)

    def _score_overlapping_shared(
        self, stage: str, windows: list[tuple[torch.Tensor, ...]]
    ) -> None:
        """:meth:`_score_overlapping` with the windows spread over DDP processes: the per-frame
        sums of every process added up, then each process counts every ``world_size``-th frame,
        so the counts summed over processes hold every frame once, as in one process."""
        device = self.device
        local = [0, 0, 0]
        if windows:
            width, c = windows[0][1].shape[1:]
            local = [int(max(int(w[0].max()) for w in windows)) + width, width, c]
        n_frames, width, c = all_reduce(torch.tensor(local, device=device), "max").tolist()
        if n_frames == 0:
            return
        sums = torch.zeros(n_frames, c, dtype=torch.float32, device=device)
        weight_sums = torch.zeros(n_frames, dtype=torch.float32, device=device)
        labels = torch.full((n_frames,), IGNORE_INDEX, dtype=torch.long, device=device)
        if windows:
            starts = torch.cat([w[0] for w in windows]).to(device)
            accumulate_windows(
                torch.cat([w[1] for w in windows]), starts, window_weights(width), sums, weight_sums
            )
            frames = (starts[:, None] + torch.arange(width, device=device)).reshape(-1)
            labels[frames] = torch.cat([w[2] for w in windows]).reshape(-1)
        sums, labels = all_reduce(sums), all_reduce(labels, "max")
        mine = torch.arange(n_frames, device=device) % self._processes == self.global_rank
        self._metrics(stage).update(sums[mine], labels[mine])

    def _epoch_end(self, stage: str) -> dict[str, float]:
        self._log_loss(stage)
        if stage != "train":
            self._score_overlapping(stage)
        metrics = self._metrics(stage)
        if metrics.update_count == 0 and self._processes == 1:  # with DDP: another may have
            return {}
        confusion = metrics.compute().clone()
        metrics.reset()
        if int(confusion.sum()) == 0:
            return {}
        out = named_frame_metrics(confusion, self.class_names)
        for key, value in out.items():
            self.log(f"{stage}/{key}", value, prog_bar=key == "acc" and stage != "test")
        cm = confusion.detach().cpu().numpy()
        self.confusion_matrices[stage] = normalise_rows(cm)
        if stage == "test" and self.global_rank == 0:
            self._log_confusion_figure(stage, cm)
        return out

    def _improves_monitor(self, out: Mapping[str, float]) -> bool:
        """Whether this validation epoch is the best so far by the metric the best checkpoint
        monitors (``val/acc`` without a checkpoint callback): the epoch whose model is kept."""
        callback = self.trainer.checkpoint_callback
        monitor = getattr(callback, "monitor", None) or "val/acc"
        values = {f"val/{k}": v for k, v in out.items()} | {"val/loss": self._epoch_loss["val"]}
        value = values.get(monitor)
        if value is None or not math.isfinite(value):
            return False
        best = self._image_best
        better = best is None or (
            value < best if getattr(callback, "mode", "max") == "min" else value > best
        )
        if better:
            self._image_best = value
        return better

    def _log_confusion_figure(
        self, stage: str, confusion: np.ndarray, epoch: int | None = None
    ) -> None:
        epoch = self.current_epoch if epoch is None else epoch
        self._images.draw(
            [lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)],
            f"{stage}/confusion_matrix",
            confusion,
            self.class_names,
            f"{stage} confusion (rows = true), epoch {epoch}",
            epoch,
        )

    def teardown(self, stage: str) -> None:
        """Wait for the confusion images still being drawn (before the loggers close)."""
        self._images.wait()

    def on_train_epoch_end(self) -> None:
        pending = self._train_frames_pending
        if pending is not None and self._processes > 1:
            pending = all_reduce(pending)  # every process's frames
        self._train_frames += int(pending) if pending is not None else 0
        self._train_frames_pending = None
        self._epoch_end("train")

    def on_validation_epoch_end(self) -> None:
        out = self._epoch_end("val")
        if not out or self.trainer.sanity_checking:
            return
        self.val_acc_best.update(torch.tensor(out["acc"]))
        best = float(self.val_acc_best.compute())
        self._best_val_acc = best
        self.log("val/acc_best", best, prog_bar=True)
        entry = {
            "epoch": int(self.current_epoch),
            **{k: float(v) for k, v in out.items()},
            "loss": self._epoch_loss.get("val", math.nan),
        }
        self.val_history = [h for h in self.val_history if h["epoch"] != entry["epoch"]]
        self.val_history.append(entry)
        if self._improves_monitor(out) and self.global_rank == 0:
            self._log_confusion_figure("val", self.confusion_matrices["val"])
            self._image_epoch = entry["epoch"]

    def on_train_end(self) -> None:
        """The last validated epoch's confusion image, when it was not a best epoch (drawing one
        costs about 0.3 s: only the best epochs' and the last are drawn)."""
        last = self.val_history[-1]["epoch"] if self.val_history else None
        if last is not None and last != self._image_epoch and "val" in self.confusion_matrices:
            if self.global_rank == 0:
                self._log_confusion_figure("val", self.confusion_matrices["val"], epoch=last)
            self._image_epoch = last

    def on_test_epoch_end(self) -> None:
        self._epoch_end("test")

    # ---------------------------------------------------------------- hooks
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the running best val/acc and the throughput counters across a resume."""
        checkpoint[RUN_STATE_KEY] = {
            "best_val_acc": self._best_val_acc,
            "val_history": list(self.val_history),
            "train_frames_seen": int(self.train_frames_seen),
            "train_seconds": float(self.train_seconds),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(RUN_STATE_KEY) or {}
        self.train_frames_seen = int(state.get("train_frames_seen", 0))
        self.train_seconds = float(state.get("train_seconds", 0.0))
        best = float(state.get("best_val_acc", float("nan")))
        self._best_val_acc = best
        self.val_history = list(state.get("val_history", []))
        self.val_acc_best.reset()
        if best == best:  # not NaN
            self.val_acc_best.update(torch.tensor(best))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._batch_started = time.perf_counter()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._batch_started is None:
            return
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.train_seconds += time.perf_counter() - self._batch_started
        self._batch_started = None

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )
