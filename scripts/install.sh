#!/usr/bin/env bash
# Installs everything SwarmGuard's demo and tests need on a fresh Debian 12 machine (as root):
# Debian packages (Docker Engine, registry, debootstrap, Prometheus' promtool, VictoriaMetrics)
# and a Python virtual environment in .venv with the project and its test extras.
# Idempotent: what is already there is not installed again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-pip ca-certificates curl iproute2 iptables procps openssh-client
  docker.io docker-registry debootstrap
  prometheus victoria-metrics
)

step() { printf '\n==> %s\n' "$*"; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "install.sh: missing Debian packages (${missing[*]}) and not root: run as root" >&2
    exit 1
  fi
  step "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # No daemon is started by package scripts: the project starts what it needs itself.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d
else
  step "apt: all ${#APT_PACKAGES[@]} packages present"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  step "python: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
step "python: installing swarmguard[test,bench,report] into .venv"
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[test,bench,report]'
step "install done"
