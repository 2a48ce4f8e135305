"""Deploys SwarmGuard's stack (PRD script 1, `tests/scripts/deploy_web_stress`) and waits for it.

The production stack file is deployed unchanged; the lab adds swarm/stack.lab.yml, merged by the
docker CLI itself (`docker stack config`), and this module then applies what a compose merge cannot
express: services labelled `org.swarmguard.lab=omit` are left out, and a dnsrr service loses its
ingress-published ports (Swarm refuses them, and the lab has no routing mesh). Compose-to-service
conversion only exists in the docker CLI, so the deploy itself is `docker stack deploy -c -`; the
network check and the wait go through sgcommon.engine.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from sgcommon.engine import EngineError, connect, translate, versions
from labkit import labinfo

OMIT_LABEL = "org.swarmguard.lab"
APP = "web-stress"
# A service's healthcheck for engines with start_interval (docs/fast-recovery.md): merged into its
# healthcheck there, dropped elsewhere. Compose's start_interval needs file format 3.12 (docker CLI 25+).
START_INTERVAL_KEY = "x-healthcheck-with-start-interval"
START_INTERVAL_SINCE = next(f.since for f in versions.SERVICE_SPEC_FIELDS if f.path[-1] == "StartInterval")
START_INTERVAL_FORMAT = "3.12"


def _labels(service: dict[str, Any]) -> dict[str, str]:
    labels = (service.get("deploy") or {}).get("labels") or {}
    if isinstance(labels, list):  # compose allows ["k=v", ...]
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
    return {str(k): str(v) for k, v in labels.items()}


def _used(services: dict[str, Any], key: str) -> set[str]:
    """Top-level `key` entries (volumes, secrets, configs, networks) the services refer to."""
    names: set[str] = set()
    for service in services.values():
        refs = service.get(key) or []
        if key == "networks":
            names.update(refs)  # a list of names or a dict keyed by name
            continue
        for ref in refs:
            if isinstance(ref, str):  # short syntax: "name" or "volume:/path"
                names.add(ref.split(":", 1)[0])
            elif key != "volumes" or ref.get("type", "volume") == "volume":
                names.add(ref.get("source", ""))
    return names


def shape_stack(
    config: dict[str, Any], *, lab: bool, replicas: int | None = None, port: int | None = None,
    network: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The stack to deploy from a merged config, and one note per change made (for the log)."""
    stack = copy.deepcopy(config)
    services: dict[str, Any] = stack.get("services") or {}
    notes: list[str] = []
    if lab:
        for name in [n for n, s in services.items() if _labels(s).get(OMIT_LABEL) == "omit"]:
            del services[name]
            notes.append(f"left out {name} (labelled {OMIT_LABEL}=omit)")
    if APP in services and replicas is not None:
        services[APP].setdefault("deploy", {})["replicas"] = replicas
        notes.append(f"{APP}: {replicas} replicas")
    if APP in services and port is not None:
        for entry in services[APP].get("ports") or []:
            if isinstance(entry, dict) and entry.get("target") == 8080:
                entry["published"] = port
        notes.append(f"{APP}: published on port {port}")
    for name, service in services.items():
        if (service.get("deploy") or {}).get("endpoint_mode") == "dnsrr" and service.get("ports"):
            kept = [p for p in service["ports"] if isinstance(p, dict) and p.get("mode") == "host"]
            if len(kept) != len(service["ports"]):
                notes.append(f"{name}: dropped ingress ports (dnsrr has no routing mesh)")
            service["ports"] = kept
            if not kept:
                del service["ports"]
    nets = stack.get("networks") or {}
    if network is not None and labinfo.NETWORK in nets and network != labinfo.NETWORK:
        nets[labinfo.NETWORK] = {**(nets[labinfo.NETWORK] or {}), "name": network}
        notes.append(f"{labinfo.NETWORK} is the existing network {network}")
    for key in ("volumes", "secrets", "configs", "networks"):
        if key in stack:
            used = _used(services, key)
            stack[key] = {k: v for k, v in (stack[key] or {}).items() if k in used}
            if not stack[key]:
                del stack[key]
    return stack, notes


