"""Rule sets stored as Swarm configs, and which one is active: the operator's rules on a real cluster.

Why it exists: a rules file baked into the stack as a Swarm config cannot change (a config's Data is
immutable), and a bind mount only exists on one host. So `swarmguard-controller rules apply DIR`
stores a validated set as its own config, named by its content (controller/rules/bundle.py), and
marks it active; the controller, on whichever manager it runs, reads the active set through the
Engine API and swaps it in without a restart (controller/reload.py). docs/rules.md, "Rules on a real
cluster", is the operator's side of it.

Which set is active lives in the configs' own labels, not in the controller service:

- `swarmguard.rules.set=<format>` marks a config as a stored rule set (listing, `rules prune`);
- `swarmguard.rules.files=a.yml,b.yml` names its files (for `rules status`);
- `swarmguard.rules.applied=<UTC time>` says when `rules apply` last made it active;
- `swarmguard.rules.active=true` marks the active set. Applying labels the new set, then takes the
  label off the sets written before it; should two carry it for a moment (or after an interrupted
  apply), the one written last wins: the highest `Version.Index`, the cluster's one write sequence
  (sgcommon/engine/configs.py). No set carries it: the controller reads its rule files (the image's
  defaults, or a mounted directory with hot reload).

A service label would also do, but `docker stack deploy` rewrites a service's labels from the stack
file, so every redeploy (a new image, say) would silently put the defaults back; the configs'
labels are left alone by `docker stack deploy` and `docker stack rm`, and the controller needs to
know nothing about its own service.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from controller.rules.bundle import FORMAT, NAME_PREFIX, RuleBundle
from sgcommon.engine.configs import ConfigView
from sgcommon.engine.errors import EngineError

SET_LABEL = "swarmguard.rules.set"
FILES_LABEL = "swarmguard.rules.files"
ACTIVE_LABEL = "swarmguard.rules.active"
APPLIED_LABEL = "swarmguard.rules.applied"  # when `rules apply` last made it active (the operator's clock)
MAX_FILES_LABEL = 1000  # characters of the file list kept in the label (it is for people, not for loading)


class ConfigStore(Protocol):
    """The configs part of sgcommon.engine.swarm.SwarmAdapter."""

    def list_configs(self, *, label: str | None = None) -> list[ConfigView]: ...
    def get_config(self, name_or_id: str) -> ConfigView: ...
    def create_config(self, name: str, data: bytes, *, labels: Mapping[str, str]) -> ConfigView: ...
    def update_config_labels(self, name_or_id: str, labels: Mapping[str, str | None], *,
                             always: bool = False) -> ConfigView: ...
    def remove_config(self, name_or_id: str) -> None: ...


def is_active(config: ConfigView) -> bool:
    return config.labels.get(ACTIVE_LABEL) == "true"


def newest_first(configs: list[ConfigView]) -> list[ConfigView]:
    return sorted(configs, key=lambda c: c.version, reverse=True)


@dataclass(frozen=True)
class Applied:
    """What `RuleConfigs.apply` did."""

    config: ConfigView
    created: bool  # False: a config with this content was stored already and is reused
    deactivated: tuple[str, ...]  # sets that were active before


class RuleConfigs:
    """Stored rule sets through the Engine API (a manager's): the active one, apply, reset, prune."""

    def __init__(self, store: ConfigStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    def active(self) -> ConfigView | None:
        """The active set: of the configs labelled active, the one written last; None: none is."""
        marked = [c for c in self._store.list_configs(label=f"{ACTIVE_LABEL}=true") if is_active(c)]
        return newest_first(marked)[0] if marked else None

    def stored(self) -> list[ConfigView]:
        """Every stored rule set, the most recently applied first (by its applied time, then by write)."""
        sets = [c for c in self._store.list_configs(label=SET_LABEL) if c.name.startswith(NAME_PREFIX)]
        return sorted(sets, key=lambda c: (c.labels.get(APPLIED_LABEL) or c.created_at, c.version), reverse=True)

    def apply(self, bundle: RuleBundle) -> Applied:
        """Stores `bundle` (once: the name is its content) and makes it the active set.

        The caller has validated it. A config of that name with other content (not made by
        `rules apply`) is refused with EngineError rather than activated.
        """
        data = bundle.encode()
        name = bundle.name
        labels = {SET_LABEL: str(FORMAT), FILES_LABEL: ",".join(bundle.file_names)[:MAX_FILES_LABEL],
                  ACTIVE_LABEL: "true", APPLIED_LABEL: _rfc3339(self._clock())}
        created = False
        try:
            config = self._store.create_config(name, data, labels=labels)
            created = True
        except EngineError as exc:
            if exc.status != 409:  # 409: the name is taken: the same set, stored before (or just now)
                raise
            config = self._store.get_config(name)
            if config.data != data:
                raise EngineError(f"config {name} exists with other content than the rule set (not made by "
                                  "`rules apply`?): remove it or rename it") from exc
            # One write, even when it is active already: it makes it the set written last, so it
            # wins over any other still labelled active.
            config = self._store.update_config_labels(config.id, labels, always=True)
        deactivated = []
        for other in self._store.list_configs(label=f"{ACTIVE_LABEL}=true"):
            if other.id != config.id and other.version < config.version:  # a later apply wins, not us
                self._store.update_config_labels(other.id, {ACTIVE_LABEL: None})
                deactivated.append(other.name)
        return Applied(config=config, created=created, deactivated=tuple(deactivated))

    def reset(self) -> list[str]:
        """No set is active any more (the controller goes back to its rule files); the names of
        the sets that were. The oldest loses the label first, so the newest stays the one in
        effect until it goes too."""
        marked = [c for c in self._store.list_configs(label=f"{ACTIVE_LABEL}=true") if is_active(c)]
        for config in reversed(newest_first(marked)):
            self._store.update_config_labels(config.id, {ACTIVE_LABEL: None})
        return [c.name for c in newest_first(marked)]

    def prune(self, keep: int) -> list[str]:
        """Removes stored sets beyond the `keep` most recently applied, the active one always kept
        (and counted). Returns the names removed."""
        if keep < 1:
            raise ValueError("keep must be >= 1 (the active set is always kept)")
        sets = self.stored()
        active = self.active()
        kept = [active] if active else []
        removed = []
        for config in sets:
            if active is not None and config.id == active.id:
                continue
            if len(kept) < keep:
                kept.append(config)
                continue
            self._store.remove_config(config.id)
            removed.append(config.name)
        return removed


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
