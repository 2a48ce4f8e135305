"""Entry point of `swarmguard-exporter` (filled in by the exporter issue)."""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="swarmguard-exporter",
        description="Per-container CPU, memory and network metrics for SwarmGuard (not implemented yet).",
    )
    parser.parse_args(argv)
    print("swarmguard-exporter: not implemented yet; see the README's status section", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
