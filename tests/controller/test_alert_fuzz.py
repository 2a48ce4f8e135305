"""POST /alert fuzzed: arbitrary bytes, arbitrary JSON shapes, any header; never a 500, never a crash."""
from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.app import create_app
from sgcommon.alert import METRIC_KEYS
from tests.controller.test_runtime import TOKEN, make_rig

RIG = make_rig()
CLIENT: FlaskClient = create_app(RIG.config, RIG.runtime).test_client()
GOOD_AUTH = f"Bearer {TOKEN}"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
numbers = st.integers(min_value=-10, max_value=2**70) | st.floats(allow_nan=True, allow_infinity=True)
alert_shaped = st.fixed_dictionaries(
    {"t0": numbers | json_values, "t1": numbers, "n": st.text(max_size=140), "c": st.text(max_size=140),
     "s": st.text(max_size=20) | json_values, "k": st.text(max_size=20),
     "m": st.dictionaries(st.sampled_from(METRIC_KEYS + ("extra",)), numbers | json_values, max_size=7)},
    optional={"x": json_values},
)
headers = st.one_of(
    st.just(GOOD_AUTH),
    st.text(max_size=60).filter(lambda h: "\n" not in h and "\r" not in h),
    st.builds(lambda t: f"Bearer {t}", st.text(alphabet=st.characters(max_codepoint=255, blacklist_characters="\r\n"),
                                                max_size=40)),
)


def post(body: bytes, auth: str | None) -> tuple[int, dict[str, Any]]:
    """The status and JSON answer of one POST /alert (every answer is a JSON object, never a 500)."""
    hdrs = {"Authorization": auth} if auth is not None else {}
    response = CLIENT.post("/alert", data=body, headers=hdrs)
    assert response.status_code in (200, 202, 400, 401), (response.status_code, response.data)
    answer = response.get_json()
    assert isinstance(answer, dict)
    return response.status_code, answer


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(body=st.binary(max_size=2048), auth=st.none() | headers)
def test_arbitrary_bytes_with_or_without_a_token_never_cause_a_500(body: bytes, auth: str | None) -> None:
    status, _ = post(body, auth)
    if auth != GOOD_AUTH:
        assert status == 401


@FUZZ
@given(doc=json_values)
def test_arbitrary_json_with_the_token_never_causes_a_500(doc: Any) -> None:
    assert post(json.dumps(doc).encode(), GOOD_AUTH)[0] in (200, 202, 400)


@FUZZ
@given(doc=alert_shaped)
def test_alert_shaped_json_is_either_accepted_or_refused_with_a_message(doc: dict[str, Any]) -> None:
    status, answer = post(json.dumps(doc).encode(), GOOD_AUTH)
    if status == 400:
        assert isinstance(answer.get("error"), str) and answer["error"].strip()
    else:
        assert answer["status"] in ("ok", "accepted") and isinstance(answer["decisions"], list)
