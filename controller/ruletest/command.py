"""`swarmguard-controller test-rules FILE...`: unit tests for rule files, in the manner of `promtool test rules`.

Each test file (docs/rules.md, "Testing rules") names rule files and replays recorded or written
series through the controller's own cache and rule engine (controller/ruletest/replay.py), then
checks the decisions. Exit codes: 0 every test passed, 1 a test failed (its diff is printed),
2 a test file is broken (every problem as `file:line: message`, as check-rules prints them; a
broken file never gives a traceback). Files are tested independently: a broken one does not stop
the others.
"""
from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from typing import TextIO

from controller.rules.loader import rule_files
from controller.rules.ruleset import printable
from controller.ruletest.check import run_test
from controller.ruletest.spec import TestFileError, load_test_file

OK, FAILED, BROKEN = 0, 1, 2


def run(paths: Sequence[str], *, out: TextIO, verbose: bool = False) -> int:
    """Runs the test files in `paths` (files, or directories of *.yml / *.yaml); returns the exit code."""
    if isinstance(out, io.TextIOWrapper):  # a file name the terminal cannot encode still prints
        out.reconfigure(errors="backslashreplace")
    files: list[str] = []
    errors = [] if paths else ["no test files given"]
    for path in paths:
        found, problems = rule_files([path])  # the rule files' listing: *.yml and *.yaml, hidden ones aside
        errors.extend(problems)
        if not found and not problems:
            errors.append(f"no test files (*.yml, *.yaml) in {path}")
        files.extend(f for f in found if f not in files)
    for line in errors:
        print(printable(line), file=out)
    broken = len(errors)
    passed = failed = 0
    for path in files:
        try:
            test_file = load_test_file(path)
        except TestFileError as exc:
            for line in exc.errors:
                print(printable(line), file=out)
            broken += len(exc.errors)
            continue
        except Exception as exc:  # a bug in the reader: one line and exit 2, never a traceback
            print(printable(f"{path}: internal error while reading the test file: {type(exc).__name__}: {exc}"),
                  file=out)
            broken += 1
            continue
        file_failed = 0
        for test in test_file.tests:
            try:
                outcome = run_test(test)
            except Exception as exc:  # a bug in the replay: the test cannot be trusted either way
                print(printable(f"{path}:{test.line}: {test.name}: internal error while replaying: "
                                f"{type(exc).__name__}: {exc}"), file=out)
                broken += 1
                continue
            if outcome.passed:
                passed += 1
                if verbose:
                    print(printable(f"PASS {path}:{test.line}: {test.name}"), file=out)
                continue
            failed += 1
            file_failed += 1
            print(printable(f"FAIL {path}:{test.line}: {test.name}"), file=out)
            for line in outcome.failures:
                print(printable(f"  {line}"), file=out)
        if not file_failed and not verbose:
            print(printable(f"PASS {path}: {_plural(len(test_file.tests), 'test')}"), file=out)
    total = passed + failed
    where = f"in {_plural(len(files), 'file')}"
    if broken:
        print(f"BROKEN: {_plural(broken, 'error')} in the test files ({passed} of {_plural(total, 'test')} "
              f"passed in the files that load)", file=out)
        return BROKEN
    if failed:
        print(f"FAILED: {failed} of {_plural(total, 'test')} {where}", file=out)
        return FAILED
    print(f"OK: {_plural(total, 'test')} {where}", file=out)
    return OK


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def add_parser(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """The `test-rules` subcommand of `swarmguard-controller`."""
    parser = commands.add_parser("test-rules", help="run rule unit tests (replayed series, expected decisions); "
                                 "exit 1 on a failed test, 2 on a broken test file")
    _arguments(parser)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="FILE", help="test files, or directories of *.yml test files")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every test that passed")


def main(argv: list[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.ruletest", description=__doc__.splitlines()[0])
    _arguments(parser)
    args = parser.parse_args(argv)
    return run(args.paths, out=out, verbose=args.verbose)
