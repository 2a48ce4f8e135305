"""The real server and app plus one slow route, to test that SIGTERM lets a request in flight finish.

Run as `python -m tests.stressapp.slow_server --port P --sink-port 0`; GET /slow?seconds=S
answers after S seconds.
"""
from __future__ import annotations

import argparse
import sys
import time

from flask import jsonify, request

from sgcommon import jsonlog
from sgcommon.settings import add_arguments, cli_overrides, load_settings
from stressapp.app import EXTENSION, create_app
from stressapp.server import serve
from stressapp.settings import ENV_PREFIX, StressSettings


def main() -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser, StressSettings, prefix=ENV_PREFIX)
    settings = load_settings(StressSettings, prefix=ENV_PREFIX, overrides=cli_overrides(parser.parse_args(), StressSettings))
    jsonlog.configure()
    app = create_app(settings)

    @app.get("/slow")
    def slow():  # type: ignore[no-untyped-def]
        time.sleep(float(request.args["seconds"]))
        return jsonify(done=True)

    serve(app, app.extensions[EXTENSION], host=settings.host, port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
