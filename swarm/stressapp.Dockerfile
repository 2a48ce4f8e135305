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

# Probe once a second with curl: a python probe every second costs ~7 % of a core (lab.md).
# Engine 20.10 has no --start-interval, so the interval itself is 1 s.
HEALTHCHECK --interval=1s --timeout=1s --retries=3 \
  CMD curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:${STRESS_PORT}/health" || exit 1

# Exec form: the app is PID 1 and gets SIGTERM itself (it installs a handler, stops every stress,
# finishes the requests in flight and exits 0).
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/swarmguard-stressapp"]