def use_start_interval(stack: dict[str, Any], *, api_version: str) -> list[str]:
    """On an engine that has the health check's start interval (API 1.44+), merges each service's
    START_INTERVAL_KEY into its healthcheck (a task is probed often only while it starts) and
    raises the file format to 3.12; on an older engine the key is dropped and the stack file's
    short interval stays. One note per service changed."""
    notes: list[str] = []
    newer = versions.at_least(api_version, START_INTERVAL_SINCE)
    for name, service in (stack.get("services") or {}).items():
        extra = service.pop(START_INTERVAL_KEY, None)
        if not extra or not newer or not service.get("healthcheck"):
            continue
        service["healthcheck"].update(extra)
        stack["version"] = START_INTERVAL_FORMAT
        notes.append(f"{name}: healthcheck {', '.join(f'{k} {v}' for k, v in extra.items())} (API {api_version})")
    return notes


def name_configs_by_content(stack: dict[str, Any]) -> list[str]:
    """Names each file-backed config after a hash of its content, so a changed file rolls out.

    A Swarm config cannot be updated in place: deploying a changed rule file under the same
    name fails. A content-named config is a new object that the service update switches to.
    """
    notes: list[str] = []
    for key, config in (stack.get("configs") or {}).items():
        path = (config or {}).get("file")
        if not path or config.get("external"):
            continue
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        config["name"] = f"{key}-{digest}"
        notes.append(f"config {key} is {config['name']} (named by content)")
    return notes


def ensure_lab_secrets(client: Any, stack: dict[str, Any]) -> list[str]:
    """Creates each external secret the lab stack uses and lacks, with a random value.

    Only for the lab: on a real cluster the operator creates the secrets (README), and a missing
    one stops `docker stack deploy` with its name. The values never touch the disk or the repo.
    """
    wanted = [k for k, v in (stack.get("secrets") or {}).items() if (v or {}).get("external")]
    with translate("secrets"):
        have = {s["Spec"]["Name"] for s in client.secrets()}
        created = []
        for name in wanted:
            if name not in have:
                client.create_secret(name, secrets.token_urlsafe(32).encode())
                created.append(f"created the secret {name} (random value)")
    return created


def _docker_env(docker_host: str) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": docker_host}


def merged_config(files: Sequence[str], *, docker_host: str) -> dict[str, Any]:
    args = ["docker", "stack", "config"]
    for path in files:
        args += ["-c", path]
    done = subprocess.run(args, env=_docker_env(docker_host), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"deploy: `{' '.join(args)}` failed: {done.stderr.strip()}")
    return yaml.safe_load(done.stdout)


def ensure_network(client: Any, name: str) -> bool:
    """Creates the attachable overlay `name` when missing; True if it had to."""
    with translate(f"network {name}"):
        if any(n["Name"] == name for n in client.networks(names=[name])):
            return False
        client.create_network(name, driver="overlay", attachable=True)
    return True


def escape_interpolation(value: Any) -> Any:
    """`value` with every `$` doubled in its strings.

    `docker stack config` prints the stack already interpolated, and `docker stack deploy -c -`
    interpolates it again: a literal `$` that the stack file wrote as `$$` (a health probe's shell
    variable, Grafana's entrypoint) would be taken for a variable the second time, emptied or refused.
    """
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_interpolation(v) for v in value]
    return value


def stack_deploy(stack: dict[str, Any], name: str, *, docker_host: str, resolve: str) -> None:
    args = ["docker", "stack", "deploy", "--resolve-image", resolve, "-c", "-", name]
    done = subprocess.run(
        args, input=yaml.safe_dump(escape_interpolation(stack), sort_keys=False), env=_docker_env(docker_host),
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"deploy: `{' '.join(args)}` failed: {done.stderr.strip()}")


