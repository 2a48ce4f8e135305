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
# bash's /dev/tcp is the cheapest probe to exec here: one process, no fork, no library to load
# (docs/fast-recovery.md has each option's CPU cost). Failures while the app boots do not count.
HEALTHCHECK --interval=250ms --timeout=1s --retries=3 --start-period=10s \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${STRESS_PORT} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]

# Exec form: the app is PID 1 and gets SIGTERM itself (it installs a handler, stops every stress,
# finishes the requests in flight and exits 0).
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/swarmguard-stressapp"]
