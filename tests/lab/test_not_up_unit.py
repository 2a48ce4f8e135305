"""Every tool says clearly that the lab is not up, and exits 2, instead of failing somewhere later."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from labkit import baseline, cleanup, deploy, labinfo, zerodowntime

MAINS: list[Callable[[Sequence[str]], int]] = [baseline.main, cleanup.main, deploy.main, zerodowntime.main]


@pytest.fixture
def no_lab(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(labinfo, "WORKERS_FILE", tmp_path / "workers")


def test_check_lab_says_how_to_bring_the_lab_up(no_lab: None) -> None:
    with pytest.raises(labinfo.LabNotUp, match=r"swarm/lab up"):
        labinfo.check_lab()


@pytest.mark.parametrize("main", MAINS, ids=lambda m: m.__module__.rsplit(".", 1)[1])
def test_a_tool_exits_2_with_the_reason_when_the_lab_is_not_up(
    no_lab: None, main: Callable[[Sequence[str]], int], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["--output", str(tmp_path / "out")] if main in (baseline.main, zerodowntime.main) else []
    assert main(argv) == 2
    assert "the lab is not up" in capsys.readouterr().err

