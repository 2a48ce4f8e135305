"""Hot reload of rule files: look, validate, swap, or keep the last good rules.

`check_now()` stats the rule files (for a directory: its *.yml and *.yaml) and compares path,
size, mtime and inode with the last look; the runtime's scheduler calls it every `rules_interval`
(0.5 s) as one more job, so a changed, added or removed file is picked up within a second without
any new dependency or thread.
A changed set is loaded in full; if any file is broken, every error is logged as JSON,
the failure is counted, and the RuleSet that was running keeps running. The swap is one
reference assignment, so `current()` never sees a half-loaded set.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller.actions.plugin import ParamValue
from controller.rules import RuleError, RuleSet, load_rules, rule_files
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.controller.rules")

Signature = tuple[tuple[str, int, int, int], ...]


class RuleWatcher:
    """Keeps the current RuleSet of `paths_or_dir` up to date with the files on disk.

    The constructor loads the rules once and raises RuleError if they are invalid, so the
    controller refuses to start on broken rules; after that, broken edits are rejected.
    """

    def __init__(
        self,
        paths_or_dir: str | Sequence[str],
        *,
        overrides: Mapping[str, float] = MappingProxyType({}),
        defaults: Mapping[str, ParamValue] = MappingProxyType({}),
        registry: CollectorRegistry,
    ) -> None:
        self._paths = [paths_or_dir] if isinstance(paths_or_dir, str) else list(paths_or_dir)
        self._overrides = dict(overrides)
        self._defaults = dict(defaults)
        self._reloads = Counter("swarmguard_rules_reload", "Rule file reloads by result",
                                ["result"], registry=registry)
        self._last_ok = Gauge("swarmguard_rules_last_reload_success",
                              "1 if the last rule reload succeeded, 0 if it was rejected", registry=registry)
        self._loaded = Gauge("swarmguard_rules_loaded", "Rules currently in effect", registry=registry)
        for result in ("success", "failure"):
            self._reloads.labels(result=result)
        self._lock = threading.Lock()  # a test may call check_now() beside the scheduled job
        self._signature = self._scan()
        self._current = load_rules(self._paths, overrides=self._overrides, defaults=self._defaults)
        self._record_success(self._current, first=True)

    def current(self) -> RuleSet:
        """The RuleSet in effect (the last one that loaded without errors)."""
        return self._current

    def check_now(self) -> bool:
        """Looks at the files once; True if a new RuleSet took effect."""
        with self._lock:
            signature = self._scan()
            if signature == self._signature:
                return False
            self._signature = signature
            try:
                ruleset = load_rules(self._paths, overrides=self._overrides, defaults=self._defaults)
            except RuleError as exc:
                self._reloads.labels(result="failure").inc()
                self._last_ok.set(0)
                event(log, "rule files rejected, previous rules stay in effect", level=logging.ERROR,
                      errors=exc.errors, error_count=len(exc.errors), rules_in_effect=len(self._current.rules))
                return False
            self._current = ruleset
            self._record_success(ruleset, first=False)
            return True

    def _scan(self) -> Signature:
        files, _ = rule_files(self._paths)
        seen = []
        for path in files:
            try:
                st = os.stat(path)
            except OSError:
                continue
            seen.append((path, st.st_size, st.st_mtime_ns, st.st_ino))
        missing = tuple((path, -1, -1, -1) for path in self._paths if not os.path.exists(path))
        return tuple(seen) + missing

    def _record_success(self, ruleset: RuleSet, *, first: bool) -> None:
        self._reloads.labels(result="success").inc()
        self._last_ok.set(1)
        self._loaded.set(len(ruleset.rules))
        event(log, "rules loaded" if first else "rules reloaded", files=list(ruleset.files),
              rules=[rule.name for rule in ruleset.rules], thresholds=dict(ruleset.thresholds))