def running_tasks(client: Any, service: str) -> list[dict[str, Any]]:
    """Tasks of `service` that should run and do (with a healthcheck: running means healthy)."""
    with translate(f"tasks of {service}"):
        tasks = client.tasks(filters={"service": service, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def _template(spec: dict[str, Any]) -> dict[str, Any]:
    """A task spec without what the engine fills in only on the service's side (Runtime)."""
    return {k: v for k, v in spec.items() if k != "Runtime"}


def rollout(client: Any, service: str) -> tuple[int, int]:
    """(running tasks made from the service's current spec, tasks that should run).

    A redeploy that changed the spec (a rebuilt image, a new config) rolls out start-first:
    for a while the old task still runs beside the new one. Counting only tasks of the current
    spec, and every task still meant to run, tells when the rollout is over.
    """
    with translate(f"rollout of {service}"):
        template = _template(client.inspect_service(service)["Spec"]["TaskTemplate"])
        tasks = client.tasks(filters={"service": service, "desired-state": "running"})
    current = [t for t in tasks if t["Status"]["State"] == "running" and _template(t["Spec"]) == template]
    return len(current), len(tasks)


def wait_running(
    client: Any, service: str, want: int, *, timeout: float,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds until `want` tasks of the current spec run and no other is meant to; SystemExit after `timeout`."""
    start = clock()
    while True:
        current, meant = rollout(client, service)
        if current >= want and meant == want:
            return clock() - start
        if clock() - start > timeout:
            raise SystemExit(f"deploy: {service} has {current}/{want} running tasks of its current spec "
                             f"({meant} meant to run) after {timeout:.0f} s")
        sleep(0.2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deploy_web_stress",
        description="Deploy SwarmGuard's stack (web-stress) to the lab, or to any swarm with --docker-host.",
    )
    parser.add_argument("--docker-host", help="a manager's engine (e.g. ssh://admin@manager); default: the lab")
    parser.add_argument("--lab", action="store_true", help="the lab (the default without --docker-host)")
    parser.add_argument("-c", "--compose-file", action="append", dest="files",
                        help="compose files (default swarm/stack.yml, plus swarm/stack.lab.yml in the lab)")
    parser.add_argument("--stack", default=labinfo.STACK, help="stack name (default %(default)s)")
    parser.add_argument("--replicas", type=int, help="web-stress replicas (default: the stack file's)")
    parser.add_argument("--port", type=int, help="published port of web-stress (not in the lab)")
    parser.add_argument("--network", default=labinfo.NETWORK,
                        help="the attachable overlay the stack's swarmguard-net stands for (default %(default)s)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for web-stress (0: no wait)")
    args = parser.parse_args(argv)
    if args.docker_host and args.lab:
        parser.error("--lab and --docker-host exclude each other")
    if args.replicas is not None and args.replicas < 0:
        parser.error("--replicas must be >= 0")
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error("--port must be 1..65535")
    args.lab = not args.docker_host
    if args.lab and args.port is not None:
        parser.error("--port: the lab publishes no port (dnsrr); reach web-stress inside swarmguard-net")
    if not args.files:
        stack_dir = labinfo.REPO / "swarm"
        args.files = [str(stack_dir / "stack.yml")] + ([str(stack_dir / "stack.lab.yml")] if args.lab else [])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        docker_host = labinfo.check_lab().host_socket if args.lab else args.docker_host
        client = connect(docker_host, timeout=30)
        print(f"==> deploy stack {args.stack} to {docker_host} from {' + '.join(args.files)}", flush=True)
        stack, notes = shape_stack(
            merged_config(args.files, docker_host=docker_host),
            lab=args.lab, replicas=args.replicas, port=args.port, network=args.network,
        )
        notes += use_start_interval(stack, api_version=client.api_version)
        notes += name_configs_by_content(stack)
        if args.lab:
            notes += ensure_lab_secrets(client, stack)
        for note in notes:
            print(f"    {note}")
        if ensure_network(client, args.network):
            print(f"    created the attachable overlay network {args.network}")
        started = time.monotonic()
        # Pinning each image's digest makes a rebuilt `:latest` roll out on the next deploy.
        stack_deploy(stack, args.stack, docker_host=docker_host, resolve="always")
        service = f"{args.stack}_{APP}"
        if APP in stack.get("services", {}) and args.wait > 0:
            want = stack["services"][APP].get("deploy", {}).get("replicas", 1)
            waited = wait_running(client, service, want, timeout=args.wait)
            print(f"==> {service}: {want} task(s) running and healthy, {time.monotonic() - started:.1f} s "
                  f"after deploy ({waited:.1f} s waiting)")
        return 0
    except labinfo.LabNotUp as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    except EngineError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
