"""The controller's HTTP side: POST /alert (bearer token), GET /events, GET /metrics, GET /healthz.

`create_app(config, runtime)` does no I/O of its own: the runtime caches the alert, decides and
hands actions to the executor's threads, so the exporter gets its answer within milliseconds.
Every refusal is JSON with a message naming the problem; nothing a client sends can cause a 500.

POST /alert's contract lives in `AlertEndpoint`, apart from Flask: the Flask route calls it, and so
does the controller's HTTP server (controller/httpserver.py) directly, without a WSGI round, since
1000 exporters may send 1000 alerts a second (docs/scale.md).
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
from controller.model import Outcome, Verdict
from sgcommon.alert import MAX_ALERT_BYTES, Alert, AlertError, decode_alert
from sgcommon.jsonlog import OnceLogger, get_logger
from sgcommon.params import ParamError, query_int

log = get_logger("swarmguard.controller.app")


class AlertRuntime(Protocol):
    """What the HTTP side needs from the runtime (controller.runtime.Runtime)."""

    def handle_alert(self, alert: Alert, *, received: float) -> list[Outcome]: ...
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


def declared_too_large(declared: int) -> AlertError:
    return AlertError(f"body: {declared} bytes, at most {MAX_ALERT_BYTES} allowed")


def unended_too_large() -> AlertError:
    """A body without a declared length (chunked) that goes on past the limit."""
    return AlertError(f"body: more than {MAX_ALERT_BYTES} bytes, at most {MAX_ALERT_BYTES} allowed")


@dataclass(frozen=True)
class Reply:
    """An answer of AlertEndpoint: the status, the JSON document, and extra headers."""

    status: int
    doc: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


UNAUTHORIZED = Reply(401, {"error": "missing or wrong bearer token"},
                     (("WWW-Authenticate", 'Bearer realm="swarmguard"'),))


class AlertEndpoint:
    """POST /alert: the token, the body, the decision, the answer; the same whichever server calls it."""

    def __init__(self, config: AppConfig, runtime: AlertRuntime) -> None:
        self._config = config
        self._runtime = runtime
        self._refusals = OnceLogger(log)  # one line per sender going wrong, one when it is right again

    def respond(self, *, authorization: str, remote: str | None, read_body: Callable[[], bytes],
                received: float | None = None) -> Reply:
        """`read_body` is called only once the token is right; it raises AlertError for a body over the limit.
        `received` (T2) defaults to now."""
        if received is None:
            received = self._config.clock()
        token = self._config.alert_token
        if token is not None and not _authorized(authorization, token):
            self._runtime.refused_alert("unauthorized")
            self._refusals.warn(f"{remote}", "alert refused", status=401, error="missing or wrong bearer token",
                                remote=remote)
            return UNAUTHORIZED
        try:
            parsed = decode_alert(read_body())
            if parsed.t0 > received + MAX_CLOCK_SKEW:
                raise AlertError(f"t0: {parsed.t0} is more than {MAX_CLOCK_SKEW:.0f} s ahead of the controller's "
                                 f"clock ({received:.3f}); check the exporter's clock")
        except AlertError as exc:
            self._runtime.refused_alert("invalid")
            self._refusals.warn(f"{remote}", "alert refused", status=400, error=str(exc), remote=remote)
            return Reply(400, {"error": str(exc)})
        self._refusals.clear(f"{remote}", "alerts accepted again", remote=remote)
        outcomes = self._runtime.handle_alert(parsed, received=received)
        accepted = any(o.submission.verdict is Verdict.ACCEPTED for o in outcomes)
        return Reply(202 if accepted else 200,
                     {"status": "accepted" if accepted else "ok", "decisions": [o.as_dict() for o in outcomes]})


def _read_alert_body() -> bytes:
    """The body, refused before reading when it is declared or turns out larger than an alert can be."""
    declared = request.content_length
    if declared is not None and declared > MAX_ALERT_BYTES:
        raise declared_too_large(declared)
    try:
        body = request.get_data(cache=False)
        if declared is None and len(body) >= MAX_ALERT_BYTES and request.stream.read(1):
            raise RequestEntityTooLarge()  # a chunked body that does not end at the limit
        return body
    except RequestEntityTooLarge:
        raise unended_too_large() from None


def create_app(config: AppConfig, runtime: AlertRuntime, *, alerts: AlertEndpoint | None = None) -> Flask:
    """The Flask app; `alerts` is the POST /alert endpoint to share with the HTTP server (one per runtime)."""
    app = Flask("swarmguard.controller")
    app.config["MAX_CONTENT_LENGTH"] = MAX_ALERT_BYTES
    endpoint = alerts or AlertEndpoint(config, runtime)

    @app.post("/alert")
    def alert() -> Response | tuple[Response, int]:
        reply = endpoint.respond(authorization=request.headers.get("Authorization", ""), remote=request.remote_addr,
                                 read_body=_read_alert_body, received=config.clock())
        response = jsonify(reply.doc)
        response.status_code = reply.status
        response.headers.update(dict(reply.headers))
        return response

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
