"""Entry point of `swarmguard-controller`: `run` the controller, `check-rules` / `test-rules` offline,
or `rules` (apply|status|prune|reset: rule sets on a cluster, controller/rules_command.py).

`run` merges its settings (defaults < --config YAML < CONTROLLER_* env < options), reads the alert
token (ALERT_TOKEN or ALERT_TOKEN_FILE) and refuses to start without one unless
--insecure-no-alert-token is given, loads the rules (a broken rule file at start is fatal: there are
no last good rules yet), then serves HTTP (controller/httpserver.py) until SIGTERM or
SIGINT and shuts down cleanly: requests in flight finish, then the runtime stops.
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from controller import rules_command
from controller.app import AlertEndpoint, AppConfig, create_app
from controller.check_rules import check as check_rules
from controller.httpserver import HttpServer
from controller.rules import RuleError, merge_overrides
from controller.ruletest import command as test_rules
from controller.runtime import Runtime, build
from controller.settings import PREFIX, ControllerSettings
from sgcommon.jsonlog import configure, event, get_logger
from sgcommon.secretfile import SecretError, read_secret
from sgcommon.settings import SettingsError, add_arguments, cli_overrides, describe, load_settings
from sgcommon.version import add_version_argument

log = get_logger("swarmguard.controller")

NO_TOKEN = (
    "swarmguard-controller: no alert token: set ALERT_TOKEN or ALERT_TOKEN_FILE (a Docker secret), "
    "or pass --insecure-no-alert-token to accept unauthenticated alerts (testing only)"
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="swarmguard-controller",
                                  description="SwarmGuard controller: rules over live metrics, recovery actions.")
    add_version_argument(top)
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the controller (HTTP on --port, scrapes, rules, actions)")
    run.add_argument("--config", help="YAML settings file (keys are the option names with underscores)")
    run.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                     help="override a rule-file threshold (also SWARMGUARD_THRESHOLD_<NAME>); repeatable")
    add_arguments(run, ControllerSettings, prefix=PREFIX)
    check = commands.add_parser("check-rules", help="validate rule files offline; exit 1 on any error")
    check.add_argument("paths", nargs="+", help="rule files or directories")
    check.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                       help="check with a threshold overridden, as `run` would (also SWARMGUARD_THRESHOLD_<NAME>)")
    test_rules.add_parser(commands)
    rules_command.add_parser(commands)
    return top


def main(argv: Sequence[str] | None = None, *, env: dict[str, str] | None = None, out: TextIO = sys.stdout,
         err: TextIO = sys.stderr) -> int:
    args = parser().parse_args(argv)
    if args.command == "check-rules":
        return _check_rules(args, env=env, out=out)
    if args.command == "test-rules":
        return test_rules.run(args.paths, out=out, verbose=args.verbose)
    if args.command == "rules":
        return rules_command.main(args, env=env, out=out, err=err)
    return _run(args, env=env, err=err)


def _check_rules(args: argparse.Namespace, *, env: dict[str, str] | None, out: TextIO) -> int:
    return check_rules(args.paths, env=dict(os.environ) if env is None else env, thresholds=args.threshold, out=out)


def _prepare(args: argparse.Namespace, env: dict[str, str] | None, err: TextIO) -> tuple[Any, ...] | None:
    """Settings, secrets and threshold overrides, or None after printing why the controller cannot start."""
    environ = dict(os.environ) if env is None else env
    try:
        settings = load_settings(ControllerSettings, prefix=PREFIX, yaml_path=args.config, env=environ,
                                 overrides=cli_overrides(args, ControllerSettings))
        alert_token = read_secret("ALERT_TOKEN", environ)
        influx_token = read_secret("INFLUXDB_TOKEN", environ)
        thresholds = merge_overrides(environ, args.threshold)
    except (SettingsError, SecretError) as exc:
        print(f"swarmguard-controller: {exc}", file=err)
        return None
    except RuleError as exc:
        print("swarmguard-controller: bad threshold overrides:\n  " + "\n  ".join(exc.errors), file=err)
        return None
    if alert_token is None and not settings.insecure_no_alert_token:
        print(NO_TOKEN, file=err)
        return None
    return settings, alert_token, influx_token, thresholds


def _run(args: argparse.Namespace, *, env: dict[str, str] | None, err: TextIO) -> int:
    prepared = _prepare(args, env, err)
    if prepared is None:
        return 2
    settings, alert_token, influx_token, thresholds = prepared
    configure(settings.log_level)
    for noisy in ("apscheduler",):  # a line per job run would drown the decisions
        get_logger(noisy).setLevel("WARNING")
    if alert_token is None:
        event(log, "alerts accepted WITHOUT a token (--insecure-no-alert-token)", level=logging.WARNING)
    event(log, "settings", **dict(describe(settings)), thresholds=thresholds)
    try:
        runtime, config = build(settings, alert_token=alert_token, thresholds=thresholds, influx_token=influx_token)
    except RuleError as exc:
        print("swarmguard-controller: the rule files are broken:\n  " + "\n  ".join(exc.errors), file=err)
        return 2
    return serve(settings, runtime, config, err=err)


def serve(settings: ControllerSettings, runtime: Runtime, config: AppConfig, *, err: TextIO = sys.stderr) -> int:
    """What `run` does once the runtime is built: serve HTTP until SIGTERM or SIGINT, then stop it.
    A port that cannot be bound (in use, not allowed, no such address) ends it with one line and 2."""
    try:
        server = make_server(settings, runtime, config)
    except OSError as exc:
        print(f"swarmguard-controller: cannot listen on {settings.listen}:{settings.port}: {exc.strerror or exc}",
              file=err)
        return 2
    _on_signals(server.shutdown)
    try:
        runtime.start()
        tune_interpreter()
        event(log, "listening", listen=settings.listen, port=server.port, dry_run=settings.actions.dry_run)
        server.serve_forever()
    finally:
        runtime.stop()
    return 0


SWITCH_INTERVAL = 0.001  # seconds a thread keeps the interpreter lock when another one waits for it
GC_THRESHOLDS = (10_000, 10, 10)  # CPython's default (700, 10, 10) collects the young objects 14 times as often


def tune_interpreter() -> None:
    """Three threads share the interpreter lock (the HTTP loop, the scrape loop, the evaluation job):
    an alert's hand-offs wait for it at most SWITCH_INTERVAL (CPython's default is 5 ms). Each round
    makes big short-lived maps (a snapshot of 30 000 containers at 1000 nodes) that every young
    collection walks again: at GC_THRESHOLDS the collector took a fifth of the CPU and far fewer
    pauses over 20 ms; the objects that live as long as the process (modules, settings, rules) are
    left out of its full passes. docs/scale.md has the figures."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()


def make_server(settings: ControllerSettings, runtime: Runtime, config: AppConfig) -> HttpServer:
    """The HTTP server `run` serves: the Flask app, with POST /alert answered by the server itself."""
    alerts = AlertEndpoint(config, runtime)
    return HttpServer(create_app(config, runtime, alerts=alerts), host=settings.listen, port=settings.port, alerts=alerts)


def _on_signals(stop: Any) -> None:
    """SIGTERM/SIGINT stop the HTTP server from another thread (shutdown() waits for requests in flight)."""

    def handler(signum: int, _frame: Any) -> None:
        event(log, "stopping", signal=signal.Signals(signum).name)
        threading.Thread(target=stop, name="shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


if __name__ == "__main__":
    sys.exit(main())
