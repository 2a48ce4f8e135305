"""`swarmguard-controller check-rules PATH...`: validates rule files offline.

Prints every error as `file:line: rule NAME: message` and exits 1, or prints
"OK: N rules in M files" and exits 0, so a rule change can be checked in CI or before it
is copied to where the running controller hot-reloads it.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Mapping, Sequence
from typing import TextIO

from controller.rules import RuleError, load_rules, merge_overrides
from controller.rules.ruleset import printable
from sgcommon.version import add_version_argument


def run(paths: Sequence[str], *, out: TextIO, overrides: Mapping[str, float] | None = None) -> int:
    """Checks the rule files in `paths` (files or directories); returns the exit code."""
    if not paths:
        print("no rule files given", file=out)
        return 1
    try:
        ruleset = load_rules(list(paths), overrides=overrides or {})
    except RuleError as exc:  # an empty directory is one too: there would be nothing to run
        for line in exc.errors:
            print(line, file=out)
        print(f"FAILED: {_plural(len(exc.errors), 'error')}", file=out)
        return 1
    except Exception as exc:  # a bug in the loader: still one line and exit 1, never a traceback
        print(printable(f"internal error while checking the rule files: {type(exc).__name__}: {exc}"), file=out)
        return 1
    print(f"OK: {_plural(len(ruleset.rules), 'rule')} in {_plural(len(ruleset.files), 'file')}", file=out)
    return 0


def check(paths: Sequence[str], *, env: Mapping[str, str], thresholds: Sequence[str], out: TextIO) -> int:
    """Checks `paths` with the threshold overrides the controller would apply (env and NAME=VALUE)."""
    if isinstance(out, io.TextIOWrapper):  # a terminal or pipe that cannot encode a file name still gets the line
        out.reconfigure(errors="backslashreplace")
    try:
        overrides = merge_overrides(env, thresholds)
    except RuleError as exc:
        for line in exc.errors:
            print(line, file=out)
        return 1
    return run(paths, out=out, overrides=overrides)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.check_rules", description=__doc__.splitlines()[0])
    add_version_argument(parser)
    parser.add_argument("paths", nargs="+", help="rule files or directories of *.yml files")
    parser.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                        help="override a threshold, as the controller would (also SWARMGUARD_THRESHOLD_<NAME>)")
    args = parser.parse_args(argv)
    return check(args.paths, env=os.environ, thresholds=args.threshold, out=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
