"""Argument checks shared by the settings and the public methods: one rule per kind of value.

A rule is a function returning ``None`` for a good value and otherwise what the value must be
(``"must be a positive finite number of seconds"``). ``setting(rule)`` makes it an attrs validator
raising ``ConfigurationError`` as ``Timeouts.request: must be …, got inf``; ``argument(field,
value, rule)`` raises ``ValidationError`` for a method's argument. Booleans are never numbers, and
a number is a real ``int`` or ``float`` (no strings, no ``Decimal``): nothing is coerced.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import attrs

from ._errors import ConfigurationError, ValidationError

__all__ = [
    "Rule",
    "argument",
    "boolean",
    "fraction",
    "integer",
    "non_negative",
    "path",
    "positive_rate",
    "seconds",
    "setting",
    "show",
]

Rule = Callable[[object], "str | None"]


def _real(value: object) -> float | None:
    """``value`` as a float if it is an int or float (not a bool) that fits one, else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond any float
        return None


def seconds(*, zero: bool = False, infinite: bool = False) -> Rule:
    """A duration: positive (or non-negative with ``zero``), finite unless ``infinite``."""
    sign = "non-negative" if zero else "positive"
    finite = "" if infinite else " finite"
    expected = f"must be a {sign}{finite} number of seconds"

    def rule(value: object) -> str | None:
        number = _real(value)
        if number is None or math.isnan(number) or (math.isinf(number) and not infinite):
            return expected
        return None if (number >= 0 if zero else number > 0) else expected

    return rule


def non_negative(value: object) -> str | None:
    """A finite number ``>= 0`` (a factor, not a duration)."""
    number = _real(value)
    if number is None or not 0 <= number < math.inf:
        return "must be a non-negative finite number"
    return None


def positive_rate(value: object) -> str | None:
    """A finite number ``> 0`` of events per second."""
    number = _real(value)
    if number is None or not 0 < number < math.inf:
        return "must be a positive finite number per second"
    return None


def fraction(value: object) -> str | None:
    """A number in ``[0, 1)``."""
    number = _real(value)
    if number is None or not 0 <= number < 1:
        return "must be a number in [0, 1)"
    return None


def integer(low: int) -> Rule:
    """An ``int`` (not a bool, not a float) of at least ``low``."""
    expected = "must be a positive integer" if low == 1 else f"must be an integer >= {low}"

    def rule(value: object) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return expected
        return None

    return rule


def boolean(value: object) -> str | None:
    """``True`` or ``False`` itself: ``"false"``, ``0`` and ``None`` are refused, not tested."""
    return None if isinstance(value, bool) else "must be True or False"


def path(value: object) -> str | None:
    """A non-empty ``str`` or ``os.PathLike`` of one, without NUL characters."""
    text = os.fspath(value) if isinstance(value, (str, os.PathLike)) else None
    if not isinstance(text, str):
        return "must be a path (a str or os.PathLike)"
    if not text or "\0" in text:
        return "must be a non-empty path without NUL characters"
    return None


def show(value: object) -> str:
    """``value`` for a message: short, and with its type when it is not a number."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of {len(str(abs(value)))} digits"
    text = repr(value)
    if len(text) > 60:
        text = text[:59] + "…"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return text
    return f"{text} ({type(value).__name__})"


def argument(field: str, value: object, rule: Rule) -> None:
    """Raise ``ValidationError`` naming ``field`` unless ``rule`` accepts ``value``."""
    problem = rule(value)
    if problem is not None:
        raise ValidationError(field, f"{problem}, got {show(value)}")


def setting(rule: Rule) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator raising ``ConfigurationError`` as ``Class.field: problem, got value``."""

    def validate(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        problem = rule(value)
        if problem is not None:
            name = f"{type(instance).__name__}.{attribute.name}"
            raise ConfigurationError(f"{name}: {problem}, got {show(value)}")

    return validate
