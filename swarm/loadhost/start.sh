#!/bin/sh
# The load host's entry point (swarm/loadhost.Dockerfile): sshd in the foreground, logging to
# stderr (the container's log). The host key is the one put in /etc/ssh before the start (the ssh
# lab test does, so it knows the key to trust), else one made now. LOADHOST_AUTHORIZED_KEYS
# (public keys, one a line) become loadgen's authorized_keys, if set.
set -eu
key=/etc/ssh/ssh_host_ed25519_key
[ -s "$key" ] || ssh-keygen -q -t ed25519 -N '' -C "$(hostname)" -f "$key"
mkdir -p /home/loadgen/.ssh /run/sshd
if [ -n "${LOADHOST_AUTHORIZED_KEYS:-}" ]; then
  printf '%s\n' "$LOADHOST_AUTHORIZED_KEYS" > /home/loadgen/.ssh/authorized_keys
fi
chown -R loadgen:loadgen /home/loadgen/.ssh
chmod 700 /home/loadgen/.ssh
chmod 600 /home/loadgen/.ssh/* 2>/dev/null || true
exec /usr/sbin/sshd -D -e
