"""Per-frame (pseudo-)labels: rules on zones and speed, label files, or labels the reader gave.

A labeler has ``.label(session) -> Session`` (a copy carrying ``labels`` and ``label_names``)
and ``.label_names`` (the fixed class order, or ``None`` when it comes from the data).
:func:`build_labeler` turns a plain dict such as ``conf/labels/operant_box.yaml`` into one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.path import Path as MplPath

from dbm_lightning.errors import DataFormatError
from dbm_lightning.ranges import at_least, check_ranges
from dbm_lightning.session import DEFAULT_FPS, UNLABELLED, Session

__all__ = [
    "CircleZone",
    "EmbeddedLabeler",
    "FileLabeler",
    "PolygonZone",
    "RectZone",
    "RuleLabeler",
    "build_labeler",
    "moving_speed",
    "zone_from_config",
]


def _as_xy(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"expected (T, 2) coordinates, got shape {xy.shape}")
    return xy


@dataclass(frozen=True)
class RectZone:
    """Axis-aligned rectangle (pixels, borders included)."""

    name: str
    x_min: float
    x_max: float
    y_min: float
    y_max: float

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(T,)`` bool, False for NaN points."""
        xy = _as_xy(xy)
        x, y = xy[:, 0], xy[:, 1]
        return (x >= self.x_min) & (x <= self.x_max) & (y >= self.y_min) & (y <= self.y_max)


@dataclass(frozen=True)
class CircleZone:
    """Disc of radius ``r`` around ``(cx, cy)`` (pixels, border included)."""

    name: str
    cx: float
    cy: float
    r: float

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(T,)`` bool, False for NaN points."""
        xy = _as_xy(xy)
        return (xy[:, 0] - self.cx) ** 2 + (xy[:, 1] - self.cy) ** 2 <= self.r**2


@dataclass(frozen=True)
class PolygonZone:
    """Simple polygon given by its ``vertices`` ``[(x, y), ...]`` (pixels)."""

    name: str
    vertices: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        verts = tuple((float(x), float(y)) for x, y in self.vertices)
        if len(verts) < 3:
            raise ValueError(f"zone {self.name!r}: a polygon needs at least 3 vertices")
        object.__setattr__(self, "vertices", verts)

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """``(T,)`` bool, False for NaN points."""
        xy = _as_xy(xy)
        finite = np.isfinite(xy).all(axis=1)
        out = np.zeros(len(xy), dtype=bool)
        if finite.any():
            out[finite] = MplPath(np.asarray(self.vertices)).contains_points(xy[finite])
        return out


Zone = RectZone | CircleZone | PolygonZone

ZONE_KEYS = {
    "rect": (RectZone, ("x_min", "x_max", "y_min", "y_max")),
    "circle": (CircleZone, ("cx", "cy", "r")),
    "polygon": (PolygonZone, ("vertices",)),
}


def _plain(obj: Any) -> Any:
    """Nested mappings/sequences (e.g. OmegaConf containers) as plain dicts and lists."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, Sequence) and not isinstance(obj, str | bytes):
        return [_plain(v) for v in obj]
    return obj


def zone_from_config(cfg: Mapping) -> Zone:
    """A zone from ``{name, shape: circle|rect|polygon, ...}`` (the shape's constructor args)."""
    cfg = _plain(cfg)
    shape = cfg.pop("shape", None)
    name = cfg.pop("name", None)
    if name is None:
        raise ValueError(f"zone config {cfg} has no 'name'")
    if shape not in ZONE_KEYS:
        raise ValueError(f"zone {name!r}: shape must be one of {sorted(ZONE_KEYS)}, got {shape!r}")
    cls, keys = ZONE_KEYS[shape]
    missing = [k for k in keys if k not in cfg]
    extra = sorted(set(cfg) - set(keys))
    if missing or extra:
        raise ValueError(
            f"zone {name!r} ({shape}) needs keys {list(keys)}; "
            f"missing {missing}, unexpected {extra}"
        )
    if shape == "polygon":
        return PolygonZone(name, tuple(tuple(v) for v in cfg["vertices"]))
    return cls(name, *(float(cfg[k]) for k in keys))


