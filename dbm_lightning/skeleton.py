"""Body-part mapping: one skeleton for recordings from several tracking projects.

Two DeepLabCut projects of one experiment may name the same point ``Left Ear`` and ``l_ear``,
or one of them tracks an extra ``LED``. :class:`BodypartMap` (``data.bodyparts`` in the
config, ``--rename``/``--drop`` in ``dbm-predict``) maps every session onto one skeleton:

1. ``rename``: a file's name -> the name used (``{"Left Ear": "l_ear"}``); names are compared
   without case or surrounding spaces, so ``left ear`` matches too;
2. ``drop``: parts to remove (after renaming);
3. ``keep``: when given, exactly these parts in this order (after renaming); a session that
   lacks one is an error naming the file and the part.

In a multi-animal session the map applies to every animal's parts. A checkpoint records the
skeleton a model was trained on (its pipeline state's body parts), and prediction matches a
new session's parts to it by name after the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from dbm_lightning.errors import DataFormatError
from dbm_lightning.io.labels import name_key
from dbm_lightning.session import ANIMAL_SEPARATOR, Session


@dataclass
class BodypartMap:
    """Renames, drops and selects body parts (see the module docstring)."""

    rename: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    keep: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        self.rename = {str(k): str(v) for k, v in dict(self.rename or {}).items()}
        self.drop = tuple(str(d) for d in (self.drop or ()))
        self.keep = tuple(str(k) for k in self.keep) if self.keep is not None else None
        if self.keep is not None and len(set(map(name_key, self.keep))) != len(self.keep):
            raise ValueError(f"bodyparts.keep names a part twice: {list(self.keep)}")
        if self.keep is not None and not self.keep:
            raise ValueError("bodyparts.keep is empty: it would keep no body part")
        clash = {name_key(d) for d in self.drop} & {name_key(k) for k in self.keep or ()}
        if clash:
            raise ValueError(f"bodyparts: {sorted(clash)} both dropped and kept")

    @property
    def is_identity(self) -> bool:
        """Whether the map changes nothing."""
        return not self.rename and not self.drop and self.keep is None

    def map_parts(self, parts: Sequence[str], where: object = None) -> tuple[list[int], list[str]]:
        """The mapping of one animal's ``parts``: the indices to take and their new names, in
        output order (``where`` names the file in errors)."""
        lookup = {name_key(k): v for k, v in self.rename.items()}
        renamed = [lookup.get(name_key(p), p) for p in parts]
        seen: dict[str, int] = {}
        for i, name in enumerate(renamed):
            if name_key(name) in seen:
                raise DataFormatError(
                    where,
                    f"after bodyparts.rename two parts are named {name!r} "
                    f"({parts[seen[name_key(name)]]!r} and {parts[i]!r})",
                )
            seen[name_key(name)] = i
        dropped = {name_key(d) for d in self.drop}
        if self.keep is None:
            order = [i for i, n in enumerate(renamed) if name_key(n) not in dropped]
            names = [renamed[i] for i in order]
        else:
            missing = [k for k in self.keep if name_key(k) not in seen]
            if missing:
                raise DataFormatError(
                    where,
                    f"bodyparts.keep names part(s) {missing} this session lacks; its parts "
                    f"are {renamed} (after bodyparts.rename)",
                )
            order = [seen[name_key(k)] for k in self.keep]
            names = list(self.keep)
        if not order:
            raise DataFormatError(where, "bodyparts.drop leaves no body part")
        return order, names

    def apply(self, session: Session) -> Session:
        """``session`` on the mapped skeleton (itself when the map changes nothing)."""
        if self.is_identity:
            return session
        parts = session.parts
        order, names = self.map_parts(parts, session.source or session.name)
        p = len(parts)
        idx = [a * p + i for a in range(session.n_animals) for i in order]
        if session.individuals:
            bodyparts = tuple(
                f"{ind}{ANIMAL_SEPARATOR}{name}" for ind in session.individuals for name in names
            )
        else:
            bodyparts = tuple(names)
        return replace(
            session,
            pose=session.pose[:, idx],
            likelihood=session.likelihood[:, idx],
            bodyparts=bodyparts,
        )

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> BodypartMap:
        """From ``data.bodyparts`` (``None`` or ``{}``: no mapping)."""
        if not cfg:
            return cls()
        unknown = sorted(set(cfg) - {"rename", "drop", "keep"})
        if unknown:
            raise ValueError(f"bodyparts: unknown key(s) {unknown}; use rename, drop, keep")
        return cls(**dict(cfg))


def part_index(
    parts: Sequence[str], name: str | None, key: str, whose: str = "the animal has"
) -> int | None:
    """Index of body part ``name`` in ``parts`` (``None`` for ``None``); an unknown name is a
    ``ValueError`` that starts with ``key`` and lists the parts."""
    if name is None:
        return None
    parts = [str(p) for p in parts]
    if name not in parts:
        raise ValueError(f"{key}: unknown body part {name!r}; {whose} body parts {parts}")
    return parts.index(name)
