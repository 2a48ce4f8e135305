"""Swarm configs as the rest of SwarmGuard sees them: small frozen views, and the engine's limits.

Why it exists: the operator's rule sets are stored as Swarm configs (docs/rules.md, "Rules on a real
cluster"), so the one Docker adapter (`swarm.SwarmAdapter`) lists, inspects, creates, relabels and
removes configs, and hands out `ConfigView`s instead of engine JSON. The endpoints and fields are
the same in every API version SwarmGuard speaks (1.41 to 1.55):
https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Config.

Facts the callers rely on, checked on Docker Engine 20.10 and in swarmkit
(https://github.com/moby/swarmkit/blob/master/manager/controlapi/config.go):
- a config's Data cannot change; only its Labels can (`POST /configs/{id}/update?version=N`, any
  other change answers 400 "only updates to Labels are allowed"; a stale version 500 "update out
  of sequence");
- Data must be 1 to 1023999 bytes ("config data must be larger than 0 and less than 1024000 bytes");
- names are at most 64 characters of `[a-zA-Z0-9-_.]`, starting and ending with a letter or digit;
- `Version.Index` is the raft index of the object's last write, one sequence for every object of the
  cluster, so of two configs the one written last has the higher index;
- the list (`GET /configs`) carries each config's Data, like the inspect does;
- the configs API answers only on a manager (503 "This node is not a swarm manager" elsewhere).
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_CONFIG_DATA = 1000 * 1024 - 1  # swarmkit's MaxConfigSize is 1000 KiB, and Data must be smaller
CONFIG_NAME_RE = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9_.-]{0,62}[a-zA-Z0-9])?")


@dataclass(frozen=True)
class ConfigView:
    id: str
    name: str
    version: int  # Version.Index: higher means written later (any object of the cluster)
    labels: Mapping[str, str] = field(default_factory=dict)
    data: bytes = b""
    created_at: str = ""
    updated_at: str = ""  # the last write: creation or a label change
    data_error: str = ""  # why Data could not be decoded ("" when it could)


def config_view(doc: Mapping[str, Any]) -> ConfigView:
    """A view of one config document (`GET /configs/{id}` or an element of `GET /configs`).

    Data that is not base64 is kept as `data_error` rather than raised: the caller decides what a
    config it cannot read means (the controller refuses the rule set and keeps the last good one).
    """
    spec = doc.get("Spec") or {}
    raw = spec.get("Data") or ""
    data, problem = b"", ""
    try:
        data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else b""
        if not isinstance(raw, str):
            problem = f"Data is not base64 text (a JSON {type(raw).__name__})"
    except (binascii.Error, ValueError) as exc:
        problem = f"Data is not base64 ({exc})"
    labels = spec.get("Labels") or {}
    return ConfigView(
        id=str(doc.get("ID", "")),
        name=str(spec.get("Name", "")),
        version=int((doc.get("Version") or {}).get("Index", 0)),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
        data=data,
        created_at=str(doc.get("CreatedAt", "")),
        updated_at=str(doc.get("UpdatedAt", "")),
        data_error=problem,
    )


def config_spec(name: str, data: bytes, labels: Mapping[str, str]) -> dict[str, Any]:
    """The body of `POST /configs/create`. Data is standard base64: the engine decodes the field as Go's
    JSON does for bytes (the v1.41 reference's "URL-safe" notwithstanding; newer ones say standard),
    and docker-py sends the same."""
    return {"Name": name, "Labels": dict(labels), "Data": base64.b64encode(data).decode("ascii")}
