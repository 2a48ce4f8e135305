"""The controller's HTTP side: POST /alert (bearer token), GET /events, GET /metrics, GET /healthz.

`create_app(config, runtime)` does no I/O of its own: the runtime caches the alert, decides and
hands actions to the executor's threads, so the exporter gets its answer within milliseconds.
Every refusal is JSON with a message naming the problem; nothing a client sends can cause a 500.
"""
from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask, Response, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from controller.cache import MAX_CLOCK_SKEW
from sgcommon.alert import MAX_ALERT_BYTES, Alert, AlertError, decode_alert
from sgcommon.jsonlog import OnceLogger, get_logger
from sgcommon.params import ParamError, query_int

log = get_logger("swarmguard.controller.app")


class AlertRuntime(Protocol):
    """What the HTTP side needs from the runtime (controller.runtime.Runtime)."""

    def handle_alert(self, alert: Alert, *, received: float) -> list[dict[str, str]]: ...
    def refused_alert(self, outcome: str) -> None: ...
    def health(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AppConfig:
    """`alert_token` None means alerts are accepted without a token (only with the insecure flag)."""

    alert_token: str | None
    registry: CollectorRegistry
    recent_events: Callable[[int], list[dict[str, Any]]]
    events_default: int = 50
    events_max: int = 500
    clock: Callable[[], float] = time.time


def _error(status: int, message: str, **headers: str) -> Response:
    response = jsonify(error=message)
    response.status_code = status
    response.headers.update(headers)
    return response


def _authorized(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # headers arrive as latin-1 text; compare bytes so any input compares in constant time
    return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8"))


def _read_alert_body() -> bytes:
    """The body, refused before reading when it is declared or turns out larger than an alert can be."""
    declared = request.content_length
    if declared is not None and declared > MAX_ALERT_BYTES:
        raise AlertError(f"body: {declared} bytes, at most {MAX_ALERT_BYTES} allowed")
    try:
        body = request.get_data(cache=False)
        if declared is None and len(body) >= MAX_ALERT_BYTES and request.stream.read(1):
            raise RequestEntityTooLarge()  # a chunked body that does not end at the limit
        return body
    except RequestEntityTooLarge:
        raise AlertError(f"body: more than {MAX_ALERT_BYTES} bytes, at most {MAX_ALERT_BYTES} allowed") from None


def create_app(config: AppConfig, runtime: AlertRuntime) -> Flask:
    app = Flask("swarmguard.controller")
    app.config["MAX_CONTENT_LENGTH"] = MAX_ALERT_BYTES
    refusals = OnceLogger(log)  # one line per sender going wrong, one when it is right again

    @app.post("/alert")
    def alert() -> Response | tuple[Response, int]:
        received = config.clock()
        if config.alert_token is not None and not _authorized(request.headers.get("Authorization", ""),
                                                               config.alert_token):
            runtime.refused_alert("unauthorized")
            refusals.warn(f"{request.remote_addr}", "alert refused", status=401, error="missing or wrong bearer token",
                          remote=request.remote_addr)
            return _error(401, "missing or wrong bearer token", **{"WWW-Authenticate": 'Bearer realm="swarmguard"'})
        try:
            parsed = decode_alert(_read_alert_body())
            if parsed.t0 > received + MAX_CLOCK_SKEW:
                raise AlertError(f"t0: {parsed.t0} is more than {MAX_CLOCK_SKEW:.0f} s ahead of the controller's "
                                 f"clock ({received:.3f}); check the exporter's clock")
        except AlertError as exc:
            runtime.refused_alert("invalid")
            refusals.warn(f"{request.remote_addr}", "alert refused", status=400, error=str(exc),
                          remote=request.remote_addr)
            return _error(400, str(exc))
        refusals.clear(f"{request.remote_addr}", "alerts accepted again", remote=request.remote_addr)
        outcomes = runtime.handle_alert(parsed, received=received)
        accepted = any(o["submit"] == "accepted" for o in outcomes)
        return jsonify(status="accepted" if accepted else "ok", decisions=outcomes), 202 if accepted else 200

    @app.get("/events")
    def events() -> Response | tuple[Response, int]:
        try:
            limit = query_int(request.args, "limit", default=config.events_default, low=1, high=config.events_max)
        except ParamError as exc:
            return _error(400, str(exc))
        return jsonify(events=config.recent_events(limit))

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(config.registry), mimetype=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(runtime.health())

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return _error(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("request failed", extra={"fields": {"path": request.path, "error": str(exc)}})
        return _error(500, "internal error; see the controller log")

    return app
