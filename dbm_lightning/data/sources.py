"""Data sources: where a run's sessions come from (the synthetic box, a DeepLabCut folder, the
original DBM .mat file); each has ``load(cache_dir) -> LoadResult``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from dbm_lightning.io import (
    LoadResult,
    load_dbm_mat,
    load_sessions,
    read_manifest,
    scan_folder,
)
from dbm_lightning.ranges import at_least, between, check_ranges, satisfies
from dbm_lightning.session import DEFAULT_FPS
from dbm_lightning.skeleton import BodypartMap


class DataSource(Protocol):
    """Anything with ``load(cache_dir=None) -> LoadResult``."""

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult: ...


@dataclass
class SyntheticSource:
    """The built-in synthetic operant box (generated on first use and cached).

    After :meth:`load`, ``folder`` is the dataset folder; the true behaviour of session
    ``X.csv`` is in ``X.labels.csv`` beside it, which is what
    ``FileLabeler("{stem}.labels.csv")`` reads (see :meth:`true_labels_pattern`).
    ``animals=2``: pairs of mice with pair behaviours (multi-animal files); ``domain_shift``
    in [0, 1]: per-mouse body size, camera, frame rate and tracking noise (see
    :mod:`dbm_lightning.synthetic`); ``landmarks``: the three ports tracked as fixed points
    after the body parts (one animal only); ``steady``: behaviours the learning curve leaves
    at their day-1 share (a negative control; see
    :class:`~dbm_lightning.synthetic.SyntheticConfig`).
    """

    mice: int = field(default=8, metadata=at_least(1))
    days: int = field(default=7, metadata=at_least(1))
    frames: int = field(default=3000, metadata=at_least(1))
    seed: int = field(default=0, metadata=at_least(0))
    fps: float = field(default=DEFAULT_FPS, metadata=at_least(0, integer=False, above=True))
    animals: int = field(
        default=1, metadata=satisfies(lambda v: not isinstance(v, bool) and v in (1, 2), "1 or 2")
    )
    domain_shift: float = field(default=0.0, metadata=between(0.0, 1.0))
    landmarks: bool = False
    steady: tuple[str, ...] = field(
        default=(),
        metadata=satisfies(
            lambda v: _steady_problem(v) is None,
            "distinct behaviours of the box other than centre_port and locomotion (rest, "
            "grooming, rearing, left_port, right_port), with animals=1",
        ),
    )
    folder: Path | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        check_ranges(self)
        self.config()  # the fields together (e.g. landmarks or steady with animals=2)

    true_labels_pattern = "{stem}.labels.csv"
    """FileLabeler pattern of the simulator's true behaviour labels."""

    def config(self):
        """The :class:`~dbm_lightning.synthetic.SyntheticConfig` of this dataset."""
        from dbm_lightning.synthetic import SyntheticConfig

        return SyntheticConfig(
            mice=self.mice,
            days=self.days,
            frames=self.frames,
            seed=self.seed,
            fps=self.fps,
            animals=self.animals,
            domain_shift=self.domain_shift,
            landmarks=self.landmarks,
            steady=tuple(self.steady),
        )

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult:
        """Generate (once) and read the dataset; ``cache_dir`` is the parsed-session cache."""
        from dbm_lightning.synthetic import ensure_dataset

        self.folder = Path(ensure_dataset(self.config()))
        entries = read_manifest(self.folder / "manifest.csv")
        return load_sessions(entries, cache_dir=cache_dir, fps=self.fps, progress=False)


def _steady_problem(steady: Any) -> str | None:
    """Why ``steady`` is no list of behaviours the simulator can hold (``None``: it is)."""
    from dbm_lightning.synthetic.model import check_steady

    if isinstance(steady, str):
        return "a list, not one name"
    try:
        check_steady(tuple(steady))
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


@dataclass
class DLCFolderSource:
    """A folder of pose files of any registered format (DeepLabCut CSV/H5, compressed CSV,
    SLEAP, NWB; :mod:`dbm_lightning.io.readers`); mouse/day from file names (``pattern``) or
    a manifest.

    ``manifest`` may be absolute or relative to ``path`` (or to the working directory).
    ``individuals`` selects and orders the animals of multi-animal files (``None``: all, one
    multi-animal session per file). ``bodyparts`` maps every file's parts onto one skeleton
    (:class:`~dbm_lightning.skeleton.BodypartMap`: ``rename``, ``drop``, ``keep``).
    """

    path: str | Path
    pattern: str = "{mouse}_day{day}"
    manifest: str | Path | None = None
    skip_corrupted: bool = False
    individuals: list[str] | None = None
    bodyparts: BodypartMap = field(default_factory=BodypartMap)
    fps: float | None = field(default=None, metadata=at_least(0, integer=False, above=True))

    def __post_init__(self) -> None:
        check_ranges(self)
        if isinstance(self.bodyparts, Mapping) or self.bodyparts is None:
            self.bodyparts = BodypartMap.from_config(self.bodyparts)
        if self.individuals is not None:
            self.individuals = [str(i) for i in self.individuals]

    def manifest_path(self) -> Path | None:
        """The manifest file to read, or ``None`` to scan the folder."""
        if self.manifest is None:
            return None
        m = Path(self.manifest).expanduser()
        if not m.is_absolute() and not m.is_file():
            m = Path(self.path).expanduser() / m
        return m

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult:
        """Read the sessions (corrupted files skipped when ``skip_corrupted``), mapped onto
        the ``bodyparts`` skeleton."""
        manifest = self.manifest_path()
        if manifest is not None:
            entries = read_manifest(manifest)
        else:
            entries = scan_folder(Path(self.path).expanduser(), self.pattern)
        result = load_sessions(
            entries,
            skip_corrupted=self.skip_corrupted,
            cache_dir=cache_dir,
            individuals=self.individuals,
            fps=self.fps,
        )
        return replace(result, sessions=[self.bodyparts.apply(s) for s in result.sessions])


@dataclass
class DBMMatSource:
    """The original DBM MATLAB v7.3 file: one session per trial, labels embedded."""

    path: str | Path

    def load(self, cache_dir: str | Path | bool | None = None) -> LoadResult:
        """All trials of the file (``cache_dir`` is unused: the file is read directly)."""
        return LoadResult(sessions=load_dbm_mat(Path(self.path).expanduser()), skipped=[])


def bodypart_map_of(source: Any) -> dict[str, Any] | None:
    """The body-part mapping a source applied (recorded so that prediction applies it too)."""
    mapping = getattr(source, "bodyparts", None)
    return asdict(mapping) if mapping is not None and not mapping.is_identity else None


SOURCES: dict[str, type] = {
    "synthetic": SyntheticSource,
    "dlc": DLCFolderSource,
    "dbm_mat": DBMMatSource,
}
"""``data.source`` -> the source class (its fields are ``data`` keys)."""