def _part_xy(session: Session, part: str, role: str) -> np.ndarray:
    """``(T, 2)`` coordinates of ``part``; a clear error naming the session and its parts."""
    try:
        idx = session.bodypart_index(part)
    except KeyError:
        raise DataFormatError(
            session.source,
            f"session {session.name!r} has no body part {part!r} (needed as the {role} "
            f"body part of the labelling rules); available: {list(session.bodyparts)}",
        ) from None
    return session.pose[:, idx, :].astype(np.float64)


def moving_speed(xy: np.ndarray, fps: float, smoothing: int = 1) -> np.ndarray:
    """Speed (px/s) of a ``(T, 2)`` track, smoothed by a centred moving average.

    Frame-to-frame displacement times ``fps`` (frame 0 takes frame 1's value), then a
    NaN-aware centred mean over ``smoothing`` frames (truncated at the ends). Frames where
    the point itself is NaN stay NaN.
    """
    xy = _as_xy(xy)
    t = len(xy)
    if t == 0:
        return np.zeros(0)
    if t == 1:
        return np.where(np.isfinite(xy).all(axis=1), 0.0, np.nan)
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1) * fps
    speed = np.concatenate([step[:1], step])
    k = max(int(smoothing), 1)
    if k > 1:
        ok = np.isfinite(speed)
        csum = np.concatenate([[0.0], np.cumsum(np.where(ok, speed, 0.0))])
        ccnt = np.concatenate([[0], np.cumsum(ok)])
        lo = np.clip(np.arange(t) - k // 2, 0, t)
        hi = np.clip(np.arange(t) + (k - 1 - k // 2) + 1, 0, t)
        cnt = ccnt[hi] - ccnt[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            speed = np.where(cnt > 0, (csum[hi] - csum[lo]) / np.maximum(cnt, 1), np.nan)
    speed[~np.isfinite(xy).all(axis=1)] = np.nan
    return speed


@dataclass
class RuleLabeler:
    """Pseudo-labels from zones (position of one body part) and speed (of another).

    Rules are tried in ``priority`` order (default: zones in the order given, then
    ``"locomotion"`` (speed > ``locomotion_speed`` px/s), then ``"rest"`` (speed <
    ``rest_speed``)); the first that holds gives the label, and a frame where none holds is
    ``other``. A frame where a rule cannot be decided before one holds (its body part is
    NaN) gets ``UNLABELLED`` (-1). Label names are fixed: zone names in order, then
    ``"locomotion"``, ``"rest"``, ``other``, whatever the priority.

    ``fps`` is used for sessions that do not carry their own ``fps``.
    """

    zones: Sequence[Zone] = ()
    zone_bodypart: str = "head"
    speed_bodypart: str = "body_centre"
    locomotion_speed: float = field(default=150.0, metadata=at_least(0, integer=False))
    rest_speed: float = field(default=20.0, metadata=at_least(0, integer=False))
    speed_smoothing: int = field(default=5, metadata=at_least(1))
    priority: Sequence[str] | None = None
    other: str = "other"
    fps: float = field(default=DEFAULT_FPS, metadata=at_least(0, integer=False, above=True))
    label_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        check_ranges(self)
        self.zones = tuple(self.zones)
        names = [z.name for z in self.zones] + ["locomotion", "rest", self.other]
        if len(set(names)) != len(names):
            raise ValueError(f"label names must be unique, got {names}")
        self.label_names = tuple(names)
        rules = names[:-1]
        if self.priority is None:
            self.priority = tuple(rules)
        else:
            self.priority = tuple(self.priority)
            unknown = sorted(set(self.priority) - set(rules))
            if unknown:
                raise ValueError(f"priority names {unknown} are not rules; rules are {rules}")
            missing = [r for r in rules if r not in self.priority]
            if missing:
                raise ValueError(f"priority must list every rule; missing {missing}")
        if self.rest_speed > self.locomotion_speed:
            raise ValueError(
                f"rest_speed ({self.rest_speed}) must not exceed locomotion_speed "
                f"({self.locomotion_speed})"
            )

    @classmethod
    def from_config(cls, cfg: Mapping) -> RuleLabeler:
        """From a plain dict like ``conf/labels/operant_box.yaml`` (``kind`` is ignored)."""
        cfg = _plain(cfg)
        kind = cfg.pop("kind", "rules")
        if kind != "rules":
            raise ValueError(f"RuleLabeler.from_config got kind {kind!r}, expected 'rules'")
        zones = [zone_from_config(z) for z in cfg.pop("zones", []) or []]
        return cls(zones=zones, **cfg)

    def rule_masks(self, session: Session) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Per rule name, ``(holds, known)`` ``(T,)`` bool arrays."""
        masks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.zones:
            zxy = _part_xy(session, self.zone_bodypart, "zone")
            zknown = np.isfinite(zxy).all(axis=1)
            for z in self.zones:
                masks[z.name] = (z.contains(zxy) & zknown, zknown)
        sxy = _part_xy(session, self.speed_bodypart, "speed")
        fps = float(session.fps) if session.fps else float(self.fps)
        speed = moving_speed(sxy, fps, self.speed_smoothing)
        sknown = np.isfinite(speed)
        masks["locomotion"] = (sknown & (speed > self.locomotion_speed), sknown)
        masks["rest"] = (sknown & (speed < self.rest_speed), sknown)
        return masks

    def label(self, session: Session) -> Session:
        """A copy of ``session`` with rule-based ``labels`` (``-1`` where undecidable)."""
        masks = self.rule_masks(session)
        t = session.n_frames
        labels = np.full(t, self.label_names.index(self.other), dtype=np.int64)
        undecided = np.ones(t, dtype=bool)
        for rule in self.priority:
            holds, known = masks[rule]
            labels[undecided & ~known] = UNLABELLED
            undecided &= known
            hit = undecided & holds
            labels[hit] = self.label_names.index(rule)
            undecided &= ~hit
        return session.with_labels(labels, self.label_names)


_PLACEHOLDERS = ("stem", "name", "base", "mouse", "day", "condition")


def _dlc_base(stem: str) -> str:
    """A DeepLabCut output stem without the scorer suffix (``m01_day1DLC_resnet50_...`` ->
    ``m01_day1``)."""
    i = stem.find("DLC")
    return stem[:i].rstrip("_-. ") if i > 0 else stem


def companion_file(
    pattern: str,
    source: str | Path,
    name: str,
    mouse: str | None = None,
    day: int | None = None,
    condition: str | None = None,
    what: str = "label",
) -> Path:
    """The file ``pattern`` names beside the pose file ``source``: relative to its folder,
    with the placeholders ``{stem}``, ``{base}``, ``{name}``, ``{mouse}``, ``{day}``,
    ``{condition}`` (see :class:`FileLabeler`) and, at most, one match of a wildcard (the pose
    file itself excluded); the path as named when nothing matches.

    Raises
    ------
    ValueError
        An unknown placeholder.
    DataFormatError
        A wildcard that matches several files.
    """
    from dbm_lightning.io.compressed import file_stem

    src = Path(source)
    stem = file_stem(src)
    fields = {
        "stem": stem,
        "base": _dlc_base(stem),
        "name": name,
        "mouse": mouse,
        "day": day,
        "condition": condition,
    }
    try:
        rel = pattern.format(**fields)
    except (KeyError, IndexError) as exc:
        raise ValueError(
            f"{what} file pattern {pattern!r}: unknown placeholder {exc}; use {list(_PLACEHOLDERS)}"
        ) from None
    except (ValueError, TypeError, AttributeError) as exc:  # "{base", "{day:02d}" without a day
        raise ValueError(f"{what} file pattern {pattern!r} cannot be filled in: {exc}") from None
    target = src.parent / rel
    if not any(ch in rel for ch in "*?["):
        return target
    matches = sorted(p for p in target.parent.glob(target.name) if p.resolve() != src.resolve())
    if len(matches) > 1:
        raise DataFormatError(
            target,
            f"{what} pattern {pattern!r} matches {len(matches)} files for session "
            f"{name!r} ({', '.join(p.name for p in matches[:4])}); name one",
        )
    return matches[0] if matches else target


@dataclass
class FileLabeler:
    """Labels read from a file beside each session's source file.

    ``pattern`` is relative to the source's folder and may use ``{stem}`` (source file name
    without its suffix: ``X`` for ``X.csv``, ``X.csv.xz``, ``X.h5`` or ``X.slp``), ``{base}``
    (stem without a DeepLabCut ``DLC...`` scorer suffix), ``{name}`` (session name),
    ``{mouse}``, ``{day}``, ``{condition}``; it may end in a wildcard (the default
    ``{stem}.labels.*`` finds ``X.labels.csv``, ``X.labels.txt`` ...; exactly one file must
    match), and may climb folders (``../annotations/{base}_annot.txt``).

    Files are read by :func:`dbm_lightning.io.label_formats.read_label_file`: ``format``
    (``auto``: detected from the content; or ``csv``, ``caltech``, ``boris``, ``simba``,
    ``deepethogram``), ``stream`` (Caltech ``S1``, ``S2`` ...), ``subject`` (BORIS),
    ``rename`` (a file's label name -> the name used), ``ignore`` (names that mean
    unlabelled, e.g. Caltech's ``base``), ``background`` (the class of frames in no BORIS
    event; ``None``: unlabelled). Names are compared without case or surrounding spaces.
    ``label_names`` fixes the class order (else the file's order).
    """

    pattern: str = "{stem}.labels.*"
    label_names: tuple[str, ...] | None = None
    format: str = "auto"
    stream: str | None = None
    subject: str | None = None
    rename: dict[str, str] = field(default_factory=dict)
    ignore: tuple[str, ...] = ()
    background: str | None = "other"

    def __post_init__(self) -> None:
        if self.label_names is not None:
            self.label_names = tuple(self.label_names)
        self.rename = {str(k): str(v) for k, v in dict(self.rename or {}).items()}
        self.ignore = tuple(str(i) for i in (self.ignore or ()))
        from dbm_lightning.io.label_formats import LABEL_FORMATS

        if self.format != "auto" and self.format not in LABEL_FORMATS:
            raise ValueError(
                f"labels.format must be auto or one of {list(LABEL_FORMATS)}, got {self.format!r}"
            )

    def path_for(self, session: Session) -> Path:
        """The label file expected for ``session`` (the one match of a wildcard pattern, or
        the pattern itself when nothing matches, for the error)."""
        if session.source is None:
            raise DataFormatError(
                None,
                f"session {session.name!r} has no source file, so its label file "
                f"({self.pattern!r}) cannot be located",
            )
        return self.path_for_source(
            session.source, session.name, session.mouse, session.day, session.condition
        )

    def path_for_source(
        self,
        source: str | Path,
        name: str,
        mouse: str | None = None,
        day: int | None = None,
        condition: str | None = None,
    ) -> Path:
        """The label file of the pose file ``source`` (see :meth:`path_for`)."""
        return companion_file(self.pattern, source, name, mouse, day, condition, what="label")

    def read(self, path: Path, n_frames: int, fps: float | None) -> tuple[np.ndarray, tuple]:
        """Labels ``(n_frames,)`` and their names from the label file ``path``."""
        from dbm_lightning.io.label_formats import read_label_file

        return read_label_file(
            path,
            n_frames,
            format=self.format,
            label_names=self.label_names,
            stream=self.stream,
            subject=self.subject,
            rename=self.rename,
            ignore=self.ignore,
            background=self.background,
            fps=fps,
        )

    def label(self, session: Session) -> Session:
        """A copy of ``session`` with labels from its label file."""
        path = self.path_for(session)
        if not path.is_file():
            raise DataFormatError(
                path,
                f"label file for session {session.name!r} not found (pattern {self.pattern!r} "
                f"relative to {Path(session.source).parent})",
            )
        labels, names = self.read(path, session.n_frames, session.fps)
        return session.with_labels(labels, names)


@dataclass
class EmbeddedLabeler:
    """Keeps the labels the reader gave (e.g. the categories of the original DBM .mat)."""

    label_names: tuple[str, ...] | None = field(default=None, init=False)

    def label(self, session: Session) -> Session:
        """``session`` itself; an error naming it when it carries no labels."""
        if session.labels is None:
            raise DataFormatError(
                session.source,
                f"session {session.name!r} has no embedded labels; use the 'rules' or "
                "'from_files' labels config for this data",
            )
        return session


Labeler = RuleLabeler | FileLabeler | EmbeddedLabeler


def build_labeler(cfg: Mapping) -> Labeler:
    """A labeler from a plain dict with ``kind: rules|from_files|embedded`` and its arguments."""
    cfg = _plain(cfg)
    kind = cfg.pop("kind", None)
    if kind == "rules":
        return RuleLabeler.from_config(cfg)
    if kind == "from_files":
        return FileLabeler(**cfg)
    if kind == "embedded":
        if cfg:
            raise ValueError(f"embedded labels take no arguments, got {sorted(cfg)}")
        return EmbeddedLabeler()
    raise ValueError(f"labels config 'kind' must be rules, from_files or embedded, got {kind!r}")
