"""`swarmguard-controller rules apply|status|prune|reset`: the operator's side of rule sets on a cluster.

Why: on a real cluster the controller's rules cannot be edited in place (docs/rules.md, "Rules on a
real cluster"). `rules apply DIR` validates the files exactly as `check-rules` does (the same
messages, exit 1, nothing written), with the threshold overrides the controller service runs with,
then stores them as one Swarm config named by their content and marks it active
(controller/ruleconfigs.py); the controller takes it into effect within about a second, without a
restart, on whichever manager it runs. `status` says which set is active, `prune` removes old sets,
`reset` goes back to the controller's rule files. Everything goes through a manager's Engine API
(`--docker-host`, default $DOCKER_HOST, else the local socket).
"""
from __future__ import annotations

import argparse
import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from controller.check_rules import check as check_rules
from controller.ruleconfigs import APPLIED_LABEL, FILES_LABEL, RuleConfigs, is_active
from controller.rules import ENV_PREFIX, RuleError, load_rule_texts, merge_overrides
from controller.rules.bundle import from_paths
from sgcommon.engine import EngineError, NotFound, connect, translate
from sgcommon.engine.configs import ConfigView
from sgcommon.engine.swarm import SwarmAdapter

DEFAULT_SERVICE = "swarmguard_controller"  # <stack name>_controller for the stack named "swarmguard"
Connect = Callable[[str | None], Any]  # sgcommon.engine.connect


def add_parser(commands: Any) -> None:
    """Adds `rules` and its subcommands to the top-level subparsers of swarmguard-controller."""
    rules = commands.add_parser("rules", help="rule sets on a Swarm cluster: apply, status, prune, reset")
    actions = rules.add_subparsers(dest="rules_command", required=True)
    apply = actions.add_parser("apply", help="validate rule files, store them as a Swarm config and make it the "
                                             "active set (the controller takes it within about a second)")
    apply.add_argument("paths", nargs="+", metavar="DIR", help="rule directory (its *.yml, *.yaml) or files")
    apply.add_argument("--service", default=DEFAULT_SERVICE,
                       help="the controller's service, whose threshold overrides (SWARMGUARD_THRESHOLD_*, "
                            "--threshold) the files are checked with (default %(default)s; '' for none)")
    apply.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                       help="check with this override too (as check-rules); repeatable")
    apply.add_argument("--keep", type=int, metavar="N", help="then remove stored sets beyond the N most recently applied")
    apply.add_argument("--dry-run", action="store_true", help="validate and name the set; write nothing")
    status = actions.add_parser("status", help="which rule set is active, and the stored ones")
    prune = actions.add_parser("prune", help="remove stored rule sets beyond the N most recently applied "
                                             "(never the active one)")
    prune.add_argument("--keep", type=int, required=True, metavar="N", help="sets to keep, the active one included")
    reset = actions.add_parser("reset", help="no active set: the controller goes back to its rule files")
    for sub in (apply, status, prune, reset):
        sub.add_argument("--docker-host", metavar="URL",
                         help="a manager's Engine API (default $DOCKER_HOST, else the local socket)")


def main(args: argparse.Namespace, *, env: Mapping[str, str] | None = None, out: TextIO, err: TextIO,
         connect_to: Connect = connect) -> int:
    """Runs one `rules` subcommand; returns the exit code (0 done, 1 refused or failed)."""
    if isinstance(out, io.TextIOWrapper):  # a file name that cannot be encoded still prints
        out.reconfigure(errors="backslashreplace")
    environ = dict(os.environ) if env is None else dict(env)
    command = args.rules_command
    if getattr(args, "keep", None) is not None and args.keep < 1:
        print(f"swarmguard-controller rules {command}: --keep must be >= 1 (the active set is always kept)", file=err)
        return 1
    client = None
    try:
        if command != "apply" or not args.dry_run or args.service:
            client = connect_to(args.docker_host)
        adapter = SwarmAdapter(client) if client is not None else None
        configs = RuleConfigs(adapter) if adapter is not None else None
        if command == "apply":
            return _apply(args, client, configs, env=environ, out=out)
        assert configs is not None
        if command == "status":
            return _status(configs, out=out)
        if command == "prune":
            removed = configs.prune(args.keep)
            print(f"removed {len(removed)} stored rule set(s)" + "".join(f"\n  {name}" for name in removed), file=out)
            return 0
        was = configs.reset()
        print("no rule set is active now: the controller goes back to its rule files"
              + (f" (was: {', '.join(was)})" if was else " (none was active)"), file=out)
        return 0
    except EngineError as exc:
        print(f"swarmguard-controller rules {command}: {exc}", file=err)
        return 1
    finally:
        if client is not None:
            client.close()


