"""What the product says points at what its readers have: docs/ or a public source.

Comments, help texts, docs and reports cite `docs/...` or a URL, never a requirements document,
design notes or issue numbers that live outside the repository (a user has none of them).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(r"\bissues? [0-9]+|\bfacts? [0-9]+|\bPRD\b|\bspec [0-9]|shared/(design|spec)|facts\.md|swarmguard-prd")
SELF = Path(__file__).resolve()


SKIP_DIRS = {".git", ".venv", "results", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache",
             ".ruff_cache", "swarmguard.egg-info"}


def tracked_text_files() -> list[Path]:
    """The repository's files: git's list, or the tree without build output where there is no git."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode == 0:
        candidates = [ROOT / name.decode() for name in listed.stdout.split(b"\0") if name]
    else:
        candidates = [p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)]
    files = []
    for path in candidates:
        if path.resolve() == SELF or path.suffix in (".png", ".whl") or not path.is_file():
            continue
        files.append(path)
    return files


def test_no_tracked_file_cites_documents_or_issues_outside_the_repository() -> None:
    found = []
    for path in tracked_text_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if PRIVATE.search(line) and "re.search(" not in line:  # a test's own check of the pattern
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert found == [], "\n".join(found)


def test_the_check_finds_a_citation_it_must_refuse() -> None:
    # built from parts, so that this file holds no citation itself
    samples = ["see fa" + "ct 20", "(spe" + "c 4.2)", "PR" + "D script 3", "is" + "sue 6's goal",
               "../shared/" + "design/lab.md"]
    assert all(PRIVATE.search(text) for text in samples)
    assert not any(PRIVATE.search(text) for text in ("docs/lab.md", "specs 3", "a tissue 4", "PRDX"))
