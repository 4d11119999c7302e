"""The LightningDataModule: sessions -> cleaned, labelled, featurised, split, windowed tensors.

Pipeline of :class:`DBMDataModule.setup` (once, idempotent):

1. ``source.load()`` -> sessions (+ files skipped as corrupted);
2. body parts checked (same set in every session; reordered to the first session's order);
3. :func:`~dbm_lightning.preprocess.clean_session` (likelihood mask, short-gap interpolation;
   :class:`~dbm_lightning.preprocess.GapReport` kept per session);
4. the labeler labels the *cleaned* pose (rules on interpolated, confident points; file and
   embedded labels do not depend on the pose);
5. arena bounds: the configured ones, else the extent of *all* sessions (train, val and test).
   This is not a label leak: the bounds only fix a linear map of pixel coordinates to
   [-1, 1]; no label or statistic of the held-out targets enters them;
6. features (:func:`~dbm_lightning.features.compute_features`);
7. split (:func:`split_sessions`), then a :class:`~dbm_lightning.features.Standardizer`
   fitted on the *training* sessions only and applied to all;
8. invalid frames (any non-finite feature, after standardising) get features 0 and label -1;
   a frame with label -1 is ignored by the loss and the metrics;
9. each split's frames are stored once, sessions one after another in one float32 array
   (written, standardised and served in place); a :class:`WindowDataset` gathers the windows
   of a batch from it (the windows of :func:`make_windows`, never stored as copies).

:func:`prepare_session` applies steps 2, 3, 5 (stored bounds), 6, 7 (stored standardiser)
and 8 to a new session from :meth:`DBMDataModule.pipeline_state`, so prediction sees exactly
the features the model was trained on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from dbm_lightning.augment import (
    AugmentConfig,
    augment_pose,
    standardise_torch,
)
from dbm_lightning.data.pipeline import (
    FIT_CHUNK,
    PreparedSession,
    check_same_bodyparts,
    merge_label_names,
    raw_features,
    read_only_view,
    reorder_bodyparts,
    row_chunks,
    session_fps,
    standardise_inplace,
    write_raw_features,
)
from dbm_lightning.data.samplers import EpochShuffleSampler, process_share
from dbm_lightning.data.sources import DataSource, bodypart_map_of
from dbm_lightning.data.splits import (
    SPLITS,
    SplitConfig,
    check_split,
    no_validation_cause,
    split_sessions,
)
from dbm_lightning.data.windows import (
    LOADER,
    WindowBatch,
    WindowDataset,
    check_window,
    split_layout,
)
from dbm_lightning.features import FeatureConfig, Standardizer, feature_names, window_features
from dbm_lightning.preprocess import (
    ArenaBounds,
    GapReport,
    PreprocessConfig,
    clean_session,
    require_valid_frames,
)
from dbm_lightning.session import DEFAULT_FPS, UNLABELLED, Session

log = logging.getLogger(__name__)

PIPELINE_STATE_VERSION = 1
_AUGMENT_STREAM = 0xA06
"""Third seed word of the augmentation generator (a stream apart from ``EpochSeed``'s)."""


class DBMDataModule(pl.LightningDataModule):
    """Sessions -> cleaned, labelled, featurised, split, standardised, windowed tensors.

    Parameters
    ----------
    source
        :class:`SyntheticSource`, :class:`DLCFolderSource`, :class:`DBMMatSource` or anything
        with ``load(cache_dir) -> LoadResult``.
    labeler
        ``RuleLabeler`` / ``FileLabeler`` / ``EmbeddedLabeler`` (``.label(session)``).
    preprocess, features, split
        Cleaning, feature and split configs (defaults when ``None``).
    arena
        Pixel bounds mapped to [-1, 1]; ``None`` = extent of all sessions (see module doc).
    window, stride
        Window length and step in frames (``stride <= window``; every frame is covered).
    eval_stride
        Step of the validation/test windows. ``None`` (or ``window``): windows tile each
        session and every frame counts once, in the first window holding it. Smaller:
        windows overlap and each frame's prediction is the taper-weighted mean over its
        windows (:mod:`dbm_lightning.models.inference`), so frames at a window's edge are scored
        with context; batches are then ``(x, y, starts)``. Prediction and microstates use
        the same windows (recorded in :meth:`pipeline_state`).
    batch_size, num_workers
        DataLoader settings (``persistent_workers`` only when ``num_workers > 0``).
    fps
        Frame rate for sessions that do not carry one (default 30).
    seed
        Seed of the training loader's shuffling.
    cache_dir
        Parsed-session cache passed to ``source.load`` (``False`` disables it).
    pin_memory
        Passed to the DataLoaders.
    augment
        Training-time pose augmentation (:class:`~dbm_lightning.augment.AugmentConfig`; off
        when ``None``). When enabled, the training dataset also stores the cleaned pixel pose
        of its frames and a training batch is ``(x, y, pose)``; :meth:`on_after_batch_transfer`
        (on the device, only while the trainer trains) augments the pose, recomputes and
        standardises the features and hands the model ``(x, y)`` (labels untouched).
        Validation, test and prediction batches are never augmented.

    Attributes (after :meth:`setup`)
    --------------------------------
    n_features, n_classes, class_names, feature_names, bodyparts, train_class_counts,
    assignment (name -> split), skipped (``SkippedSession`` list), gap_reports (name ->
    ``GapReport``), arena_bounds, standardizer, datasets (split -> :class:`WindowDataset`),
    has_val, has_test.
    """

    def __init__(
        self,
        source: DataSource,
        labeler: Any,
        preprocess: PreprocessConfig | None = None,
        features: FeatureConfig | None = None,
        split: SplitConfig | None = None,
        arena: ArenaBounds | None = None,
        window: int = LOADER.window,
        stride: int = LOADER.stride,
        eval_stride: int | None = LOADER.eval_stride,
        batch_size: int = LOADER.batch_size,
        num_workers: int = LOADER.num_workers,
        fps: float | None = LOADER.fps,
        seed: int = 0,
        cache_dir: str | Path | bool | None = None,
        pin_memory: bool = False,
        augment: AugmentConfig | None = None,
    ) -> None:
        super().__init__()
        check_window(window, stride)
        if eval_stride is not None:
            check_window(window, eval_stride)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.source = source
        self.labeler = labeler
        self.preprocess = preprocess or PreprocessConfig()
        self.features = features or FeatureConfig()
        self.split = split or SplitConfig()
        self.arena = arena
        self.window = int(window)
        self.stride = int(stride)
        self.eval_stride = int(eval_stride) if eval_stride is not None else self.window
        self.batch_size = int(batch_size)
        self.num_workers = int(num_workers)
        self.fps = float(fps) if fps else None
        self.seed = int(seed)
        self.cache_dir = cache_dir
        self.pin_memory = bool(pin_memory)
        self.augment = augment or AugmentConfig()
        for key, on in (
            ("session_zscore", self.features.session_zscore),
            ("units=body_length", self.features.units == "body_length"),
        ):
            if self.augment.enabled and on:
                raise ValueError(
                    f"features.{key} cannot be combined with pose augmentation (augment): an "
                    "augmented window has no session statistics of its own"
                )
        self._augment_fps: float | None = None
        self._augment_generator: tuple[tuple[int, str], torch.Generator] | None = None
        self._standardizer_tensors: dict[tuple[str, torch.dtype], tuple[Any, Any]] = {}
        self._is_setup = False
        self._train_sampler: EpochShuffleSampler | None = None
        self._resume_epoch = 0

    # ------------------------------------------------------------------ setup

    def setup(self, stage: str | None = None) -> None:
        """Load and prepare everything once (later calls, any stage, do nothing)."""
        if self._is_setup:
            return
        result = self.source.load(cache_dir=self.cache_dir)
        raw_sessions = list(result.sessions)
        self.skipped = list(result.skipped)
        if not raw_sessions:
            raise ValueError(f"data source {self.source!r} gave no sessions")

        self.bodyparts = raw_sessions[0].bodyparts
        self.individuals = raw_sessions[0].individuals
        check_same_bodyparts(raw_sessions)
        sessions = [reorder_bodyparts(s, self.bodyparts, self.individuals) for s in raw_sessions]

        self.gap_reports: dict[str, GapReport] = {}
        cleaned: list[Session] = []
        for s in sessions:
            c, report = clean_session(s, self.preprocess)
            require_valid_frames(c, self.preprocess)
            cleaned.append(c)
            self.gap_reports[s.name] = report
        del result, raw_sessions, sessions  # the raw pose and likelihood are no longer needed

        labelled = [self.labeler.label(s) for s in cleaned]
        self.class_names, labels = merge_label_names(
            labelled, getattr(self.labeler, "label_names", None)
        )
        self.n_classes = len(self.class_names)

        self.arena_bounds = self.arena or ArenaBounds.from_data(cleaned)
        del cleaned  # the labelled sessions hold the cleaned pose
        self.feature_names = feature_names(self.bodyparts, self.features, self.individuals)
        self.n_features = len(self.feature_names)

        self.assignment = split_sessions(labelled, self.split)
        check_split(labelled, self.assignment, self.split)

        # Each split's frames are stored once, sessions one after another, in one float32
        # array that the features are written into, standardised in place and served from
        # (no per-session copies, no windows copy: WindowDataset gathers batches from it).
        members = {
            split: [i for i, s in enumerate(labelled) if self.assignment[s.name] == split]
            for split in SPLITS
        }
        stores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split, idx in members.items():
            if not idx:
                continue
            offsets, _, _ = split_layout(
                [labelled[i].n_frames for i in idx], self.window, self.window
            )
            X = np.zeros((int(offsets[-1]), self.n_features), dtype=np.float32)
            for i, off in zip(idx, offsets[:-1], strict=True):
                s = labelled[i]
                write_raw_features(
                    X[off : off + s.n_frames],
                    raw_features(s, self.features, self.arena_bounds, session_fps(s, self.fps)),
                    s,
                )
            stores[split] = (X, offsets)

        # fitted on the valid frames (every feature finite) of the training sessions only:
        # invalid frames are all NaN by now, which the NaN-aware fit skips
        train_views: list[np.ndarray] = []
        if "train" in stores:
            X, offsets = stores["train"]
            for i, off in zip(members["train"], offsets[:-1], strict=True):
                train_views += row_chunks(X[off : off + labelled[i].n_frames], FIT_CHUNK)
        self.standardizer = Standardizer.fit(train_views)
        del train_views

        prepared: dict[int, PreparedSession] = {}
        self.datasets: dict[str, WindowDataset] = {}
        self._n_windows: dict[str, int] = {}
        for split, (X, offsets) in stores.items():
            Y = np.full(X.shape[0], UNLABELLED, dtype=np.int64)
            valid_all = np.zeros(X.shape[0], dtype=bool)
            for i, off in zip(members[split], offsets[:-1], strict=True):
                s = labelled[i]
                rows = slice(int(off), int(off) + s.n_frames)
                valid_all[rows] = standardise_inplace(X[rows], self.standardizer)
                Y[rows] = np.where(valid_all[rows], labels[i], UNLABELLED)
                lab = read_only_view(Y[rows])
                prepared[i] = PreparedSession(
                    name=s.name,
                    split=split,
                    session=s.with_labels(lab, self.class_names),
                    features=read_only_view(X[rows]),
                    labels=lab,
                    valid=read_only_view(valid_all[rows]),
                    raw_labels=labels[i],
                )
            # training windows overlap (stride); evaluation windows either tile each session
            # and count every frame once, or overlap (eval_stride < window) and are averaged
            # per frame by the module: either way val/test metrics are exact per-frame metrics
            train = split == "train"
            averaged = not train and self.eval_stride < self.window
            _, starts, hidden = split_layout(
                [labelled[i].n_frames for i in members[split]],
                self.window,
                self.stride if train else self.eval_stride,
                count_once=not train and not averaged,
            )
            pose = (
                self._training_pose([labelled[i] for i in members[split]], offsets, starts)
                if train and self.augment.enabled
                else {}
            )
            self.datasets[split] = WindowDataset(
                torch.from_numpy(X),
                torch.from_numpy(Y),
                starts,
                self.window,
                hidden,
                return_starts=averaged,
                **pose,
            )
            self._n_windows[split] = len(starts)
        self._prepared: dict[str, PreparedSession] = {
            prepared[i].name: prepared[i] for i in sorted(prepared)
        }
        del stores, prepared

        train_labels = self.datasets["train"].labels.numpy()  # the fit above needs a train split
        self.train_class_counts = np.bincount(
            train_labels[train_labels >= 0], minlength=self.n_classes
        ).astype(np.int64)
        if "val" not in self.datasets:
            log.warning(
                "no validation sessions (%s): no best checkpoint or early stopping; the last "
                "epoch is the model",
                no_validation_cause(self.split),
            )
        self._is_setup = True

    def _require_setup(self) -> None:
        if not self._is_setup:
            raise RuntimeError("call DBMDataModule.setup() first")

    @property
    def has_val(self) -> bool:
        """Whether the split has validation sessions."""
        self._require_setup()
        return "val" in self.datasets

    @property
    def has_test(self) -> bool:
        """Whether the split has test sessions."""
        self._require_setup()
        return "test" in self.datasets

    # ------------------------------------------------------------- dataloaders

    def _loader(self, split: str, shuffle: bool) -> DataLoader | list:
        self._require_setup()
        ds = self.datasets.get(split)
        if ds is None:
            return []
        trainer = self.trainer
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        sampler: Sampler[int] | list[int] | None = None
        if shuffle:
            sampler = EpochShuffleSampler(
                len(ds), self.seed, epoch=self._resume_epoch, replicas=replicas, rank=rank
            )
            self._train_sampler = sampler
        elif replicas > 1:
            sampler = process_share(len(ds), replicas, rank)
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=WindowDataset.collate,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=self.pin_memory,
        )

    def train_dataloader(self) -> DataLoader:
        """Training windows, shuffled every epoch by :class:`EpochShuffleSampler`."""
        loader = self._loader("train", shuffle=True)
        if not isinstance(loader, DataLoader):
            raise RuntimeError("the split left no training sessions")
        return loader

    def val_dataloader(self) -> DataLoader | list:
        """Validation windows in order (an empty list when there is no val split)."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader | list:
        """Test windows in order (an empty list when there is no test split)."""
        return self._loader("test", shuffle=False)

    # ------------------------------------------------- training augmentation

    def _training_pose(
        self, sessions: Sequence[Session], offsets: np.ndarray, starts: np.ndarray
    ) -> dict[str, np.ndarray | None]:
        """``pose`` and ``window_fps`` of the training :class:`WindowDataset` (augmentation):
        the cleaned pixel pose of its frames stored as :func:`split_layout` lays them out
        (``offsets``), and each window's frame rate when the sessions' rates differ."""
        pose = np.full((int(offsets[-1]), len(self.bodyparts), 2), np.nan, dtype=np.float32)
        for s, off in zip(sessions, offsets[:-1], strict=True):
            pose[off : off + s.n_frames] = s.pose
        # a frame with any missing point is invalid: all its points NaN (as padding frames)
        pose[~np.isfinite(pose).all(axis=(1, 2))] = np.nan
        rates = np.array([session_fps(s, self.fps) for s in sessions], dtype=np.float32)
        window_fps = None
        self._augment_fps = float(rates[0])
        if not np.all(rates == rates[0]):  # one frame rate per window, in the batch
            session_of = np.searchsorted(offsets, starts, side="right") - 1
            window_fps = rates[session_of]
        return {"pose": pose, "window_fps": window_fps}

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Lightning hook (on the device): augment training batches ``(x, y, pose)`` into
        ``(x, y)`` while the trainer trains and augmentation is enabled; any other batch is
        returned as it is.

        The random numbers come from a generator of the batch's device that is seeded from
        ``(seed, epoch)`` at the first training batch of each epoch, so the augmentation of an
        epoch depends only on the seed and the epoch: reproducible, and a run resumed from an
        epoch-end checkpoint continues exactly (Lightning transfers the first batch of an
        epoch before the ``on_train_batch_start`` reseeding of ``training.EpochSeed``, so
        torch's default generator would not give that).
        """
        trainer = self.trainer
        if not self.augment.enabled or trainer is None or not trainer.training:
            return batch
        if not isinstance(batch, WindowBatch) or batch.pose is None:
            return batch
        generator = self._epoch_generator(int(trainer.current_epoch), batch.pose.device)
        return self.augment_batch(batch, generator=generator)

    def _epoch_generator(self, epoch: int, device: torch.device) -> torch.Generator:
        key = (epoch, str(device))
        if self._augment_generator is None or self._augment_generator[0] != key:
            state = np.random.SeedSequence([self.seed, epoch, _AUGMENT_STREAM]).generate_state(1)
            generator = torch.Generator(device=device)
            generator.manual_seed(int(state[0]))
            self._augment_generator = (key, generator)
        return self._augment_generator[1]

    def augment_batch(
        self, batch: WindowBatch, generator: torch.Generator | None = None
    ) -> WindowBatch:
        """``(x, y, pose[, fps])`` -> ``(x', y)``: the pose augmented
        (:func:`~dbm_lightning.augment.augment_pose`, random numbers from ``generator``, default
        torch's), features recomputed (:func:`~dbm_lightning.features.window_features`)
        and standardised with the fitted standardiser, invalid frames 0; ``y`` as given."""
        self._require_setup()
        x, y, pose = batch.x, batch.y, batch.pose
        fps = batch.fps if batch.fps is not None else self._augment_fps or DEFAULT_FPS
        # geometry in float32 at least, whatever precision the batch was converted to
        work = torch.promote_types(pose.dtype, torch.float32)
        moved = augment_pose(pose.to(work), self.augment, self.arena_bounds, generator)
        raw = window_features(
            moved,
            self.features,
            self.arena_bounds,
            fps,
            self.bodyparts,
            animals=max(1, len(self.individuals)),
        )
        mean, std = self._standardizer_on(x.device, work)
        z, _ = standardise_torch(raw, mean, std)
        return WindowBatch(z.to(x.dtype), y)

    def _standardizer_on(self, device: torch.device, dtype: torch.dtype) -> tuple[Any, Any]:
        key = (str(device), dtype)
        if key not in self._standardizer_tensors:
            self._standardizer_tensors[key] = (
                torch.as_tensor(self.standardizer.mean, dtype=dtype, device=device),
                torch.as_tensor(self.standardizer.std, dtype=dtype, device=device),
            )
        return self._standardizer_tensors[key]

    # ---------------------------------------------------------- state & views

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints: the training epoch whose order the sampler used last."""
        sampler = self._train_sampler
        return {"train_epoch": sampler.epoch if sampler is not None else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume the shuffling after the checkpoint's epoch (Lightning draws the first batch
        of a resumed run before it announces the epoch to the sampler)."""
        done = state_dict.get("train_epoch")
        self._resume_epoch = 0 if done is None else int(done) + 1
        if self._train_sampler is not None:
            self._train_sampler.set_epoch(self._resume_epoch)

    def pipeline_state(self) -> dict[str, Any]:
        """JSON-able state that :func:`prepare_session` needs to reproduce the features."""
        self._require_setup()
        return {
            "version": PIPELINE_STATE_VERSION,
            "preprocess": asdict(self.preprocess),
            "features": self.features.to_dict(),
            "arena": self.arena_bounds.to_dict(),
            "standardizer": self.standardizer.to_dict(),
            "bodyparts": list(self.bodyparts),
            "individuals": list(self.individuals),
            "bodypart_map": bodypart_map_of(self.source),
            "class_names": list(self.class_names),
            "feature_names": list(self.feature_names),
            "fps": self.fps if self.fps is not None else DEFAULT_FPS,
            "window": self.window,
            "stride": self.stride,
            "eval_stride": self.eval_stride,
        }

    def predict_sessions(
        self, names: Sequence[str] | None = None, split: str | None = None
    ) -> list[PreparedSession]:
        """Full-length prepared sessions (for microstates and figures).

        ``names`` picks sessions by name (unknown names raise ``KeyError``); else ``split``
        (``"train"``/``"val"``/``"test"``) picks a split; else all sessions, in load order.
        """
        self._require_setup()
        if names is not None:
            unknown = [n for n in names if n not in self._prepared]
            if unknown:
                raise KeyError(f"unknown session(s) {unknown}; known: {list(self._prepared)}")
            return [self._prepared[n] for n in names]
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
        return [p for p in self._prepared.values() if split is None or p.split == split]

    def session_features(self, split: str | None = None) -> list[PreparedSession]:
        """The prepared sessions of ``split`` (all when ``None``)."""
        return self.predict_sessions(split=split)

    def summary(self) -> dict[str, Any]:
        """JSON-able description of the data: sessions/frames/windows per split, skipped
        files (path, reason), per-session gap fractions, classes and their training counts."""
        self._require_setup()
        per_split: dict[str, dict[str, int]] = {}
        for split in SPLITS:
            members = [p for p in self._prepared.values() if p.split == split]
            per_split[split] = {
                "sessions": len(members),
                "frames": int(sum(p.labels.shape[0] for p in members)),
                "valid_frames": int(sum(p.valid.sum() for p in members)),
                "labelled_frames": int(sum((p.labels >= 0).sum() for p in members)),
                "windows": self._n_windows.get(split, 0),
            }
        return {
            "source": repr(self.source),
            "sessions": {k: v["sessions"] for k, v in per_split.items()},
            "frames": {k: v["frames"] for k, v in per_split.items()},
            "splits": per_split,
            "split": self.split.to_dict(),
            "assignment": dict(self.assignment),
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
            "gaps": [
                {**self.gap_reports[p.name].to_dict(), "split": p.split}
                for p in self._prepared.values()
            ],
            "class_names": list(self.class_names),
            "train_class_counts": [int(c) for c in self.train_class_counts],
            "n_features": self.n_features,
            "bodyparts": list(self.bodyparts),
            "arena": self.arena_bounds.to_dict(),
            "arena_from_data": self.arena is None,
            "window": self.window,
            "stride": self.stride,
            "eval_stride": self.eval_stride,
        }
