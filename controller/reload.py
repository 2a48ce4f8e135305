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

The rules have two sources. The files are the default. With `configs` (controller/ruleconfigs.py)
the watcher also looks, every `configs_interval` seconds, for the rule set the operator applied
with `swarmguard-controller rules apply` (a Swarm config, read through the Engine API) and, while
one is active, that set is in effect and the files are not looked at; when none is active any more,
the files are loaded again. A stored set goes through the same loader and the same failure handling:
a broken one (whatever its bytes: the controller trusts nothing it reads) is counted, logged and not
tried again (a config never changes), and the last good rules stay. An Engine API that cannot be
asked changes nothing (logged once). Which set is in effect, by name and source, is on /metrics
(`swarmguard_rules_info`, `swarmguard_rules_applied_timestamp_seconds`) and in every log line.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from controller.actions.plugin import ParamValue
from controller.ruleconfigs import APPLIED_LABEL
from controller.rules import RuleError, RuleSet, bundle, load_rules, rule_files
from controller.rules.loader import RuleFileError, load_rule_texts, read_rule_file
from controller.rules.ruleset import printable
from sgcommon.jsonlog import OnceLogger, event, get_logger

if TYPE_CHECKING:
    from controller.ruleconfigs import RuleConfigs
    from sgcommon.engine.configs import ConfigView

log = get_logger("swarmguard.controller.rules")

Signature = tuple[tuple[str, int, int, int, int, int, int], ...]


FILES, CONFIG = "files", "config"  # the two sources of the rules in effect


