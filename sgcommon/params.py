"""Query parameters parsed one way everywhere: every HTTP endpoint of the project reads its
parameters through these helpers, so a value is either what the grammar below says or a
ParamError with a message naming the parameter (the endpoint answers 400 with it).

Python's own conversions are too lenient for input from the network: `"²".isdigit()` is True
but `int("²")` raises; `int("١٢")` (Arabic-Indic digits) is 12; `int(" 5 ")`, `int("+5")` and
`float("1_000")` succeed. Here:

- an integer is 1 to 18 ASCII digits, nothing else (no sign, space, underscore or exponent);
- a number is ASCII `[+-]digits[.digits][e[+-]digits]` (also `.5` and `5.`), finite;
- a parameter given more than once, or given empty where it is required, is refused.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Protocol

_INT = re.compile(r"[0-9]{1,18}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_SHOWN = 40  # characters of a bad value repeated in the message


class ParamError(ValueError):
    """A bad query parameter: `parameter` names it, `message` says what is wrong."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


class MultiArgs(Protocol):
    """werkzeug's MultiDict (Flask's request.args) and anything else with getlist()."""

    def getlist(self, key: str) -> list[str]: ...
    def __iter__(self) -> Iterator[str]: ...


Args = MultiArgs | Mapping[str, str]


def shown(raw: str) -> str:
    """A bad value as the message repeats it: quoted, escaped, cut to a readable length."""
    return repr(raw[:_SHOWN] + ("..." if len(raw) > _SHOWN else ""))


def single(args: Args, name: str) -> str | None:
    """The one value of `name`, None when absent; ParamError when it is given more than once."""
    getlist = getattr(args, "getlist", None)
    if getlist is not None:
        values = list(getlist(name))
        if len(values) > 1:
            raise ParamError(name, f"given {len(values)} times; give it once")
        return values[0] if values else None
    value = args.get(name)  # type: ignore[union-attr]
    return value if value is None else str(value)


def parse_int(raw: str, name: str, *, low: int, high: int) -> int:
    """`raw` as an integer in low..high (ASCII digits only)."""
    if not _INT.fullmatch(raw):
        raise ParamError(name, f"expected an integer from {low} to {high} (ASCII digits only), got {shown(raw)}")
    value = int(raw)
    if not low <= value <= high:
        raise ParamError(name, f"expected an integer from {low} to {high}, got {value}")
    return value


def parse_number(raw: str, name: str) -> float:
    """`raw` as a finite number; the range is the caller's to check."""
    if not _NUMBER.fullmatch(raw):
        if raw.strip().lower().lstrip("+-") in ("nan", "inf", "infinity"):
            raise ParamError(name, f"must be a finite number, got {shown(raw)}")
        raise ParamError(name, f"must be a number (ASCII digits, optional sign, point and exponent), got {shown(raw)}")
    value = float(raw)
    if not math.isfinite(value):
        raise ParamError(name, f"must be a finite number, got {shown(raw)}")
    return value


def query_int(args: Args, name: str, *, default: int, low: int, high: int) -> int:
    """An optional integer parameter: absent gives `default`; present (even empty) must be valid."""
    raw = single(args, name)
    return default if raw is None else parse_int(raw, name, low=low, high=high)


def query_number(args: Args, name: str, *, default: float | None = None) -> float:
    """A number parameter; absent or empty gives `default`, or ParamError when there is none."""
    raw = single(args, name)
    if raw is None or raw == "":
        if default is None:
            raise ParamError(name, "is required")
        return default
    return parse_number(raw, name)