def _apply(args: argparse.Namespace, client: Any, configs: RuleConfigs | None, *, env: Mapping[str, str],
           out: TextIO) -> int:
    thresholds = list(args.threshold)
    check_env: Mapping[str, str] = env
    if args.service:
        service_env, service_args = controller_overrides(client, args.service)
        check_env = service_env
        thresholds = service_args + thresholds
        shown = sorted(f"{k[len(ENV_PREFIX):].lower()}={v}" for k, v in service_env.items()) + service_args
        print(f"checking with the threshold overrides of service {args.service}: {', '.join(shown) or 'none'}", file=out)
    if check_rules(args.paths, env=check_env, thresholds=thresholds, out=out) != 0:
        return 1
    try:
        bundle = from_paths(args.paths)
        problems = bundle.problems()
        if not problems:  # what the controller will load: the same loader, the same overrides
            load_rule_texts(bundle.files, overrides=merge_overrides(check_env, thresholds))
    except RuleError as exc:  # a file changed since the check, or cannot be stored as a config
        problems = exc.errors
    if problems:
        for line in problems:
            print(line, file=out)
        print(f"FAILED: {len(problems)} error{'s' if len(problems) != 1 else ''}; nothing applied", file=out)
        return 1
    if args.dry_run or configs is None:
        print(f"dry run: would apply {bundle.name} ({', '.join(bundle.file_names)}); nothing written", file=out)
        return 0
    applied = configs.apply(bundle)
    print(f"applied {applied.config.name} ({', '.join(bundle.file_names)}; "
          f"{'stored now' if applied.created else 'stored before, made active again'})"
          + (f"; no longer active: {', '.join(applied.deactivated)}" if applied.deactivated else ""), file=out)
    print("the controller takes it into effect within about a second: swarmguard_rules_info on its /metrics, "
          "or `swarmguard-controller rules status`", file=out)
    if args.keep is not None:
        removed = configs.prune(args.keep)
        if removed:
            print(f"removed {len(removed)} older stored rule set(s): {', '.join(removed)}", file=out)
    return 0


def controller_overrides(client: Any, service: str) -> tuple[dict[str, str], list[str]]:
    """The controller service's threshold overrides: its SWARMGUARD_THRESHOLD_* environment, and the
    NAME=VALUE of each --threshold in its command and arguments. EngineError when it does not exist."""
    try:
        with translate(f"inspect service {service}"):
            spec = client.inspect_service(service)["Spec"]
    except NotFound:
        raise EngineError(f"no service {service}: name the controller's service with --service "
                          "(`docker service ls`), or --service '' to check without its overrides") from None
    container = ((spec.get("TaskTemplate") or {}).get("ContainerSpec") or {})
    env = dict(item.split("=", 1) for item in container.get("Env") or [] if "=" in item)
    words = [*(container.get("Command") or []), *(container.get("Args") or [])]
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}, threshold_args(words)


def threshold_args(words: Sequence[str]) -> list[str]:
    """The values of `--threshold X` and `--threshold=X` in a command line."""
    found = []
    for index, word in enumerate(words):
        if word == "--threshold" and index + 1 < len(words):
            found.append(words[index + 1])
        elif word.startswith("--threshold="):
            found.append(word.split("=", 1)[1])
    return found


def _status(configs: RuleConfigs, *, out: TextIO) -> int:
    active = configs.active()
    if active is None:
        print("active rule set: none (the controller runs its rule files: the image's defaults or a mounted "
              "directory)", file=out)
    else:
        print(f"active rule set: {_describe(active)}", file=out)
    stored = configs.stored()
    print(f"stored rule sets ({len(stored)}, most recently applied first):", file=out)
    for config in stored:
        mark = "*" if active is not None and config.id == active.id else " "
        print(f"  {mark} {_describe(config)}" + ("" if mark == "*" or not is_active(config) else " (labelled active, "
              "but an apply written later wins)"), file=out)
    return 0


def _describe(config: ConfigView) -> str:
    applied = config.labels.get(APPLIED_LABEL) or config.created_at
    return f"{config.name}, applied {applied}, files {config.labels.get(FILES_LABEL) or '?'}"
