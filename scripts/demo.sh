#!/usr/bin/env bash
# The README's demo command: SwarmGuard's main job on the local multi-node lab, from a fresh
# Debian 12 machine (as root). Installs everything, brings the lab up, builds and deploys the
# stack (exporter on every node, controller on the manager, web-stress), then measures one
# reactive baseline, one proactive migration (scenario 1) and one scale-up/scale-down
# (scenario 2), and prints the report. The lab stays up afterwards to look around.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "demo: run as root (the lab makes namespaces, a bridge and engines)" >&2; exit 1; }
scripts/install.sh
printf '\n==> lab up\n'; swarm/lab up
printf '\n==> lab build (the first time: a Debian base image with debootstrap, a few minutes)\n'; swarm/lab build
printf '\n==> lab deploy\n'; swarm/lab deploy
out=results/demo-$(date -u +%Y%m%dT%H%M%S)
printf '\n==> the measurements: reactive baseline, scenario 1, scenario 2 (about 8 minutes)\n'
tests/scripts/run_full_test_suite --short --out "$out"
cat <<TEXT

==> done. The report: $out/report/report.md (charts: $out/report/*.png). The lab is still up:
  docker node ls; docker service ls; docker service ps swarmguard_web-stress
  C=\$(docker ps -q -f label=com.docker.swarm.service.name=swarmguard_controller)
  docker exec \$C curl -s localhost:5000/events           # recovery actions with T0-T6
  docker exec \$C curl -s localhost:5000/metrics          # the controller's own metrics
  docker exec \$C curl -s http://<exporter task ip>:9101/metrics   # a node's exporter
  curl -s 'http://10.99.0.1:8428/api/v1/export?match[]={__name__=~"recovery_events.*"}'
  \$EDITOR rules/default.yml                              # hot-reloaded by the controller
  tests/scripts/stress_scenario1 --help; tests/scripts/run_full_test_suite --iterations 5
Tear it down: swarm/lab down   (swarm/lab down --purge also drops the cached base image)
TEXT
