"""Pieces shared by the exporter, the controller and the test tools.

Each module has one job: structured logging, secrets, the alert wire format,
layered settings, and the single adapter to the Docker Engine API.
"""
