"""Scenario 2 on the lab: real /api/data traffic scales web-stress up with no failed request, the
load splits over the replicas, and the controller scales it back to 1 after the traffic stops.

About 5 minutes, most of it the spec's 180 s scale-down hold (docs/load.md)."""
from __future__ import annotations

import pytest

from labkit import labinfo, scenario2

pytestmark = [pytest.mark.swarm, pytest.mark.slow]


def test_traffic_scales_web_stress_up_without_a_failed_request_and_back_to_one_when_it_stops(
    lab: labinfo.Lab,
) -> None:
    result = scenario2.run_scenario2(lab=lab)
    ups = [a for a in result["actions"] if a["action"] == "scale_up"]
    downs = [a for a in result["actions"] if a["action"] == "scale_down"]
    assert result["replicas_before"] == 1
    assert ups and ups[0]["result"] == "success", {k: result.get(k) for k in ("actions", "other_actions", "no_scale_up")}
    assert ups[0]["replicas_after"] == 2 and ups[0]["t5"] is not None
    assert ups[0]["t0"] <= ups[0]["t3"] <= ups[0]["t4"] <= ups[0]["t5"]
    assert result["probe"]["failures"] == 0, result["load"]["errors"]
    assert result["load"]["ok"] > 0.9 * result["load"]["planned"], result["load"]
    # the load really reached both replicas (dnsrr answers, picked per request)
    assert len(result["load"]["addresses"]) >= 2, result["load"]["addresses"]
    assert downs and downs[-1]["result"] == "success" and result["replicas_after"] == 1, result["actions"]
    step = next(s for s in result["steps"] if s["action"] == "scale_up")
    assert step["replicas"] == 2
    assert max(step["cpu_per_replica"]) < 75, step
