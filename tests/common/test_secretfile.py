"""Secrets come from the environment or a Docker secret file, and a bad file path is an error."""
from __future__ import annotations

import pytest

from sgcommon.secretfile import SecretError, read_secret


def test_the_environment_value_wins() -> None:
    assert read_secret("TOKEN", {"TOKEN": "abc", "TOKEN_FILE": "/nonexistent"}) == "abc"


def test_the_file_is_read_and_stripped(tmp_path) -> None:
    path = tmp_path / "token"
    path.write_text("s3cret\n")
    assert read_secret("TOKEN", {"TOKEN_FILE": str(path)}) == "s3cret"


def test_no_secret_at_all_is_none() -> None:
    assert read_secret("TOKEN", {}) is None


def test_a_missing_secret_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(SecretError, match="TOKEN_FILE=.*cannot read"):
        read_secret("TOKEN", {"TOKEN_FILE": str(tmp_path / "missing")})
