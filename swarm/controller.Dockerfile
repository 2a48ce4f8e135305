# The SwarmGuard controller (controller/, docs/controller.md): rules over live metrics, recovery actions.
# Build context: the repository root. BASE_IMAGE is the lab's Debian bookworm image with python3,
# python3-venv, python3-pip, ca-certificates and curl (swarm/lab build passes it, see lab.md).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Only what the controller needs (README.md: setup.cfg reads it as the long description).
COPY setup.cfg pyproject.toml README.md /src/
COPY sgcommon/ /src/sgcommon/
COPY controller/ /src/controller/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install /src \
 && rm -rf /src

# The shipped rules: what the controller runs while no rule set is applied to the cluster with
# `swarmguard-controller rules apply` (docs/rules.md). A directory mounted over them is hot-reloaded.
COPY rules/ /etc/swarmguard/rules/

# Root on purpose: the controller needs the manager's /var/run/docker.sock (root:docker) to update
# services. Secrets come as files: ALERT_TOKEN_FILE, INFLUXDB_TOKEN_FILE (Docker secrets).
ENV CONTROLLER_RULES=/etc/swarmguard/rules \
    CONTROLLER_PORT=5000
EXPOSE 5000

# bash's /dev/tcp: the cheapest probe to exec here (one process, no library to load). Every probe
# costs the node ~70 ms of CPU in the engine's exec alone; curl added ~35 ms (docs/fast-recovery.md).
HEALTHCHECK --interval=5s --timeout=2s --retries=3 --start-period=5s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CONTROLLER_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# Exec form: the controller is PID 1 and gets SIGTERM itself (stops its jobs, lets running actions
# finish, flushes InfluxDB, exits 0).
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/swarmguard-controller", "run"]
