"""Secrets come from the environment or a file (a Docker secret), never from the repo."""
from __future__ import annotations

import os
from collections.abc import Mapping


class SecretError(RuntimeError):
    """A secret file was named but cannot be read."""


def read_secret(name: str, env: Mapping[str, str] | None = None) -> str | None:
    """Returns `$NAME`, else the stripped content of the file named by `$NAME_FILE`, else None.

    A `NAME_FILE` that points at a missing or unreadable file is an error, not a silent None:
    a typo in a secret path should stop the program with a clear message.
    """
    env = os.environ if env is None else env
    value = env.get(name)
    if value:
        return value
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError as exc:
        raise SecretError(f"{name}_FILE={path}: cannot read the secret: {exc.strerror}") from exc
