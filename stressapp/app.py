"""The stress app's HTTP API (docs/stressapp.md): a Flask factory over a StressCore.

Every endpoint is a GET (docs/stressapp.md). Bad parameters get HTTP 400 with
{"error": ..., "parameter": ...} and start nothing.
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict
from typing import Any

from flask import Flask, Response, jsonify, request

from stressapp.core import StressCore
from stressapp.settings import StressSettings
from stressapp.validation import ParamError, combined_plans, leak_plan, single_plan

EXTENSION = "stressapp"

_RESPONSE_KEY = {"cpu": "target_cpu", "memory": "target_memory_mb", "network": "target_bandwidth_mbps"}

# A page of a product catalogue: what a small real API returns (about 1.5 KB of JSON).
_CATALOGUE = [
    {
        "id": 1000 + n,
        "sku": f"SG-{n:04d}",
        "name": name,
        "price": round(4.5 + n * 3.25, 2),
        "currency": "EUR",
        "stock": (n * 37) % 120,
        "tags": tags,
    }
    for n, (name, tags) in enumerate(
        [
            ("Steel water bottle", ["outdoor", "kitchen"]),
            ("Wireless mouse", ["office", "electronics"]),
            ("Notebook A5, dotted", ["office", "paper"]),
            ("Espresso cups (set of 4)", ["kitchen"]),
            ("USB-C cable 1 m", ["electronics"]),
            ("Desk lamp", ["office", "lighting"]),
            ("Rain jacket", ["outdoor", "clothing"]),
            ("Ceramic plant pot", ["garden", "home"]),
            ("Mechanical keyboard", ["office", "electronics"]),
            ("Cotton tote bag", ["clothing"]),
        ]
    )
]


class RequestCounter:
    """How many /api/data requests the app has served: the count a load generator's own figures
    are checked against (GET /stats). werkzeug serves each request on a thread of its own, hence
    the lock; the count starts at 0 with the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0

    def add(self) -> int:
        """Counts one request; the count including it."""
        with self._lock:
            self._count += 1
            return self._count

    @property
    def value(self) -> int:
        with self._lock:
            return self._count


def create_app(config: StressSettings, *, core: StressCore | None = None) -> Flask:
    """Builds the app; `app.extensions["stressapp"]` is its StressCore, to be closed by the owner."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    core = core or StressCore(config)
    app.extensions[EXTENSION] = core
    served = RequestCounter()

    @app.errorhandler(ParamError)
    def bad_parameter(exc: ParamError) -> tuple[Response, int]:
        return jsonify(error=exc.message, parameter=exc.parameter), 400

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="healthy", uptime=round(core.uptime, 1))

    @app.get("/metrics")
    def metrics() -> Response:
        return jsonify({**asdict(core.meter.figures), "active_stress": core.active()})

    def start_single(kind: str) -> Response:
        plan = single_plan(kind, request.args, core.limits())
        core.start({kind: plan})
        return jsonify({"status": "started", _RESPONSE_KEY[kind]: _plain(plan.target)})

    @app.get("/stats")
    def stats() -> Response:
        # Kept out of /metrics, whose fields stay as docs/stressapp.md lists them.
        return jsonify(api_data_requests=served.value, uptime=round(core.uptime, 1))

    @app.get("/stress/cpu")
    def stress_cpu() -> Response:
        return start_single("cpu")

    @app.get("/stress/memory")
    def stress_memory() -> Response:
        return start_single("memory")

    @app.get("/stress/network")
    def stress_network() -> Response:
        return start_single("network")

    @app.get("/stress/leak")
    def stress_leak() -> Response:
        plan = leak_plan(request.args, core.limits())
        core.start({"leak": plan})
        return jsonify(status="started", leak_mb_per_s=_plain(round((plan.target - plan.start) / plan.ramp, 6)),
                       start_mb=_plain(plan.start), duration=_plain(plan.ramp))

    @app.get("/stress/combined")
    def stress_combined() -> Response:
        plans = combined_plans(request.args, core.limits())
        core.start(plans)
        return jsonify(status="started", targets={kind: _plain(plan.target) for kind, plan in plans.items()})

    @app.get("/stress/stop")
    def stress_stop() -> Response:
        return jsonify(status="stopped", stopped_tests=core.stop_all())

    @app.get("/api/data")
    def api_data() -> Response:
        return jsonify(
            request_id=served.add(),
            generated_at=round(time.time(), 3),
            page=1,
            page_size=len(_CATALOGUE),
            total_items=240,
            items=_CATALOGUE,
        )

    return app


def _plain(value: float) -> Any:
    """80.0 -> 80, as docs/stressapp.md's responses show; 12.5 stays 12.5."""
    return int(value) if float(value).is_integer() else value
