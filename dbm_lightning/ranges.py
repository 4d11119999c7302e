"""The range a config value may take, declared once on the dataclass field that holds it.

``mice: int = field(default=8, metadata=at_least(1))`` gives the field its range;
:func:`check_ranges` (called by the dataclass's ``__post_init__``) refuses a value outside it
for a Python caller, and the config schema (:mod:`dbm_lightning.schema`) reads the same
metadata to report every bad value of a run config at once, with its dotted key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Range",
    "at_least",
    "between",
    "check_ranges",
    "did_you_mean",
    "one_of",
    "range_of",
    "satisfies",
]

KEY = "range"
"""Key of the :class:`Range` in a dataclass field's metadata."""


@dataclass(frozen=True)
class Range:
    """A check of one value: ``test(value)`` is true when it is fine; ``what`` describes the
    values accepted ("a positive integer", "in [0, 1)")."""

    what: str
    test: Callable[[Any], bool]

    def problem(self, value: Any) -> str | None:
        """``None`` when ``value`` (``None``: not set, always fine) is in range, else what is
        wrong with it."""
        if value is None:
            return None
        try:
            ok = bool(self.test(value))
        except (TypeError, ValueError):
            ok = False
        if ok:
            return None
        shown = repr(value) if isinstance(value, str) else str(value)
        return f"must be {self.what}, got {shown}"


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def at_least(
    minimum: float, integer: bool = True, also: Sequence[Any] = (), above: bool = False
) -> dict[str, Range]:
    """Field metadata: an integer (or, ``integer=False``, a finite number) ``>= minimum``
    (``> minimum`` with ``above``), or one of ``also`` (e.g. ``-1`` for "no limit")."""
    if integer:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum:g}"
    else:
        what = f"{'>' if above else '>='} {minimum:g}"
    what += "".join(f" or {a}" for a in also)
    kind = _is_int if integer else _is_number

    def test(v: Any) -> bool:
        if not isinstance(v, bool) and any(v == a for a in also):
            return True
        return kind(v) and (v > minimum if above else v >= minimum)

    return {KEY: Range(what, test)}


def between(
    low: float, high: float, low_open: bool = False, high_open: bool = False
) -> dict[str, Range]:
    """Field metadata: a finite number in ``[low, high]`` (ends open as asked)."""
    what = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def test(v: Any) -> bool:
        return (
            _is_number(v)
            and (v > low if low_open else v >= low)
            and (v < high if high_open else v <= high)
        )

    return {KEY: Range(what, test)}


def one_of(choices: Iterable[str] | Callable[[], Iterable[str]], what: str) -> dict[str, Range]:
    """Field metadata: one of ``choices`` (or of what calling it returns, for live registries);
    the message names ``what`` and suggests the closest choice."""

    def known() -> list[str]:
        return list(choices() if callable(choices) else choices)

    class _Choice(Range):
        def problem(self, value: Any) -> str | None:
            if value is None or value in known():
                return None
            return f"unknown {what} {value!r}" + did_you_mean(value, known(), listing=True)

    return {KEY: _Choice(what, lambda v: v in known())}


def satisfies(test: Callable[[Any], bool], what: str) -> dict[str, Range]:
    """Field metadata: any other check, ``what`` describing the accepted values."""
    return {KEY: Range(what, test)}


def range_of(field: dataclasses.Field) -> Range | None:
    """The :class:`Range` declared on a dataclass field, if any."""
    return field.metadata.get(KEY)


def check_ranges(obj: Any) -> None:
    """Raise ``ValueError`` naming the first field of dataclass ``obj`` outside its range."""
    for f in dataclasses.fields(obj):
        declared = range_of(f)
        problem = declared.problem(getattr(obj, f.name)) if declared else None
        if problem:
            raise ValueError(f"{f.name} {problem}")


def did_you_mean(name: Any, options: Iterable[str], listing: bool = False) -> str:
    """`` (did you mean X?)`` for a near miss; with ``listing``, the known options too (when
    there are at most 12 of them)."""
    options = list(options)
    close = difflib.get_close_matches(str(name), options, n=1, cutoff=0.6)
    known = ", ".join(options) if listing and len(options) <= 12 else ""
    if close and known:
        return f" (did you mean {close[0]}? known: {known})"
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (known: {known})" if known else ""
