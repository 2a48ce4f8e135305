"""The alert wire format and the query parameters against hostile input: every class named, then fuzzed.

The decoder may only return an Alert or raise AlertError; the controller's POST /alert (through
Flask's test client, with a stand-in runtime) answers 200/202/400/401/413 and never 500; every
parameter parser returns a value in range or raises ParamError; the endpoints that take
parameters answer 400 with a message, never 500.
"""
from __future__ import annotations

import json
import math
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from werkzeug.datastructures import MultiDict

from controller.app import AppConfig, create_app
from sgcommon.alert import MAX_ALERT_BYTES, METRIC_KEYS, Alert, AlertError, decode_alert, encode_alert
from sgcommon.params import ParamError, parse_int, parse_number, query_int, query_number
from tests.common.fuzzing import fuzz

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = 1_700_000_000.0
GOOD = {"t0": NOW - 1, "t1": NOW - 0.5, "n": "worker-1", "c": "a" * 64, "s": "web", "k": "t1",
        "m": {"cpu": 90.0, "mem": 50.0, "mem_mb": 128.0, "net": 2.0, "net_rx": 1.0, "net_tx": 1.0}}


class StandInRuntime:
    """What POST /alert needs from the controller's runtime; accepts every valid alert."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.refused: list[str] = []

    def handle_alert(self, alert: Alert, *, received: float) -> list[dict[str, str]]:
        self.alerts.append(alert)
        return []

    def refused_alert(self, outcome: str) -> None:
        self.refused.append(outcome)

    def health(self) -> dict[str, Any]:
        return {"status": "ok"}


RUNTIME = StandInRuntime()
APP = create_app(AppConfig(alert_token=TOKEN, registry=CollectorRegistry(), recent_events=lambda n: [{"n": n}] * min(n, 3),
                           clock=lambda: NOW), RUNTIME)
CLIENT: FlaskClient = APP.test_client()


def post(body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    response = CLIENT.post("/alert", data=body, headers=AUTH if headers is None else headers)
    assert response.status_code in (200, 202, 400, 401, 413), (response.status_code, response.data[:200])
    doc = response.get_json()
    assert isinstance(doc, dict)
    return response.status_code, doc


def with_(**changes: Any) -> bytes:
    doc = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if key.startswith("m_"):
            doc["m"][key[2:]] = value
        else:
            doc[key] = value
    return json.dumps(doc, separators=(",", ":")).encode()


HOSTILE = {
    "nested 1000 deep": b"[" * 1000 + b"]" * 0,
    "nested objects": b'{"a":' * 200 + b"1" + b"}" * 200,
    "nested in m": with_(m={"cpu": [[[[[[1]]]]]]}),
    "int too large for a float": with_(t0=10**400),
    "int in a metric too large": with_(m_cpu=10**400),
    "int of 1000 digits": b'{"t0":' + b"9" * 1000 + b"}",
    "1e999": with_().replace(b'"t0":1699999999.0', b'"t0":1e999'),
    "NaN": with_().replace(b'"cpu":90.0', b'"cpu":NaN'),
    "-Infinity": with_().replace(b'"t1":1699999999.5', b'"t1":-Infinity'),
    "negative": with_(m_mem=-1),
    "percent above 100": with_(m_cpu=100.5),
    "bool as number": with_(t0=True),
    "string as number": with_(m_net="5"),
    "null": with_(n=None),
    "list as string": with_(s=["web"]),
    "object as metrics list": with_(m=[1, 2, 3]),
    "duplicate key": with_()[:-1] + b',"n":"worker-2"}',
    "duplicate metric": with_().replace(b'"cpu":90.0', b'"cpu":90.0,"cpu":10.0'),
    "not UTF-8": with_().replace(b"worker-1", b"worker-\xff"),
    "encoded surrogate": with_().replace(b"worker-1", b"worker-\xed\xa0\x80"),
    "escaped surrogate": with_().replace(b"worker-1", b"worker-\\ud800"),
    "control character": with_().replace(b"worker-1", b"worker-\\u0007"),
    "UTF-8 BOM": b"\xef\xbb\xbf" + with_(),
    "UTF-16": with_().decode().encode("utf-16"),
    "top-level array": b"[1,2]",
    "top-level string": b'"alert"',
    "empty": b"",
    "whitespace": b"   ",
    "truncated": with_()[:-5],
    "unknown field": with_(x=1),
    "non-identifier unknown key": with_()[:-1] + b',"\\u0000\\n":1}',
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_each_hostile_body_is_a_400_with_a_reason(name: str) -> None:
    body = HOSTILE[name]
    with pytest.raises(AlertError) as exc:
        decode_alert(body)
    assert str(exc.value).split(":")[0] in ("body", "t0", "t1", "n", "c", "s", "k", "m") or str(exc.value).startswith("m.")
    status, doc = post(body)
    assert status == 400 and doc["error"] == str(exc.value)


def test_the_good_alert_is_accepted_and_round_trips() -> None:
    assert post(with_())[0] == 200
    alert = decode_alert(with_())
    assert decode_alert(encode_alert(alert)) == alert


def test_a_body_over_the_limit_is_refused() -> None:
    status, doc = post(b"{" + b" " * MAX_ALERT_BYTES + b"}")
    assert status in (400, 413) and str(MAX_ALERT_BYTES) in doc["error"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
numbers = (st.integers(min_value=-10, max_value=2**70) | st.integers(min_value=10**300, max_value=10**320)
           | st.floats(allow_nan=True, allow_infinity=True))
alert_shaped = st.fixed_dictionaries(
    {"t0": numbers | json_values, "t1": numbers, "n": st.text(max_size=140), "c": st.text(max_size=140),
     "s": st.text(max_size=20) | json_values, "k": st.text(max_size=20),
     "m": st.dictionaries(st.sampled_from((*METRIC_KEYS, "extra")), numbers | json_values, max_size=7)},
    optional={"x": json_values},
)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@fuzz(400)
@given(body=st.binary(max_size=MAX_ALERT_BYTES + 16) | st.integers(min_value=1, max_value=1100).map(nested))
def test_arbitrary_bytes_decode_to_an_alert_or_an_alert_error(body: bytes) -> None:
    try:
        decode_alert(body)
    except AlertError:
        pass


@fuzz(300, io=True)
@given(body=st.binary(max_size=MAX_ALERT_BYTES + 16), auth=st.booleans())
def test_arbitrary_bytes_through_flask_never_cause_a_500(body: bytes, auth: bool) -> None:
    status, _ = post(body, AUTH if auth else {})
    if not auth:
        assert status == 401


@fuzz(300, io=True)
@given(doc=json_values)
def test_arbitrary_json_through_flask_never_causes_a_500(doc: Any) -> None:
    post(json.dumps(doc).encode())


@fuzz(300, io=True)
@given(doc=alert_shaped)
def test_alert_shaped_json_is_accepted_only_when_every_field_is_valid(doc: dict[str, Any]) -> None:
    status, answer = post(json.dumps(doc).encode())
    if status in (200, 202):
        alert = decode_alert(json.dumps(doc).encode())
        assert all(math.isfinite(v) and v >= 0 for v in alert.metrics.values())
        assert all(alert.metrics[k] <= 100 for k in ("cpu", "mem", "net"))
    else:
        assert status in (400, 413) and answer["error"]


# --- query parameters -------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["\u00b2", "\u0661\u0662", " 5", "5 ", "+5", "-5", "1e3", "5.0", "", "0x10", "1_000",
                                 "9" * 19, "\uff15"])
def test_an_integer_parameter_is_ascii_digits_only(raw: str) -> None:
    with pytest.raises(ParamError, match="^limit: expected an integer from 1 to 500"):
        parse_int(raw, "limit", low=1, high=500)


@pytest.mark.parametrize(("raw", "value"), [("1", 1), ("500", 500), ("007", 7)])
def test_an_integer_parameter_in_range_is_its_value(raw: str, value: int) -> None:
    assert parse_int(raw, "limit", low=1, high=500) == value


@pytest.mark.parametrize("raw", ["\u00b2", "\u0661\u0662", " 5", "5 ", "1_000", "0x10", "five", "\uff15", "5e", ".", "--5"])
def test_a_number_parameter_refuses_what_python_float_would_be_lenient_about(raw: str) -> None:
    with pytest.raises(ParamError, match="must be a number"):
        parse_number(raw, "target")


@pytest.mark.parametrize(("raw", "value"), [("5", 5.0), ("+5", 5.0), ("-2.5", -2.5), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0)])
def test_a_number_parameter_is_a_plain_decimal(raw: str, value: float) -> None:
    assert parse_number(raw, "target") == value


@pytest.mark.parametrize("raw", ["nan", "inf", "-Infinity", "1e400"])
def test_a_non_finite_number_is_refused_as_such(raw: str) -> None:
    with pytest.raises(ParamError, match="finite"):
        parse_number(raw, "target")


def test_a_repeated_parameter_is_refused_and_an_absent_one_takes_its_default() -> None:
    with pytest.raises(ParamError, match="given 2 times"):
        query_int(MultiDict([("limit", "1"), ("limit", "2")]), "limit", default=5, low=1, high=9)
    assert query_int(MultiDict(), "limit", default=5, low=1, high=9) == 5
    assert query_number({"x": "2"}, "x") == 2.0
    with pytest.raises(ParamError, match="is required"):
        query_number(MultiDict([("x", "")]), "x")


@fuzz(1000)
@given(raw=st.text(max_size=30) | st.from_regex(r"[+-]?[0-9]{0,25}(\.[0-9]*)?([eE][+-]?[0-9]{0,4})?", fullmatch=True))
def test_parameter_parsers_return_a_value_in_range_or_raise_param_error(raw: str) -> None:
    try:
        assert 1 <= parse_int(raw, "n", low=1, high=10**6) <= 10**6
        assert raw.isascii() and raw.isdigit()
    except ParamError as exc:
        assert exc.parameter == "n" and exc.message
    try:
        assert math.isfinite(parse_number(raw, "x")) and raw.isascii()
    except ParamError as exc:
        assert exc.parameter == "x"


EVENTS = ["\u00b2", "\u0661\u0662", " 5", "+5", "1e3", "9" * 40, "", "0", "501"]


@pytest.mark.parametrize("raw", EVENTS)
def test_events_refuses_every_bad_limit_with_a_400_naming_it(raw: str) -> None:
    response = CLIENT.get("/events", query_string={"limit": raw})
    assert response.status_code == 400 and response.get_json()["error"].startswith("limit: ")


def test_events_takes_a_good_limit_and_refuses_a_repeated_one() -> None:
    assert CLIENT.get("/events?limit=2").get_json() == {"events": [{"n": 2}, {"n": 2}]}
    assert CLIENT.get("/events").status_code == 200
    assert CLIENT.get("/events?limit=2&limit=3").status_code == 400


@fuzz(200, io=True)
@given(params=st.lists(st.tuples(st.sampled_from(["limit", "x"]), st.text(max_size=20)), max_size=3))
def test_events_never_answers_500_whatever_the_query(params: list[tuple[str, str]]) -> None:
    response = CLIENT.get("/events", query_string=params)
    assert response.status_code in (200, 400)
