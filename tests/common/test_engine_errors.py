"""Every Docker failure becomes one of the project's own errors, naming what was attempted."""
from __future__ import annotations

import docker.errors
import pytest
import requests

from sgcommon.engine import (
    EngineError,
    EngineUnavailable,
    NotFound,
    OutOfSequence,
    ServerError,
    UnsupportedVersion,
    translate,
)


def _api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    if status == 404:
        return docker.errors.NotFound("x", response=response, explanation=explanation)
    return docker.errors.APIError("x", response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("raised", "expected", "status"),
    [
        (_api_error(404, "no such service"), NotFound, 404),
        (_api_error(500, "rpc error: update out of sequence"), OutOfSequence, 500),
        (_api_error(503, "node is not part of a swarm"), ServerError, 503),
        (_api_error(400, "invalid constraint"), EngineError, 400),
        (_api_error(400, "client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade "
                         "your client to a newer version"), UnsupportedVersion, 400),
        (_api_error(400, "client version 1.56 is too new. Maximum supported API version is 1.53"), UnsupportedVersion, 400),
    ],
)
def test_api_errors_map_to_project_errors(raised, expected, status) -> None:
    with pytest.raises(expected) as err, translate("update service web"):
        raise raised
    assert type(err.value) is expected
    assert err.value.status == status
    assert str(err.value).startswith("update service web")


def test_a_connection_failure_is_engine_unavailable() -> None:
    with pytest.raises(EngineUnavailable, match="list containers: engine unreachable"), translate("list containers"):
        raise requests.ConnectionError("refused")
