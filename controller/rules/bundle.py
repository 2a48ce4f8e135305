"""A rule set as one document: every file of the set, with its name, in load order.

Why: a Swarm config is one blob, but a rule set is a directory of files, and every problem must
still be reported as `file:line` of the operator's own files. So `swarmguard-controller rules apply`
stores the set as one JSON document holding each file's name and text (docs/rules.md, "Rules on a
real cluster"), and the controller reads it back into (name, bytes) pairs for
`loader.load_rule_texts`, the loader every rule file goes through.

The document is canonical (sorted keys, no spaces, UTF-8), so the same files always give the same
bytes, and a set is named by them: `swarmguard-rules-<first 12 hex digits of their SHA-256>`. The
name means the content wherever the set comes from: the controller reports the same name for a
directory it reads as for the config `rules apply` made from that directory.

`decode` trusts nothing: whatever the bytes, the only exception it raises is RuleError, with a
message naming what is wrong (not JSON, an unknown format, a bad or repeated file name, text that is
not UTF-8, a document larger than a Swarm config can hold).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from controller.rules.loader import RuleFileError, read_rule_file, rule_files
from controller.rules.ruleset import RuleError
from sgcommon.engine.configs import MAX_CONFIG_DATA

FORMAT = 1
NAME_PREFIX = "swarmguard-rules-"
NAME_RE = re.compile(r"swarmguard-rules-[0-9a-f]{12}")
# A file name inside a stored set: what a directory listing of rule files gives, made safe to show in
# a label, a log line and a `file:line` message.
FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(?:yml|yaml)")


@dataclass(frozen=True)
class RuleBundle:
    """The files of one rule set, (name, bytes) in load order."""

    files: tuple[tuple[str, bytes], ...]

    def encode(self) -> bytes:
        """The canonical document. Raises RuleError if a file's bytes are not UTF-8 text (the loader
        refuses such a file anyway; a JSON string cannot carry it)."""
        entries = []
        for name, data in self.files:
            try:
                entries.append({"name": name, "text": data.decode("utf-8")})
            except UnicodeDecodeError:
                raise RuleError([f"{name}: not UTF-8 text"]) from None
        doc = {"format": FORMAT, "files": entries}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def name(self) -> str:
        """`swarmguard-rules-<12 hex digits>`, from the canonical document (see the module docstring)."""
        return name_of(self.encode())

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.files)

    def problems(self) -> list[str]:
        """Why this set cannot be stored as a Swarm config ([] when it can)."""
        errors = [f"{name}: a stored rule set takes file names of letters, digits, '_', '.' and '-' "
                  "ending in .yml or .yaml (at most 104 characters): rename the file"
                  for name in self.file_names if not FILE_NAME_RE.fullmatch(name)]
        seen: set[str] = set()
        for name in self.file_names:
            if name in seen:
                errors.append(f"{name}: two files of the set have this name; a stored set keeps one directory level")
            seen.add(name)
        if not self.files:
            errors.append("no rule files given")
        if not errors:
            size = len(self.encode())
            if size > MAX_CONFIG_DATA:
                errors.append(f"the rule set is {size} bytes as a document; a Swarm config holds at most "
                              f"{MAX_CONFIG_DATA} bytes: make the files smaller")
        return errors


def name_of(document: bytes) -> str:
    return NAME_PREFIX + hashlib.sha256(document).hexdigest()[:12]


def from_paths(paths: Sequence[str]) -> RuleBundle:
    """The rule files behind `paths` (as `load_rules` lists them), each named by its base name.

    Raises RuleError when a path or a file cannot be read; a file deleted since the listing is left
    out, as the loader does.
    """
    files, errors = rule_files(paths)
    read: list[tuple[str, bytes]] = []
    for path in files:
        try:
            read.append((os.path.basename(path), read_rule_file(path)))
        except RuleFileError as exc:
            if not (exc.missing and path not in paths):
                errors.append(f"{path}: {exc}")
    if errors:
        raise RuleError(errors)
    return RuleBundle(tuple(read))


def decode(document: bytes, *, where: str) -> RuleBundle:
    """The files of a stored rule set; RuleError naming `where` (the config) and the problem."""
    def refuse(message: str) -> RuleError:
        return RuleError([f"{where}: {message}"])

    if len(document) > MAX_CONFIG_DATA:
        raise refuse(f"{len(document)} bytes, more than a Swarm config holds ({MAX_CONFIG_DATA})")
    try:
        doc = json.loads(document.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise refuse(f"not a rule set stored by `swarmguard-controller rules apply` (not JSON: {exc})") from None
    if not isinstance(doc, dict) or set(doc) != {"format", "files"}:
        raise refuse("not a rule set stored by `swarmguard-controller rules apply` "
                     "(expected a JSON object with 'format' and 'files')")
    if doc["format"] != FORMAT or isinstance(doc["format"], bool):
        raise refuse(f"rule set format {str(doc['format'])[:20]!r}: this controller reads format {FORMAT} "
                     "(was it stored by a newer swarmguard-controller?)")
    entries = doc["files"]
    if not isinstance(entries, list) or not entries:
        raise refuse("'files' must be a non-empty list")
    files: list[tuple[str, bytes]] = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != {"name", "text"}:
            raise refuse(f"file #{index}: expected an object with 'name' and 'text'")
        name, text = entry["name"], entry["text"]
        if not isinstance(name, str) or not FILE_NAME_RE.fullmatch(name):
            raise refuse(f"file #{index}: {str(name)[:120]!r} is not a rule file name "
                         "(letters, digits, '_', '.', '-', ending in .yml or .yaml)")
        if not isinstance(text, str):
            raise refuse(f"{name}: 'text' must be a string")
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate written as a JSON escape
            raise refuse(f"{name}: not UTF-8 text") from None
        files.append((name, data))
    bundle = RuleBundle(tuple(files))
    problems = bundle.problems()
    if problems:
        raise RuleError([f"{where}: {problem}" for problem in problems])
    return bundle
