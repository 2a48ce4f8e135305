"""The lab and scenario tooling: deploy the stack, probe availability, generate load, run the
reactive baseline and the scenarios, the full suite, and write the report.

The test scripts (tests/scripts/), the demo (scripts/demo.sh) and the lab tests use it; it works
on the local lab (swarm/lab) and on a real cluster (`--docker-host`). docs/scenarios.md describes
each script, docs/lab.md the lab.
"""
