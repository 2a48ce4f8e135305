"""The alert wire format: compact, round-trips, and every malformed body names its field."""
from __future__ import annotations

import json

import pytest

from sgcommon.alert import MAX_ALERT_BYTES, Alert, AlertError, decode_alert, encode_alert

GOOD = Alert(
    t0=1700000000.1234,
    t1=1700000000.1301,
    node="worker-1",
    container_id="a" * 64,
    service="web-stress",
    task_id="t" * 25,
    metrics={"cpu": 85.5, "mem": 75.3, "mem_mb": 1024.0, "net": 3.1, "net_rx": 15.2, "net_tx": 10.5},
)


def test_an_encoded_alert_round_trips_and_stays_under_500_bytes() -> None:
    body = encode_alert(GOOD)
    assert len(body) < 500
    assert b" " not in body
    assert decode_alert(body) == GOOD


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("n"), "missing field(s) n"),
        (lambda d: d.update(x=1), "unknown field(s) x"),
        (lambda d: d.update(t0="soon"), "t0: expected a number"),
        (lambda d: d.update(t1=True), "t1: expected a number"),
        (lambda d: d.update(t0=-1), "t0: expected a finite number >= 0"),
        (lambda d: d.update(c=""), "c: expected a non-empty string"),
        (lambda d: d.update(s="x" * 200), "s: expected a non-empty string"),
        (lambda d: d.update(m=[1, 2]), "m: expected an object"),
        (lambda d: d["m"].pop("cpu"), "m: expected exactly the keys"),
        (lambda d: d["m"].update(cpu=None), "m.cpu: expected a number"),
    ],
)
def test_a_malformed_alert_is_refused_with_the_field_named(mutate, field: str) -> None:
    doc = json.loads(encode_alert(GOOD))
    mutate(doc)
    with pytest.raises(AlertError, match=field.replace("(", r"\(").replace(")", r"\)")):
        decode_alert(json.dumps(doc).encode())


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b"\xff\xfe", b"NaN"])
def test_a_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(AlertError, match="body"):
        decode_alert(body)


def test_an_oversized_body_is_refused_before_parsing() -> None:
    with pytest.raises(AlertError, match=f"at most {MAX_ALERT_BYTES}"):
        decode_alert(b" " * (MAX_ALERT_BYTES + 1))


def test_non_finite_numbers_are_refused() -> None:
    body = encode_alert(GOOD).replace(b'"cpu":85.5', b'"cpu":Infinity')
    with pytest.raises(AlertError, match="m.cpu"):
        decode_alert(body)


# ---------------------------------------------------------------- the optional prediction ("p")

def test_a_predictive_alert_round_trips_and_one_without_it_is_what_it_always_was() -> None:
    from sgcommon.alert import Prediction

    predictive = Alert(**{**GOOD.__dict__, "predicted": Prediction("mem", 1700000004.56789)})
    body = encode_alert(predictive)
    assert json.loads(body)["p"] == {"m": "mem", "t": 1700000004.5679} and len(body) < 500
    assert decode_alert(body).predicted == Prediction("mem", 1700000004.5679)
    assert b'"p"' not in encode_alert(GOOD) and decode_alert(encode_alert(GOOD)).predicted is None
    assert b'"p"' not in encode_alert(predictive, with_prediction=False)


@pytest.mark.parametrize(("p", "message"), [
    ([1, 2], 'p: expected an object {"m": metric, "t": time}'),
    ({"m": "mem"}, "p: expected exactly the keys m, t; wrong: t"),
    ({"m": "mem", "t": 1.0, "x": 2}, "p: expected exactly the keys m, t; wrong: x"),
    ({"m": "disk", "t": 1.0}, "p.m: expected one of cpu, mem, mem_mb, net, net_rx, net_tx, got 'disk'"),
    ({"m": 3, "t": 1.0}, "p.m: expected one of"),
    ({"m": "mem", "t": "soon"}, "p.t: expected a number"),
    ({"m": "mem", "t": -5}, "p.t: expected a finite number >= 0"),
])
def test_a_malformed_prediction_is_refused_with_its_field_named(p: object, message: str) -> None:
    doc = json.loads(encode_alert(GOOD))
    doc["p"] = p
    with pytest.raises(AlertError) as caught:
        decode_alert(json.dumps(doc).encode())
    assert message in str(caught.value)


def test_a_non_finite_predicted_time_is_refused() -> None:
    body = encode_alert(GOOD)[:-1] + b',"p":{"m":"mem","t":NaN}}'
    with pytest.raises(AlertError, match="p.t: expected a finite number"):
        decode_alert(body)