class RuleWatcher:
    """Keeps the current RuleSet up to date with the files on disk at `paths_or_dir` or, when
    `configs` is given, with the rule set applied to the cluster while there is one.

    The constructor loads the files once and raises RuleError if they are invalid, so the
    controller refuses to start on broken rules; after that, broken edits are rejected. It then
    takes the applied set, if any, into effect (a problem there is a rejected reload, not fatal).
    """

    def __init__(
        self,
        paths_or_dir: str | Sequence[str],
        *,
        overrides: Mapping[str, float] = MappingProxyType({}),
        defaults: Mapping[str, ParamValue] = MappingProxyType({}),
        registry: CollectorRegistry,
        configs: RuleConfigs | None = None,
        configs_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._paths = [paths_or_dir] if isinstance(paths_or_dir, str) else list(paths_or_dir)
        self._overrides = dict(overrides)
        self._defaults = dict(defaults)
        self._reloads = Counter("swarmguard_rules_reload", "Rule file reloads by result",
                                ["result"], registry=registry)
        self._last_ok = Gauge("swarmguard_rules_last_reload_success",
                              "1 if the last rule reload succeeded, 0 if it was rejected", registry=registry)
        self._loaded = Gauge("swarmguard_rules_loaded", "Rules currently in effect", registry=registry)
        self._info = Gauge("swarmguard_rules_info", "The rule set in effect (always 1): its name, from its content, "
                           "and its source (config: applied with `rules apply`; files: the rule files)",
                           ["set", "source"], registry=registry)
        self._applied_at = Gauge("swarmguard_rules_applied_timestamp_seconds",
                                 "When the rule set in effect took effect (Unix time)", registry=registry)
        for result in ("success", "failure"):
            self._reloads.labels(result=result)
        self._lock = threading.Lock()  # a test may call check_now() beside the scheduled job
        self._failed_digest: str | None = None  # the files' bytes when the last load failed
        self._configs = configs
        self._configs_interval = configs_interval
        self._clock = clock
        self._monotonic = monotonic
        self._once = OnceLogger(log)
        self._next_look = 0.0  # monotonic time of the next look at the applied set
        self._wanted: ConfigView | None = None  # the applied set, None: the files are wanted
        self._in_effect: tuple[str, str, str] = (FILES, "", "")  # source, set name, config id
        self._refused: str | None = None  # id of the applied set that failed to load (configs never change)
        self._signature = self._scan()
        self._current = self._load()
        self._record_success(self._current, source=FILES, name=self._files_name(), first=True)
        if configs is not None:
            self.check_now()

    def current(self) -> RuleSet:
        """The RuleSet in effect (the last one that loaded without errors)."""
        return self._current

    @property
    def source(self) -> tuple[str, str]:
        """(source, set name) of the rules in effect: ("files" or "config", "swarmguard-rules-...")."""
        return self._in_effect[0], self._in_effect[1]

    def check_now(self) -> bool:
        """Looks at the applied set (when due) and at the files once; True if a new RuleSet took
        effect. Never raises: any failure is counted and logged, the rules in effect stay, and the
        next change is tried again."""
        with self._lock:
            if self._configs is not None and self._monotonic() >= self._next_look:
                self._next_look = self._monotonic() + self._configs_interval
                self._look_at_configs(self._configs)
            if self._wanted is not None:
                return self._check_config(self._wanted)
            return self._check_files()

    def _look_at_configs(self, configs: RuleConfigs) -> None:
        """Which set the cluster wants now; an Engine API that cannot be asked changes nothing."""
        try:
            wanted = configs.active()
        except Exception as exc:  # EngineError; anything else must not stop the files' hot reload either
            self._once.warn("configs", "cannot look at the applied rule set; the rules in effect stay",
                            error=printable(str(exc)), error_type=type(exc).__name__)
            return
        self._once.clear("configs", "the applied rule set can be looked at again")
        if (wanted.id if wanted else None) == (self._wanted.id if self._wanted else None):
            return
        event(log, "applied rule set changed", applied=wanted.name if wanted else None,
              was=self._wanted.name if self._wanted else None, in_effect=self._in_effect[1])
        self._wanted = wanted
        self._refused = None  # a set applied again is tried again (and a refusal logged again)
        if wanted is not None and wanted.id == self._in_effect[2]:
            # The set in effect applied again (a roll-back after a refused set): taken again, so
            # its new applied time shows and the refusal before it is no longer the last word.
            self._in_effect = (self._in_effect[0], self._in_effect[1], "")
        if wanted is None and self._in_effect[0] == CONFIG:
            self._signature = ()  # back to the files: load them whatever they look like

    def _check_config(self, config: ConfigView) -> bool:
        if config.id in (self._in_effect[2], self._refused):
            return False
        try:
            ruleset = self._load_config(config)
        except Exception as exc:
            self._refused = config.id
            return self._failed(exc, what="the applied rule set", source=CONFIG, name=config.name)
        self._refused = None
        self._swap(ruleset, source=CONFIG, name=config.name, config_id=config.id,
                   applied=config.labels.get(APPLIED_LABEL))
        return True

    def _load_config(self, config: ConfigView) -> RuleSet:
        """The RuleSet of a stored set; RuleError for anything wrong with it, whoever made it."""
        where = f"config {config.name}"
        if config.data_error:
            raise RuleError([f"{where}: {config.data_error}"])
        if config.name != bundle.name_of(config.data):
            raise RuleError([f"{where}: its name does not match its content (expected "
                             f"{bundle.name_of(config.data)}): not stored by `swarmguard-controller rules apply`"])
        files = bundle.decode(config.data, where=where).files
        return self._guarded(lambda: load_rule_texts(files, overrides=self._overrides, defaults=self._defaults),
                             what=where)

    def _check_files(self) -> bool:
        try:
            signature = self._scan()
            if signature == self._signature and not self._changed_since_failure():
                return False
            self._signature = signature
            self._failed_digest = self._digest()  # until the load succeeds
            ruleset = self._load()
        except Exception as exc:
            return self._failed(exc, what="the rule files", source=FILES, name=self._files_name())
        self._failed_digest = None
        self._swap(ruleset, source=FILES, name=self._files_name())
        return True

    def _failed(self, exc: Exception, *, what: str, source: str, name: str) -> bool:
        """Counts and logs a rejected load (a RuleError's errors, or a surprise with its traceback)."""
        if isinstance(exc, RuleError):
            self._record_failure(exc.errors, source=source, name=name)
        else:  # a surprise must not stop hot reload nor pass for a success
            self._record_failure([printable(f"unexpected error while looking at {what}: {type(exc).__name__}: {exc}")],
                                 source=source, name=name, trace=traceback.format_exc())
        return False

    def _swap(self, ruleset: RuleSet, *, source: str, name: str, config_id: str = "", applied: str | None = None) -> None:
        self._current = ruleset
        self._record_success(ruleset, source=source, name=name, config_id=config_id, applied=applied)

    def _files_name(self) -> str:
        """The files' set name (as `rules apply` would name them); "unnamed" if they cannot be read."""
        try:
            return bundle.from_paths(self._paths).name
        except Exception:  # a file that vanished or broke since it was loaded: the next look sees it
            return "unnamed"

    def _load(self) -> RuleSet:
        """load_rules, through _guarded."""
        return self._guarded(lambda: load_rules(self._paths, overrides=self._overrides, defaults=self._defaults),
                             what="the rule files")

    @staticmethod
    def _guarded(load: Callable[[], RuleSet], *, what: str) -> RuleSet:
        """`load()`; an unexpected exception becomes a RuleError too (its traceback is logged), so the
        controller refuses to start, or a reload is rejected, with a message rather than a crash."""
        try:
            return load()
        except RuleError:
            raise
        except Exception as exc:
            message = printable(f"unexpected error while loading {what}: {type(exc).__name__}: {exc}")
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

    def _record_failure(self, errors: list[str], *, source: str, name: str, trace: str | None = None) -> None:
        self._reloads.labels(result="failure").inc()
        self._last_ok.set(0)
        extra: dict[str, Any] = {"traceback": trace} if trace else {}
        event(log, "rule files rejected, previous rules stay in effect", level=logging.ERROR,
              errors=errors, error_count=len(errors), rejected_source=source, rejected_set=name,
              rules_in_effect=len(self._current.rules), source=self._in_effect[0], set=self._in_effect[1], **extra)

    def _record_success(self, ruleset: RuleSet, *, source: str, name: str, config_id: str = "",
                        applied: str | None = None, first: bool = False) -> None:
        self._in_effect = (source, name, config_id)
        self._reloads.labels(result="success").inc()
        self._last_ok.set(1)
        self._loaded.set(len(ruleset.rules))
        self._info.clear()
        self._info.labels(set=name, source=source).set(1)
        self._applied_at.set(self._clock())
        extra: dict[str, Any] = {"applied": applied} if applied else {}
        event(log, "rules loaded" if first else "rules reloaded", source=source, set=name, files=list(ruleset.files),
              rules=[rule.name for rule in ruleset.rules], thresholds=dict(ruleset.thresholds), **extra)
