"""`swarmguard-stressapp`: runs the stress app's HTTP API until SIGTERM.

Imports stay inside main(): CPU workers are spawned interpreters that re-import this module,
and they need none of Flask.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    import logging

    from sgcommon import jsonlog
    from sgcommon.settings import SettingsError, add_arguments, cli_overrides, describe, load_settings
    from sgcommon.version import add_version_argument
    from stressapp.settings import ENV_PREFIX, StressSettings, check

    parser = argparse.ArgumentParser(prog="swarmguard-stressapp", description="The SwarmGuard web-stress test application.")
    add_version_argument(parser)
    parser.add_argument("--config", help="YAML file of settings (env STRESS_CONFIG)")
    add_arguments(parser, StressSettings, prefix=ENV_PREFIX)
    args = parser.parse_args(argv)
    try:
        import os

        settings = load_settings(StressSettings, prefix=ENV_PREFIX, yaml_path=args.config or os.environ.get("STRESS_CONFIG"),
                                 overrides=cli_overrides(args, StressSettings))
        check(settings)
    except SettingsError as exc:
        print(f"swarmguard-stressapp: {exc}", file=sys.stderr)
        return 2
    jsonlog.configure(settings.log_level)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    log = jsonlog.get_logger("swarmguard.stressapp")
    jsonlog.event(log, "starting", **dict(describe(settings)))

    from stressapp.app import EXTENSION, create_app
    from stressapp.server import serve

    try:
        app = create_app(settings)
    except (OSError, ValueError) as exc:
        jsonlog.event(log, "cannot start", level=logging.ERROR, error=str(exc))
        return 1
    serve(app, app.extensions[EXTENSION], host=settings.host, port=settings.port)
    exit_now(0)


def exit_now(code: int) -> NoReturn:
    """Ends the process once the graceful stop is done: logs flushed, then no interpreter teardown.

    Tearing down Flask's and werkzeug's modules took about 65 ms after everything had stopped
    (docs/stressapp.md); every one of them delays the end of a migration (T6)."""
    import logging
    import os

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken: nothing left to save
            pass
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
