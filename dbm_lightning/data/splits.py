"""Split strategies: which sessions are trained on, validated and tested (:class:`SplitConfig`,
:func:`split_sessions`), and the check that no recording, mouse or day leaks across splits."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dbm_lightning.errors import ConfigError
from dbm_lightning.ranges import at_least, between, check_ranges, one_of
from dbm_lightning.session import Session

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
STRATEGIES = ("trials", "sessions", "leave_mouse_out", "leave_day_out", "kfold_mouse", "kfold")


@dataclass(frozen=True)
class SplitConfig:
    """How sessions are assigned to train / val / test.

    Parameters
    ----------
    strategy
        ``"trials"``: a random ``val_fraction`` (and ``test_fraction``) of the sessions/trials,
        as the original demo (10 % validation); at least one session per non-zero fraction.
        ``"sessions"``: the same random choice of whole sessions (named for DLC data).
        ``"leave_mouse_out"``: whole mice to val/test (``val_mice``/``test_mice`` or a seeded
        random choice of mice by fraction). ``"leave_day_out"``: whole days likewise
        (``val_days``/``test_days``). ``"kfold_mouse"``: mice shuffled (seeded) into
        ``n_folds`` groups; group ``fold`` is val and, when ``kfold_test``, group
        ``fold + 1`` (mod ``n_folds``) is test. ``"kfold"``: the same over sessions/trials
        (every session is validation in exactly one fold of a ``fold=0..n_folds-1`` sweep).
    val_fraction, test_fraction
        Fractions of sessions (trials/sessions) or of mice/days (leave-out strategies).
    seed
        Seed of every random choice (the result does not depend on the input order).
    fold, n_folds, kfold_test
        For ``kfold_mouse`` and ``kfold``.
    kfold_holdout
        What fold ``fold`` is for ``kfold``/``kfold_mouse``: ``"val"`` (as above) or
        ``"test"``: the held-out evaluation of new animals or videos. Fold ``fold`` is then
        the test set, scored once, never used for any choice; the validation set (best epoch,
        early stopping, post-processing) is a seeded ``val_fraction`` of the *other* groups,
        so model selection sees only training animals. Over ``fold=0..n_folds-1`` every
        group is scored exactly once.
    val_mice, test_mice, val_days, test_days
        Explicit held-out groups (override the fractions).
    """

    strategy: str = field(default="trials", metadata=one_of(STRATEGIES, "split strategy"))
    val_fraction: float = field(default=0.1, metadata=between(0, 1, high_open=True))
    test_fraction: float = field(default=0.0, metadata=between(0, 1, high_open=True))
    seed: int = field(default=0, metadata=at_least(0))
    fold: int = field(default=0, metadata=at_least(0))
    n_folds: int = field(default=4, metadata=at_least(2))
    val_mice: Sequence[str] | None = None
    test_mice: Sequence[str] | None = None
    val_days: Sequence[int] | None = None
    test_days: Sequence[int] | None = None
    kfold_test: bool = False
    kfold_holdout: str = field(default="val", metadata=one_of(("val", "test"), "k-fold holdout"))

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.kfold_test and self.kfold_holdout == "test":
            raise ValueError(
                "kfold_test and kfold_holdout=test both choose a test fold; use one of them"
            )
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 (some data must train), got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.kfold_test and self.n_folds < 3:
            raise ValueError("kfold_test needs n_folds >= 3 (one fold val, one test, rest train)")
        if not 0 <= self.fold < self.n_folds:
            raise ValueError(f"fold must be in [0, {self.n_folds}), got {self.fold}")
        for name in ("val_mice", "test_mice", "val_days", "test_days"):
            v = getattr(self, name)
            if isinstance(v, str | int):
                object.__setattr__(self, name, (v,))
            elif v is not None:
                object.__setattr__(self, name, tuple(v))

    def to_dict(self) -> dict:
        """A JSON-able dict."""
        d = asdict(self)
        for k in ("val_mice", "test_mice", "val_days", "test_days"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d


PLURAL = {"session": "sessions", "mouse": "mice", "day": "days"}
"""The plural of each kind of group a split holds out (for messages and key names)."""


def _count(n: int, what: str) -> str:
    """``"1 session"``, ``"3 mice"``."""
    return f"{n} {what if n == 1 else PLURAL[what]}"


def _n_held(fraction: float, n: int) -> int:
    """Number of items for a fraction: rounded, at least 1 when the fraction is non-zero."""
    if fraction <= 0:
        return 0
    return max(1, int(np.floor(fraction * n + 0.5)))


def _random_groups(
    groups: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    what: str,
    among: str = "",
) -> tuple[set[str], set[str]]:
    """Seeded random choice of val and test groups among sorted ``groups``.

    Raises :class:`ConfigError` (key ``split.val_fraction``, or ``split.test_fraction`` when
    only test is held out) when nothing would remain for training; ``among`` describes
    ``groups`` in that message (e.g. ``" not listed in split.val_mice"``).
    """
    n = len(groups)
    n_val, n_test = _n_held(val_fraction, n), _n_held(test_fraction, n)
    if n_val + n_test >= n:
        key = "split.val_fraction" if n_val else "split.test_fraction"
        held = [k for k, n_k in (("val", n_val), ("test", n_test)) if n_k]
        if n == 1:
            into = {1: "train and validation" if n_val else "train and test"}.get(
                len(held), "train, validation and test"
            )
            zero = " and ".join(f"split.{k}_fraction=0" for k in held)
            problem = (
                f"1 {what}{among} cannot be split into {into}: at least one must remain for "
                f"training (add data, or set {zero})"
            )
        else:
            problem = (
                f"cannot hold out {_count(n_val, what)} for validation and {n_test} for test "
                f"out of {_count(n, what)}{among}: at least one must remain for training "
                "(lower the fractions or add data)"
            )
        raise ConfigError(key, problem)
    order = np.random.default_rng(seed).permutation(n)
    chosen = [groups[i] for i in order]
    return set(chosen[:n_val]), set(chosen[n_val : n_val + n_test])


def _group_key(session: Session, attr: str) -> str | None:
    v = getattr(session, attr)
    return None if v is None else str(v)


def _require_groups(sessions: Sequence[Session], attr: str, strategy: str) -> list[str]:
    """The sorted groups (values of ``attr``) of ``sessions``; :class:`ConfigError` on
    ``split.strategy`` when a session has none."""
    lacking = [s.name for s in sessions if getattr(s, attr) is None]
    if lacking:
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise ConfigError(
            "split.strategy",
            f"{strategy!r} needs the {attr} of every session, but "
            f"{len(lacking)} session(s) have none ({shown}); give a manifest or a file-name "
            f"pattern with {{{attr}}}, or use strategy 'trials' or 'sessions' (e.g. for the "
            "trials of a DBM .mat file)",
        )
    return sorted({_group_key(s, attr) for s in sessions}, key=_natural_key)


def _natural_key(text: str) -> tuple:
    """Sort key: numbers compare as numbers (day 2 before day 10)."""
    return (0, int(text), "") if text.lstrip("-").isdigit() else (1, 0, text)


def _names(values: Sequence[str], attr: str) -> str:
    """``'m01', 'm02'`` for mice, ``6, 7`` for days (as they are written in a config)."""
    return ", ".join(v if attr == "day" else repr(v) for v in values)


def _unknown_groups(given: Sequence | None, known: list[str], attr: str) -> str | None:
    """What is wrong with an explicit list of groups (names not in ``known``), or ``None``."""
    if given is None:
        return None
    unknown = sorted({str(g) for g in given} - set(known), key=_natural_key)
    if not unknown:
        return None
    what = attr if len(unknown) == 1 else PLURAL[attr]
    return (
        f"unknown {what} {_names(unknown, attr)} ({PLURAL[attr]} in the data: {', '.join(known)})"
    )


def _leave_out(
    sessions: Sequence[Session], config: SplitConfig, attr: str
) -> tuple[set[str], set[str], str]:
    """Held-out groups (values of ``attr``) for leave_mouse_out / leave_day_out.

    A mistake in ``split.val_<groups>``/``split.test_<groups>`` (a name not in the data, a
    group on both lists, every group listed) is a :class:`ConfigError` naming the key.
    """
    plural = PLURAL[attr]
    groups = _require_groups(sessions, attr, config.strategy)
    keys = {role: f"split.{role}_{plural}" for role in ("val", "test")}
    given = {role: getattr(config, f"{role}_{plural}") for role in ("val", "test")}
    problems = [
        (keys[role], problem)
        for role in ("val", "test")
        if (problem := _unknown_groups(given[role], groups, attr)) is not None
    ]
    if problems:
        raise ConfigError(*problems[0], more=problems[1:])
    val = None if given["val"] is None else {str(g) for g in given["val"]}
    test = None if given["test"] is None else {str(g) for g in given["test"]}
    both = sorted((val or set()) & (test or set()), key=_natural_key)
    if both:
        raise ConfigError(
            keys["test"],
            f"{_names(both, attr)} {'is' if len(both) == 1 else 'are'} listed for both val "
            f"and test ({keys['val']})",
        )
    listed = (val or set()) | (test or set())
    if not set(groups) - listed:
        lists = "; ".join(
            f"{role}: {_names(sorted(g, key=_natural_key), attr)}"
            for role, g in (("val", val), ("test", test))
            if g
        )
        raise ConfigError(
            keys["val"] if val else keys["test"],
            f"every {attr} is held out ({lists}); at least one must remain for training",
        )
    if val is None or test is None:
        rest = [g for g in groups if g not in listed]
        named = [keys[r] for r, g in (("val", val), ("test", test)) if g is not None]
        rnd_val, rnd_test = _random_groups(
            rest,
            config.val_fraction if val is None else 0.0,
            config.test_fraction if test is None else 0.0,
            config.seed,
            attr,
            among=f" not listed in {named[0]}" if named else "",
        )
        val = rnd_val if val is None else val
        test = rnd_test if test is None else test
    return val, test, attr


def _kfold_groups(groups: list[str], config: SplitConfig, what: str) -> tuple[set[str], set[str]]:
    """Val (and, with ``kfold_test``, test) groups of fold ``config.fold``: the sorted
    ``groups`` shuffled by ``config.seed`` and cut into ``n_folds`` near-equal folds."""
    if len(groups) < config.n_folds:
        fix = (
            f"set split.n_folds={len(groups)} or fewer"
            if len(groups) >= 2
            else "add data: one group cannot be both trained on and held out"
        )
        raise ConfigError(
            "split.n_folds",
            f"{config.strategy} with n_folds={config.n_folds} needs at least that many "
            f"{PLURAL[what]}; the data has {len(groups)} ({fix})",
        )
    order = np.random.default_rng(config.seed).permutation(len(groups))
    folds = np.array_split(order, config.n_folds)
    if config.kfold_holdout == "test":
        test = {groups[i] for i in folds[config.fold]}
        rest = [g for g in groups if g not in test]
        n_val = _n_held(config.val_fraction, len(rest))
        if n_val >= len(rest):
            raise ConfigError(
                "split.val_fraction",
                f"cannot hold out {n_val} of the {_count(len(rest), what)} outside test fold "
                f"{config.fold} for validation: at least one must remain for training (add "
                "data, lower split.n_folds, or set split.val_fraction=0)",
            )
        inner = np.random.default_rng([config.seed, config.fold]).permutation(len(rest))
        return {rest[i] for i in inner[:n_val]}, test
    val = {groups[i] for i in folds[config.fold]}
    test = (
        {groups[i] for i in folds[(config.fold + 1) % config.n_folds]}
        if config.kfold_test
        else set()
    )
    return val, test


def split_sessions(sessions: Sequence[Session], config: SplitConfig) -> dict[str, str]:
    """Assign every session to ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    dict
        Session name -> split, in the order of ``sessions``. The assignment depends only on
        the sessions' names/metadata and ``config`` (not on the order of ``sessions``).

    Raises
    ------
    ConfigError
        A split the data cannot give, named by its key: a mouse/day strategy on sessions
        without mouse/day (e.g. DBM .mat trials; ``split.strategy``), unknown held-out
        mice/days (``split.val_mice: unknown mouse 'm99' (mice in the data: ...)``), too few
        sessions/groups to hold any out (``split.val_fraction``, ``split.n_folds``).
    ValueError
        Duplicate session names.
    """
    sessions = list(sessions)
    names = [s.name for s in sessions]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"session names must be unique to split them; duplicates: {dup}")
    if not sessions:
        return {}
    strategy = config.strategy
    if strategy in ("trials", "sessions"):
        ordered = sorted(names, key=_natural_key)
        val, test = _random_groups(
            ordered, config.val_fraction, config.test_fraction, config.seed, "session"
        )
        return {n: "val" if n in val else "test" if n in test else "train" for n in names}

    if strategy == "kfold":
        ordered = sorted(names, key=_natural_key)
        val, test = _kfold_groups(ordered, config, "session")
        return {n: "val" if n in val else "test" if n in test else "train" for n in names}

    if strategy == "kfold_mouse":
        mice = _require_groups(sessions, "mouse", strategy)
        val, test = _kfold_groups(mice, config, "mouse")
        attr = "mouse"
    else:
        attr = "mouse" if strategy == "leave_mouse_out" else "day"
        val, test, attr = _leave_out(sessions, config, attr)

    out = {}
    for s in sessions:
        key = _group_key(s, attr)
        out[s.name] = "val" if key in val else "test" if key in test else "train"
    return out


class SplitLeakError(ValueError):
    """A split that puts one recording (or, for mouse/day strategies, one mouse/day) on two
    sides, which would let validation/test accuracy profit from training data."""


def content_fingerprint(session: Session) -> str | None:
    """A hash of what a session recorded: its pose (shape and float32 bytes, every NaN the
    same NaN), whatever its name, path or file format (a copied file, a symlink, a ``.csv``
    and its ``.csv.gz`` give the same fingerprint). ``None`` for a pose without any variation
    (no finite point, or one value throughout), which identifies no recording."""
    pose = np.ascontiguousarray(session.pose, dtype=np.float32)
    finite = np.isfinite(pose)
    values = pose[finite]
    if values.size == 0 or values.min() == values.max():
        return None
    if not finite.all():
        pose = np.where(finite, pose, np.float32(np.nan))
    digest = hashlib.blake2b(np.asarray(pose.shape, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(pose.tobytes())
    return digest.hexdigest()


def _label(session: Session) -> str:
    """``"copy_of_m01 (/data/copy_of_m01.csv)"``, or the name of an in-memory session."""
    return session.name if session.source is None else f"{session.name} ({_recording_key(session)})"


def _check_same_content(
    sessions: Sequence[Session], assignment: Mapping[str, str], config: SplitConfig
) -> None:
    """Refuse identical content (:func:`content_fingerprint`) on two sides; warn once when it
    is on one side only (the recording then counts twice)."""
    copies: dict[str, list[Session]] = {}
    for s in sessions:
        fingerprint = content_fingerprint(s)
        if fingerprint is not None:
            copies.setdefault(fingerprint, []).append(s)
    groups = [g for g in copies.values() if len(g) > 1]
    leaks = [g for g in groups if len({assignment[s.name] for s in g}) > 1]
    if leaks:
        first = leaks[0]
        places = [f"{_label(s)} in {assignment[s.name]}" for s in first]
        detail = ", ".join(places[:-1]) + " and " + places[-1]
        sides = len({assignment[s.name] for s in first})
        raise SplitLeakError(
            f"{config.strategy} split puts one recording on {sides} sides: {detail} have "
            f"identical pose ({first[0].n_frames} frames)"
            + (f", and {len(leaks) - 1} more such recording(s)" if len(leaks) > 1 else "")
            + "; load each recording once (remove the copies from the folder or manifest)"
        )
    if groups:
        log.warning(
            "the same recording is loaded more than once (identical pose, on one side of the "
            "split, so it weighs more than the others): %s",
            "; ".join(" = ".join(_label(s) for s in g) for g in groups),
        )


def _recording_key(session: Session) -> str:
    """What identifies a recording: its file, plus the trial when a file holds several."""
    parts = [str(session.source) if session.source is not None else session.name]
    for key in ("trial",):
        if session.extra.get(key) is not None:
            parts.append(f"{key} {session.extra[key]}")
    return " / ".join(parts)


def check_split(
    sessions: Sequence[Session], assignment: Mapping[str, str], config: SplitConfig
) -> None:
    """Refuse an assignment in which anything that must stay on one side is on two.

    Checked at run time by :meth:`DBMDataModule.setup`, whatever produced ``assignment``:
    every session has exactly one known split; no recording (file, individual, trial) is on
    two sides, even when it was listed twice under different names; no content is on two
    sides, even under different file names, paths or formats (:func:`content_fingerprint`;
    identical content on one side is a logged warning); and with
    ``leave_mouse_out``/``kfold_mouse`` no mouse, with ``leave_day_out`` no day, is on two
    sides.

    Raises
    ------
    SplitLeakError
        Naming the group, its sides and the sessions on each.
    """
    names = [s.name for s in sessions]
    missing = [n for n in names if assignment.get(n) not in SPLITS]
    if missing:
        raise SplitLeakError(f"sessions without a train/val/test split: {missing}")
    unknown = sorted(set(assignment) - set(names))
    if unknown:
        raise SplitLeakError(f"the split names sessions that were not loaded: {unknown}")
    groupings: list[tuple[str, Any]] = [("recording", _recording_key)]
    if config.strategy in ("leave_mouse_out", "kfold_mouse"):
        groupings.append(("mouse", lambda s: s.mouse))
    elif config.strategy == "leave_day_out":
        groupings.append(("day", lambda s: s.day))
    for what, key_of in groupings:
        sides: dict[Any, dict[str, list[str]]] = {}
        for s in sessions:
            sides.setdefault(key_of(s), {}).setdefault(assignment[s.name], []).append(s.name)
        leaks = {k: v for k, v in sides.items() if k is not None and len(v) > 1}
        if leaks:
            key, where = next(iter(leaks.items()))
            detail = "; ".join(f"{split}: {', '.join(ns)}" for split, ns in where.items())
            raise SplitLeakError(
                f"{config.strategy} split puts {what} {key!r} on {len(where)} sides ({detail})"
                + (f" and {len(leaks) - 1} more {what} group(s)" if len(leaks) > 1 else "")
            )
        if what == "recording":
            _check_same_content(sessions, assignment, config)


def no_validation_cause(config: SplitConfig) -> str:
    """Why ``config`` gives no validation sessions, as the setting to change."""
    for key in ("val_mice", "val_days"):
        if getattr(config, key) is not None and not getattr(config, key):
            return f"split.{key}=[]"
    if config.val_fraction == 0:
        return "split.val_fraction=0"
    return f"split.strategy={config.strategy}"


def kfold_mouse_groups(mice: Sequence[str], n_folds: int, seed: int = 0) -> list[list[str]]:
    """The mice of each fold of ``kfold_mouse`` (for reports; same shuffle as the split)."""
    mice = sorted({str(m) for m in mice}, key=_natural_key)
    order = np.random.default_rng(seed).permutation(len(mice))
    return [[mice[i] for i in fold] for fold in np.array_split(order, n_folds)]
