"""Grafana's variable expansion as the lab test applies it to the Prometheus dashboards' queries."""
from __future__ import annotations

import pytest

from tests.grafana.promql import Window, expand, label_values

WINDOW = Window(step_s=2, scrape_s=2, range_s=600)


def test_rate_interval_is_four_scrape_intervals_at_least_and_variables_take_their_values() -> None:
    text = expand('rate(x{node=~"$node", service=~"${service}"}[$__rate_interval]) [$__interval] $__range',
                  {"node": ".*", "service": "web"}, WINDOW)
    assert text == 'rate(x{node=~".*", service=~"web"}[8s]) [2s] 600s'
    assert Window(step_s=30, scrape_s=5, range_s=1).rate_interval_s == 35


def test_promqls_own_dollar_references_are_left_alone_and_an_unknown_variable_is_an_error() -> None:
    text = 'label_replace(up, "node", "$1", "instance", "(.*)")'
    assert expand(text, {}, WINDOW) == text
    with pytest.raises(KeyError, match=r"\$nod"):
        expand('x{node=~"$nod"}', {"node": ".*"}, WINDOW)


def test_a_label_values_query_gives_its_selector_and_label() -> None:
    assert label_values('label_values(swarmguard_container_cpu_percent{node=~".*"}, service)') == (
        'swarmguard_container_cpu_percent{node=~".*"}', "service")
    assert label_values("label_values(node)") == (None, "node")
    with pytest.raises(ValueError):
        label_values("query_result(up)")


@pytest.mark.real
def test_every_promql_expression_of_the_dashboards_parses_in_promtool(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil
    import subprocess

    import yaml

    from tests.grafana import dashboards as gd
    from tests.support import unavailable

    if shutil.which("promtool") is None:
        unavailable("promtool not installed (Debian package prometheus)")
    rules = [{"record": f"q{i}", "expr": expand(q.text, {"node": ".*", "service": ".*"}, WINDOW)}
             for i, q in enumerate(q for p in gd.files_of("prometheus") for q in gd.prom_queries(p.name, gd.load(p))
                                   if q.kind != "variable")]
    assert len(rules) >= 20
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    done = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
