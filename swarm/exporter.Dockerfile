# The SwarmGuard exporter (exporter/, docs/exporter.md): per-container metrics from cgroups and /proc.
# Build context: the repository root. BASE_IMAGE is the lab's Debian bookworm image with python3,
# python3-venv, python3-pip, ca-certificates and curl (swarm/lab build passes it, see lab.md).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Only what the exporter needs (README.md: setup.cfg reads it as the long description).
COPY setup.cfg pyproject.toml README.md /src/
COPY sgcommon/ /src/sgcommon/
COPY exporter/ /src/exporter/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install /src \
 && /opt/venv/bin/python -m compileall -q /opt/venv \
 && rm -rf /src \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin sgexporter

# Root by default, on purpose: discovery needs /var/run/docker.sock (root:docker, 0660) and the
# docker group's gid differs between distributions (108 on Debian 12, often 999 on Ubuntu), so
# no fixed non-root user can open it on every node. Where all nodes share that gid, run it as
# `user: "10001:<docker gid>"` in the stack: cgroup files and /proc/<pid>/net/dev are world-readable
# (checked on this lab). Nothing is written at run time: `read_only: true` works as is.
ENV EXPORTER_CGROUP_ROOT=/host/sys/fs/cgroup \
    EXPORTER_PROC_ROOT=/host/proc \
    EXPORTER_SYS_ROOT=/host/sys \
    EXPORTER_PORT=9101
EXPOSE 9101

# bash's /dev/tcp: the cheapest probe to exec here (one process, no library to load). Every probe
# costs the node ~70 ms of CPU in the engine's exec alone; curl added ~35 ms (docs/fast-recovery.md).
HEALTHCHECK --interval=10s --timeout=2s --retries=3 --start-period=5s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${EXPORTER_PORT} && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# Exec form: the exporter is PID 1 and gets SIGTERM itself (stops its threads, flushes InfluxDB).
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/swarmguard-exporter"]
