"""Reads the measurement, field, tag and column names out of a Flux query, and checks them.

Not a Flux parser: the dashboards keep to a few plain forms, and anything the reader cannot
check is reported rather than let through (a `_measurement` or `_field` compared other than by
`r.<column> == "literal"`; reading their values, as in `r._field + "="`, is fine).
Before the first `pivot(...)` a record name `r.x` or a column list names a tag; after it, fields
have become columns, so a name may be a tag or a field. Names that the query itself creates
(labels of `map` and `reduce` records, `rename` targets) are allowed everywhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from tests.grafana.written import Schema

BUILTIN_COLUMNS = frozenset({"_time", "_value", "_field", "_measurement", "_start", "_stop"})
GRAFANA_VARIABLES = frozenset({"__interval", "__interval_ms", "__range", "__range_s", "__range_ms",
                               "__rate_interval", "__from", "__to", "__dashboard", "__org", "__user", "__field"})

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RECORD_INDEX = re.compile(r'\br\["([^"]+)"\]')
_MEASUREMENT_EQ = re.compile(r'\br\._measurement\s*==\s*"([^"]*)"')
_FIELD_EQ = re.compile(r'\br\._field\s*==\s*"([^"]*)"')
_OTHER_COMPARISON = {  # comparisons the reader cannot check: a regex, a negation, a column on the right
    column: re.compile(rf'\br\.{column}\s*(?:!=|=~|!~|<|>|==(?!\s*"))|(?:==|!=)\s*r\.{column}\b')
    for column in ("_measurement", "_field")
}
_RECORD_NAME = re.compile(r"\br\.(\w+)")
_LIST_ARG = re.compile(r"\b(columns|rowKey|columnKey)\s*:\s*\[([^\]]*)\]")
_STRING_ARG = re.compile(r'\b(valueColumn|column|tag|measurement)\s*:\s*"([^"]*)"')
_RENAME = re.compile(r"\brename\(\s*columns\s*:\s*\{([^}]*)\}")
_RENAME_PAIR = re.compile(r'(\w+)\s*:\s*"([^"]*)"')
_LABEL = re.compile(r"(?<![\w.$])(\w+)\s*:")
_CALL = re.compile(r"\b\w+\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$\{(\w+)(?::[\w]+)?\}|\$(\w+)")


@dataclass
class FluxNames:
    measurements: set[str] = field(default_factory=set)
    fields: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)  # named before any pivot
    columns: set[str] = field(default_factory=set)  # named after a pivot: a tag, a field or a created name
    created: set[str] = field(default_factory=set)
    variables: set[str] = field(default_factory=set)
    unreadable: list[str] = field(default_factory=list)


def _without_comments(query: str) -> str:
    return "\n".join(_STRING.sub(lambda m: m.group(0).replace("//", "\0"), line).split("//")[0].replace("\0", "//")
                     for line in query.splitlines())


def _call_body(text: str, start: int) -> str:
    """The text between the parenthesis at `start` and its match."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i]
    raise ValueError(f"unbalanced parentheses after: {text[start:start + 60]!r}")


def _created_names(text: str) -> set[str]:
    created: set[str] = set()
    for match in re.finditer(r"\b(?:map|reduce)\s*\(", text):
        body = _VARIABLE.sub("", _STRING.sub('""', _call_body(text, match.end() - 1)))
        while _CALL.search(body):  # arguments of calls inside the record are not its labels
            body = _CALL.sub("call", body)
        created |= {name for name in _LABEL.findall(body) if name not in ("fn", "identity")}
    for match in _RENAME.finditer(text):
        created |= {new for _old, new in _RENAME_PAIR.findall(match.group(1))}
    return created


def _pivot_end(text: str) -> int:
    match = re.search(r"\bpivot\s*\(", text)
    if match is None:
        return len(text)
    return match.end() + len(_call_body(text, match.end() - 1)) + 1


def _column_names(text: str) -> set[str]:
    """Names in record accesses and in column arguments, `_measurement`/`_field` comparisons left out."""
    names = set(_RECORD_NAME.findall(text))
    for _arg, items in _LIST_ARG.findall(text):
        names |= set(re.findall(r'"([^"]*)"', items))
    names |= {value for arg, value in _STRING_ARG.findall(text) if arg in ("valueColumn", "column", "tag")}
    for match in _RENAME.finditer(text):
        names |= {old for old, _new in _RENAME_PAIR.findall(match.group(1))}
    return names


def read_names(query: str) -> FluxNames:
    text = _RECORD_INDEX.sub(r"r.\1", _without_comments(query))
    names = FluxNames(created=_created_names(text))
    names.measurements = set(_MEASUREMENT_EQ.findall(text)) | {
        value for arg, value in _STRING_ARG.findall(text) if arg == "measurement"}
    names.fields = set(_FIELD_EQ.findall(text))
    names.unreadable = [f'r.{column} compared other than by == "literal"'
                        for column, pattern in _OTHER_COMPARISON.items() if pattern.search(text)]
    split = _pivot_end(text)
    names.tags = _column_names(text[:split]) - BUILTIN_COLUMNS - names.created
    names.columns = _column_names(text[split:]) - BUILTIN_COLUMNS - names.created
    names.variables = {a or b for a, b in _VARIABLE.findall(text)}
    return names


def problems(query: str, schema: Schema, *, variables: set[str] = frozenset()) -> list[str]:
    """Every name the query uses that nothing writes, each as a sentence (empty: all known)."""
    names = read_names(query)
    found = list(names.unreadable)
    if not names.measurements:
        found.append("names no measurement (r._measurement == \"...\")")
    unknown = sorted(names.measurements - set(schema))
    found += [f"unknown measurement {m!r} (written: {', '.join(sorted(schema))})" for m in unknown]
    known = [schema[m] for m in sorted(names.measurements) if m in schema]
    if not known:
        return found
    fields = set().union(*(m.fields for m in known))
    tags = set().union(*(m.tags for m in known))
    where = "/".join(sorted(names.measurements & set(schema)))
    found += [f"unknown field {f!r} of {where} (written: {', '.join(sorted(fields))})" for f in sorted(names.fields - fields)]
    found += [f"unknown tag {t!r} of {where} (written: {', '.join(sorted(tags))})" for t in sorted(names.tags - tags)]
    found += [f"unknown column {c!r} of {where} after pivot (tags: {', '.join(sorted(tags))}; fields: {', '.join(sorted(fields))})"
              for c in sorted(names.columns - tags - fields)]
    found += [f"undefined dashboard variable ${v}" for v in sorted(names.variables - set(variables) - GRAFANA_VARIABLES)]
    return found
