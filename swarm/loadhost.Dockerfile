# A load host for the load generator's ssh path (labkit/loadgen.py over ssh, docs/load.md):
# Debian's openssh-server and python3, a user `loadgen` that logs in by key only, nothing else.
# The ssh lab test (tests/loadgen/test_ssh_hosts_lab.py) runs a few of these on the manager,
# attached to swarmguard-net (to reach web-stress) and to the default bridge (the host's ssh).
# Build context: the repository root. BASE_IMAGE is the lab's Debian bookworm image with python3
# (swarm/lab build passes it and lets apt reach the Debian mirror, docs/lab.md).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

# policy-rc.d: the package must not start a daemon during the build. The host keys the package
# makes are dropped: every container gets its own (given to it, or made by start.sh).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openssh-server \
 && rm -rf /usr/sbin/policy-rc.d /var/lib/apt/lists/* /var/cache/apt/* /etc/ssh/ssh_host_* \
 && useradd --create-home --shell /bin/sh loadgen \
 && usermod --password '*' loadgen

COPY swarm/loadhost/sshd.conf /etc/ssh/sshd_config.d/loadhost.conf
COPY swarm/loadhost/start.sh /usr/local/sbin/loadhost-start
EXPOSE 22
STOPSIGNAL SIGTERM
CMD ["/usr/local/sbin/loadhost-start"]
