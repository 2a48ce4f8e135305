# Stand-in for swarm/stressapp.Dockerfile, used by `swarm/lab build` only while that file does not
# exist: a tiny HTTP server with the stress app's /health contract, port 8080 and SIGTERM exit,
# so the lab, the probe and the baseline can be developed before the real app lands.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY swarm/lab.d/standin_app.py /opt/standin_app.py
RUN useradd --system --no-create-home app
USER app
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD curl -fsS -o /dev/null http://127.0.0.1:8080/health || exit 1
CMD ["python3", "/opt/standin_app.py"]
