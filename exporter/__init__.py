"""The SwarmGuard exporter: per-container metrics from cgroups and /proc on every node."""
