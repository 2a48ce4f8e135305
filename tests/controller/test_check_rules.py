"""`check-rules`: exit code and output for good, bad and missing files."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from controller import check_rules

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data" / "rules"


def check(*paths: str, overrides: dict[str, float] | None = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = check_rules.run(list(paths), out=out, overrides=overrides)
    return code, out.getvalue().splitlines()


def test_the_default_rules_pass() -> None:
    assert check(str(ROOT / "rules")) == (0, ["OK: 8 rules in 1 file"])


def test_a_directory_of_good_files_passes_with_counts() -> None:
    assert check(str(DATA / "good" / "split")) == (0, ["OK: 3 rules in 2 files"])


def test_a_bad_file_prints_every_error_and_fails() -> None:
    path = DATA / "bad" / "every_error.yml"
    code, lines = check(str(path))
    assert code == 1
    errors = lines[:-1]
    assert len(errors) >= 15 and all(line.startswith(f"{path}:") for line in errors)
    assert lines[-1] == f"FAILED: {len(errors)} errors"


def test_a_bad_override_fails_the_check() -> None:
    code, lines = check(str(ROOT / "rules"), overrides={"cpu": 3})
    assert code == 1 and "unknown threshold 'cpu'" in lines[0]


def test_no_paths_or_an_empty_directory_fail(tmp_path: Path) -> None:
    assert check()[0] == 1
    code, lines = check(str(tmp_path))
    assert code == 1 and lines == [f"no rule files (*.yml, *.yaml) in {tmp_path}", "FAILED: 1 error"]


def test_the_module_runs_as_a_command_with_threshold_overrides() -> None:
    ok = subprocess.run([sys.executable, "-m", "controller.check_rules", str(ROOT / "rules"),
                         "--threshold", "cpu_high=80"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert (ok.returncode, ok.stdout) == (0, "OK: 8 rules in 1 file\n")
    bad = subprocess.run([sys.executable, "-m", "controller.check_rules", str(ROOT / "rules"),
                          "--threshold", "cpu_high=x"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 1 and "expected a number" in bad.stdout


def test_every_good_test_file_passes_and_every_bad_one_fails() -> None:
    good = sorted((DATA / "good").rglob("*.yml"))
    bad = sorted((DATA / "bad").rglob("*.yml"))
    assert good and bad
    assert check(*map(str, good))[0] == 0
    for path in bad:  # loaded next to the defaults, as they would be deployed
        assert check(str(ROOT / "rules"), str(path))[0] == 1, path
