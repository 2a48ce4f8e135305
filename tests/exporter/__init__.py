"""Tests of the exporter (issue 4)."""
