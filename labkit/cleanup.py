"""Puts a swarm back to a clean state after tests (`tests/scripts/cleanup`).

Removes the SwarmGuard stack's services (and a stray `web-stress` service made by hand), the
availability probes left running, waits until their tasks are gone and says what is left.
`--full` also removes stopped containers on every lab node. The lab itself (engines, registry,
network) stays: `swarm/lab down` removes that.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from sgcommon.engine import connect, translate
from labkit import labinfo
from labkit.zerodowntime import PROBE_LABEL
from sgcommon.version import add_version_argument


def doomed_services(services: Sequence[dict[str, Any]], stack: str) -> list[str]:
    """Names of the services to remove: those of `stack`, and any named web-stress."""
    names = []
    for svc in services:
        spec = svc["Spec"]
        labels = spec.get("Labels") or {}
        if labels.get("com.docker.stack.namespace") == stack or spec["Name"] == "web-stress":
            names.append(spec["Name"])
    return sorted(names)


def remove_services(client: Any, names: Sequence[str], *, wait: float = 60.0) -> None:
    """Removes the services, then waits until the managers have dropped all their tasks."""
    with translate("remove services"):
        ids = {s["ID"] for s in client.services() if s["Spec"]["Name"] in names}
        for name in names:
            print(f"    removing service {name}", flush=True)
            client.remove_service(name)
        deadline = time.monotonic() + wait
        while ids and time.monotonic() < deadline:
            if not any(t.get("ServiceID") in ids for t in client.tasks()):
                return
            time.sleep(0.5)
    if ids:
        print(f"    tasks of {', '.join(names)} still listed after {wait:.0f} s", flush=True)


def remove_probes(client: Any) -> int:
    with translate("remove probes"):
        probes = client.containers(all=True, filters={"label": PROBE_LABEL})
        for container in probes:
            client.remove_container(container["Id"], force=True)
    return len(probes)


def prune_stopped(sockets: Sequence[str]) -> None:
    for url in sockets:
        client = connect(url, timeout=60)
        try:
            with translate(f"prune {url}"):
                pruned = client.prune_containers()
        finally:
            client.close()
        print(f"    {url}: removed {len(pruned.get('ContainersDeleted') or [])} stopped containers")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cleanup", description="Remove SwarmGuard's test services and probes.")
    add_version_argument(parser)
    parser.add_argument("--docker-host", help="a manager's engine; default: the lab")
    parser.add_argument("--stack", default=labinfo.STACK, help="stack name (default %(default)s)")
    parser.add_argument("--full", action="store_true", help="also remove stopped containers on every lab node")
    return parser.parse_args(argv)


@labinfo.lab_tool("cleanup")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    lab = None if args.docker_host else labinfo.check_lab()
    client = connect(args.docker_host or lab.host_socket, timeout=30)
    print(f"==> cleanup of stack {args.stack}", flush=True)
    with translate("services"):
        names = doomed_services(client.services(), args.stack)
    remove_services(client, names)
    print(f"    removed {remove_probes(client)} probe containers")
    if args.full:
        prune_stopped(list(lab.node_sockets.values()) if lab else [args.docker_host])
    with translate("services"):
        left = sorted(s["Spec"]["Name"] for s in client.services())
    print(f"==> clean: services left: {', '.join(left) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
