# The web-stress test application (stressapp/, docs/stressapp.md).
# Build context: the repository root. BASE_IMAGE is the lab's Debian bookworm image with python3,
# python3-venv, python3-pip, ca-certificates and curl (swarm/lab build passes it, see lab.md).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# Only what the stress app needs (README.md: setup.cfg reads it as the long description).
COPY setup.cfg pyproject.toml README.md /src/
COPY sgcommon/ /src/sgcommon/
COPY stressapp/ /src/stressapp/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install /src \
 && rm -rf /src \
 && useradd --system --no-create-home --shell /usr/sbin/nologin stress

USER stress
ENV STRESS_HOST=0.0.0.0 \
    STRESS_PORT=8080 \
    STRESS_SINK_PORT=8081
EXPOSE 8080 8081

# A new replica serves (and a migration's T5 comes) only once healthy, and the first probe runs one
# interval after the start: engine 20.10 has no --start-interval, so the interval itself is short.
# Every probe is an exec that costs the node ~70 ms of CPU, so health-probe keeps that cheap: while
# the app has never answered, one exec retries every 50 ms; once it has, each probe first sleeps
# 2 s (swarm/health-probe, docs/fast-recovery.md). Shell form, for the port in STRESS_PORT.
COPY swarm/health-probe /usr/local/bin/health-probe
HEALTHCHECK --interval=100ms --timeout=5s --retries=3 --start-period=10s \
  CMD health-probe "$STRESS_PORT" /health

# Exec form: the app is PID 1 and gets SIGTERM itself (it installs a handler, stops every stress,
# finishes the requests in flight and exits 0).
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/swarmguard-stressapp"]
