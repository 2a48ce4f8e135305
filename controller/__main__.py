"""Entry point of `swarmguard-controller` (filled in by the controller issue)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="swarmguard-controller",
        description="Rule evaluation and recovery actions for SwarmGuard (not implemented yet).",
    )
    parser.parse_args(argv)
    print("swarmguard-controller: not implemented yet; see the README's status section", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
