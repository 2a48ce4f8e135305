"""Hot reload of rule files: look, validate, swap, or keep the last good rules.

`check_now()` stats the rule files (for a directory: its *.yml and *.yaml) and compares path,
device, inode, mode, size, mtime and ctime with the last look; the runtime's scheduler calls it
every `rules_interval` (0.5 s) as one more job, so a changed, added, removed or chmod-ed file is
picked up within a second without any new dependency or thread. A changed set is loaded in full; if anything is wrong (a
RuleError, or any unexpected exception), every error is logged as JSON, the failure is
counted, `swarmguard_rules_last_reload_success` drops to 0 and the RuleSet that was
running keeps running. The swap is one reference assignment, so `current()` never sees a
half-loaded set.

After a failure the watcher also keeps a digest of the files' bytes: a file read while it
was being written can look the same to stat() (same size, an mtime within the clock tick)
once the write completes, so the load is retried as soon as the bytes differ from the ones
that failed, but the same broken bytes are not loaded (and logged) again and again.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import traceback
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller.actions.plugin import ParamValue
from controller.rules import RuleError, RuleSet, load_rules, rule_files
from controller.rules.loader import RuleFileError, read_rule_file
from controller.rules.ruleset import printable
from sgcommon.jsonlog import event, get_logger

log = get_logger("swarmguard.controller.rules")

Signature = tuple[tuple[str, int, int, int, int, int, int], ...]


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
        self._failed_digest: str | None = None  # the files' bytes when the last load failed
        self._signature = self._scan()
        self._current = self._load()
        self._record_success(self._current, first=True)

    def current(self) -> RuleSet:
        """The RuleSet in effect (the last one that loaded without errors)."""
        return self._current

    def check_now(self) -> bool:
        """Looks at the files once; True if a new RuleSet took effect. Never raises: any failure
        is counted and logged, the rules in effect stay, and the next change is tried again."""
        with self._lock:
            try:
                signature = self._scan()
                if signature == self._signature and not self._changed_since_failure():
                    return False
                self._signature = signature
                self._failed_digest = self._digest()  # until the load succeeds
                ruleset = self._load()
            except RuleError as exc:
                self._record_failure(exc.errors)
                return False
            except Exception as exc:  # a surprise must not stop hot reload nor pass for a success
                self._record_failure([printable(f"unexpected error while looking at the rule files: "
                                                f"{type(exc).__name__}: {exc}")], trace=traceback.format_exc())
                return False
            self._failed_digest = None
            self._current = ruleset
            self._record_success(ruleset, first=False)
            return True

    def _load(self) -> RuleSet:
        """load_rules; an unexpected exception becomes a RuleError too (its traceback is logged), so
        the controller refuses to start, or a reload is rejected, with a message rather than a crash."""
        try:
            return load_rules(self._paths, overrides=self._overrides, defaults=self._defaults)
        except RuleError:
            raise
        except Exception as exc:
            message = printable(f"unexpected error while loading the rule files: {type(exc).__name__}: {exc}")
            event(log, "rule files could not be loaded", level=logging.ERROR, error=message,
                  traceback=traceback.format_exc())
            raise RuleError([message]) from exc

    def _scan(self) -> Signature:
        files, _ = rule_files(self._paths)
        seen = []
        for path in files:
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            seen.append((path, st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
        missing = tuple((path, -1, -1, -1, -1, -1, -1) for path in self._paths if not os.path.exists(path))
        return tuple(seen) + missing

    def _digest(self) -> str:
        """A hash of every rule file's bytes (or of why it cannot be read)."""
        digest = hashlib.sha256()
        for path in rule_files(self._paths)[0]:
            digest.update(os.fsencode(path) + b"\0")
            try:
                digest.update(read_rule_file(path))
            except RuleFileError as exc:
                digest.update(f"\0error: {exc}".encode("utf-8", "backslashreplace"))
            digest.update(b"\0")
        return digest.hexdigest()

    def _changed_since_failure(self) -> bool:
        return self._failed_digest is not None and self._digest() != self._failed_digest

    def _record_failure(self, errors: list[str], *, trace: str | None = None) -> None:
        self._reloads.labels(result="failure").inc()
        self._last_ok.set(0)
        extra = {"traceback": trace} if trace else {}
        event(log, "rule files rejected, previous rules stay in effect", level=logging.ERROR,
              errors=errors, error_count=len(errors), rules_in_effect=len(self._current.rules), **extra)

    def _record_success(self, ruleset: RuleSet, *, first: bool) -> None:
        self._reloads.labels(result="success").inc()
        self._last_ok.set(1)
        self._loaded.set(len(ruleset.rules))
        event(log, "rules loaded" if first else "rules reloaded", files=list(ruleset.files),
              rules=[rule.name for rule in ruleset.rules], thresholds=dict(ruleset.thresholds))
