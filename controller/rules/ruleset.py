"""What a loaded rule file becomes: immutable Rule and RuleSet values the engine reads.

Kept apart from the YAML loader so the engine and its tests can build rules directly and
so a RuleSet can be swapped atomically by the hot reloader while the engine runs.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from controller.model import ServiceInfo
from controller.rules.expr import Condition

if TYPE_CHECKING:
    from controller.actions.plugin import ActionPlugin, ParamValue


class RuleError(ValueError):
    """One or more rule files are invalid; `.errors` lists every problem as
    "file:line: rule NAME: message"."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = [printable(error) for error in errors]
        super().__init__("\n".join(self.errors))


def printable(text: str) -> str:
    """`text` as one printable line: what str.isprintable() refuses (control and format characters,
    line separators, lone surrogates, unassigned code points; a file name can hold any of them) is
    written as an escape, so a message stays one `file:line: ...` line, prints and logs as UTF-8,
    and cannot hide text (a right-to-left override, say)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if char in "\t\n\r":
        return repr(char)[1:-1]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


@dataclass(frozen=True)
class Rule:
    """One rule: which services, which condition held for how long, and what to do."""

    name: str
    action: ActionPlugin  # from controller/actions/registry.py
    scope: str  # container | service
    condition: Condition
    services: tuple[str, ...] = ("*",)  # glob patterns on the service name
    labels: tuple[tuple[str, str], ...] = ()  # every label must match ("*" = any value)
    hold_samples: int = 1  # `for: N`: N consecutive breaching samples
    hold_seconds: float | None = None  # `for: 90s`: breaching for at least this long
    cooldown: float = 0.0
    priority: int = 100  # lower goes first; one decision per service per evaluation
    enabled: bool = True
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}))  # every one the action takes
    description: str = ""
    source: str = "<memory>"  # file:line, for messages
    fingerprint: str = ""  # changes when the rule's meaning changes (resets its counters)

    def covers(self, service: ServiceInfo) -> bool:
        """True if this rule applies to `service` (name pattern and label opt-in)."""
        if self.services != ("*",) and not any(fnmatch.fnmatchcase(service.name, pattern) for pattern in self.services):
            return False
        for key, wanted in self.labels:
            value = service.labels.get(key)
            if value is None or (wanted != "*" and value != wanted):
                return False
        return True

    def hold_text(self) -> str:
        if self.hold_seconds is not None:
            return f"{self.hold_seconds:g}s"
        return f"{self.hold_samples} samples"


@dataclass(frozen=True)
class RuleSet:
    """Every rule of every loaded file, in evaluation order (priority, then file order)."""

    rules: tuple[Rule, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    files: tuple[str, ...] = ()

    def by_name(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
