#!/bin/sh
# Runs as PID-parent of one lab worker's dockerd, already inside that worker's own network, UTS
# and (private) mount namespace (see swarm/lab start_worker_engine). It names the node, hides the
# host's resolver, and gives the worker its own /var/run/docker.sock so that one stack file (which
# mounts /var/run/docker.sock) works on every node.
#   node-init.sh HOSTNAME DATA_DIR EXEC_ROOT
set -eu
name=$1 data=$2 run=$3
hostname "$name"
mount --bind "$data/resolv.conf" /etc/resolv.conf
# A socket file left by an engine that was killed (not stopped) would pass the wait below at once
# and get bound; dockerd then replaces it and the binding points at a deleted file.
rm -f "$run/docker.sock"
dockerd --config-file "$data/daemon.json" &
pid=$!
i=0
while [ ! -S "$run/docker.sock" ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
# The target must exist to bind over it; in this private namespace nobody else sees the binding.
[ -e /var/run/docker.sock ] || touch /var/run/docker.sock
mount --bind "$run/docker.sock" /var/run/docker.sock
wait $pid
