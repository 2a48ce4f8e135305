"""Every tool says clearly that the lab is not up, and exits 2, instead of failing somewhere later."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from labkit import (baseline, cleanup, deploy, fastleak, labinfo, mttr, rebalance_lab, scenario1, scenario3, suite,
                    zerodowntime)
from sgcommon.engine import EngineError

MAINS: list[Callable[[Sequence[str]], int]] = [baseline.main, cleanup.main, deploy.main, zerodowntime.main,
                                               fastleak.main, mttr.main, rebalance_lab.main, scenario1.main,
                                               scenario3.main, suite.main]
WRITE_OUTPUT = (baseline.main, zerodowntime.main, fastleak.main, mttr.main, rebalance_lab.main, scenario1.main,
                scenario3.main)
EXTRA_ARGS = {"labkit.mttr": ["--scenario", "1"]}


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
    argv = EXTRA_ARGS.get(main.__module__, []) + (["--output", str(tmp_path / "out")] if main in WRITE_OUTPUT else [])
    if main is suite.main:
        argv = ["--out", str(tmp_path / "suite")]
    assert main(argv) == 2
    assert "the lab is not up" in capsys.readouterr().err



def test_a_tool_exits_1_with_one_line_on_an_engine_error_or_a_named_error(capsys: pytest.CaptureFixture[str]) -> None:
    @labinfo.lab_tool("tool", also=(KeyError,))
    def fails(error: Exception) -> int:
        raise error

    assert fails(EngineError("the engine said no")) == 1
    assert capsys.readouterr().err == "tool: the engine said no\n"
    assert fails(KeyError("k")) == 1
    assert capsys.readouterr().err == "tool: 'k'\n"


def test_a_tool_keeps_the_traceback_of_an_error_it_does_not_expect() -> None:
    @labinfo.lab_tool("tool")
    def fails() -> int:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        fails()
