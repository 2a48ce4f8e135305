"""Top-level test configuration; each suite keeps its own fixtures in its folder's conftest."""
