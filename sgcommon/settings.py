"""Layered settings (docs/controller.md, "Running it"): defaults < YAML file < environment < command line.

A component describes its settings as a dataclass; each field has a default and a
docstring-like `help` in its metadata, and optionally the environment variable that
sets it (`env=`, default `PREFIX_FIELDNAME`). `load_settings` merges the layers and
converts types, reporting every bad value at once.

A field whose type is itself a settings dataclass (declared with `group()`) nests, as in
kopf's settings: its fields are named by their path, everywhere from the same rule. For
`actions.workers` under prefix `CONTROLLER_`: YAML `actions: {workers: 8}`, environment
`CONTROLLER_ACTIONS_WORKERS`, option `--actions-workers`, and error messages say `actions.workers`.

A settings class may list settings it renamed in a class attribute `RENAMED` (old dotted name ->
new dotted name): an old name given in any layer is refused with the new one, so an operator's
old setting never silently falls back to a default.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


def setting(default: Any, help: str, *, env: str | None = None) -> Any:
    """Declares a settings field with its help text and optional environment variable name."""
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help, "env": env})
    return dataclasses.field(default=default, metadata={"help": help, "env": env})


def group(cls: type, help: str) -> Any:
    """Declares a nested group of settings: a field whose type is the settings dataclass `cls`."""
    return dataclasses.field(default_factory=cls, metadata={"help": help})


def _convert(raw: Any, typ: Any, where: str) -> Any:
    if typ is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"{where}: expected true/false, got {raw!r}")
    if typ in (int, float):
        if isinstance(raw, bool):
            raise SettingsError(f"{where}: expected a number, got {raw!r}")
        if typ is int and isinstance(raw, float) and not raw.is_integer():  # int() would truncate it
            raise SettingsError(f"{where}: expected an integer, got {raw!r}")
        try:
            return typ(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"{where}: expected {'an integer' if typ is int else 'a number'}, got {raw!r}") from None
    if typ == list[str]:
        if isinstance(raw, str):
            return [part.strip() for part in raw.split(",") if part.strip()]
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return list(raw)
        raise SettingsError(f"{where}: expected a list of strings, got {raw!r}")
    if typ is str or typ == (str | None):
        if raw is None and typ is not str:
            return None
        if isinstance(raw, (dict, list)):
            raise SettingsError(f"{where}: expected a string, got {raw!r}")
        return str(raw)
    raise SettingsError(f"{where}: unsupported setting type {typ!r}")


@dataclass(frozen=True)
class _Leaf:
    """One setting of a (possibly nested) settings class, with the names it has in every layer."""

    path: tuple[str, ...]
    field: dataclasses.Field[Any]
    typ: Any
    env: str

    @property
    def name(self) -> str:
        return ".".join(self.path)

    @property
    def flag(self) -> str:
        return flag_name(self.name)


def flag_name(dotted: str) -> str:
    return "--" + dotted.replace(".", "-").replace("_", "-")


def _groups(cls: type) -> dict[str, Any]:
    """The fields of `cls` that are nested settings classes, with their class."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)
            if isinstance(hints[f.name], type) and dataclasses.is_dataclass(hints[f.name])}


def _leaves(cls: type, prefix: str, path: tuple[str, ...] = ()) -> Iterator[_Leaf]:
    hints = get_type_hints(cls)
    nested = _groups(cls)
    for field in dataclasses.fields(cls):
        here = (*path, field.name)
        if field.name in nested:
            yield from _leaves(nested[field.name], prefix, here)
        else:
            yield _Leaf(here, field, hints[field.name], field.metadata.get("env") or prefix + "_".join(here).upper())


def _renamed(cls: type) -> Mapping[str, str]:
    return getattr(cls, "RENAMED", {})


def load_settings(
    cls: type[T],
    *,
    prefix: str,
    yaml_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Builds `cls` from its defaults, the YAML file, the environment and `overrides` (CLI, by dotted name)."""
    env = os.environ if env is None else env
    leaves = {leaf.name: leaf for leaf in _leaves(cls, prefix)}
    renamed = _renamed(cls)
    raw: dict[str, tuple[Any, str]] = {}
    errors: list[str] = []
    if yaml_path:
        _read_yaml(yaml_path, cls, raw, errors)
    for old, new in renamed.items():
        var = prefix + old.replace(".", "_").upper()
        if env.get(var, "") != "" and var not in {leaf.env for leaf in leaves.values()}:
            errors.append(f"{var} is now {leaves[new].env}")
    for name, leaf in leaves.items():
        if env.get(leaf.env, "") != "":
            raw[name] = (env[leaf.env], leaf.env)
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name in renamed:
            errors.append(f"{flag_name(name)} is now {flag_name(renamed[name])}")
        elif name not in leaves:
            errors.append(f"{flag_name(name)}: unknown setting {name!r}")
        else:
            raw[name] = (value, flag_name(name))
    values: dict[str, Any] = {}
    for name, (value, where) in raw.items():
        try:
            values[name] = _convert(value, leaves[name].typ, where)
        except SettingsError as exc:
            errors.append(str(exc))
    if errors:
        raise SettingsError("; ".join(errors))
    return _build(cls, values, ())


def _read_yaml(yaml_path: str, cls: type, raw: dict[str, tuple[Any, str]], errors: list[str]) -> None:
    import yaml  # here: only a settings file needs it, and every command's start pays for the import

    try:
        with open(yaml_path, encoding="utf-8") as fh:
            doc = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise SettingsError(f"{yaml_path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{yaml_path}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise SettingsError(f"{yaml_path}: expected a mapping of settings")
    _yaml_mapping(yaml_path, cls, doc, (), raw, errors)


def _yaml_mapping(yaml_path: str, cls: type, doc: Mapping[Any, Any], path: tuple[str, ...],
                  raw: dict[str, tuple[Any, str]], errors: list[str]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    nested = _groups(cls)
    renamed = _renamed(cls) if not path else {}
    for key, value in doc.items():
        dotted = ".".join((*path, str(key)))
        if key in renamed:
            errors.append(f"{yaml_path}: setting {dotted!r} is now {renamed[key]!r}")
        elif key not in names:
            errors.append(f"{yaml_path}: unknown setting {dotted!r}")
        elif key in nested:
            if value is None:
                continue
            if not isinstance(value, dict):
                errors.append(f"{yaml_path}: {dotted}: expected a mapping of settings, got {value!r}")
                continue
            _yaml_mapping(yaml_path, nested[key], value, (*path, key), raw, errors)
        else:
            raw[dotted] = (value, f"{yaml_path}: {dotted}")


def _build(cls: type[T], values: Mapping[str, Any], path: tuple[str, ...]) -> T:
    """`cls` from the converted values of its leaves (dotted names); a nested group's own checks
    (`__post_init__`) report its settings by their dotted names."""
    kwargs: dict[str, Any] = {}
    errors: list[str] = []
    nested = _groups(cls)
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        dotted = ".".join((*path, field.name))
        if field.name in nested:
            try:
                kwargs[field.name] = _build(nested[field.name], values, (*path, field.name))
            except SettingsError as exc:
                errors.append(_within(field.name, str(exc)))
        elif dotted in values:
            kwargs[field.name] = values[dotted]
    if errors:
        raise SettingsError("; ".join(errors))
    return cls(**kwargs)


def _within(group_name: str, message: str) -> str:
    """A nested class's `name: problem; ...` message with each name given its group's path."""
    parts = message.split("; ")
    return "; ".join(part if part.startswith(f"{group_name}.") else f"{group_name}.{part}" for part in parts)


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, prefix: str) -> None:
    """Adds one `--path-name` option per setting (nested ones too), defaulting to None (= not given).
    Renamed settings keep a hidden option, so the old name is refused with the new one."""
    for leaf in _leaves(cls, prefix):
        field = leaf.field
        default = field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        text = f"{field.metadata.get('help', '')} (env {leaf.env}; default {default!r})"
        if leaf.typ is bool:
            parser.add_argument(leaf.flag, dest=leaf.name, default=None, action=argparse.BooleanOptionalAction,
                                help=text)
        else:
            parser.add_argument(leaf.flag, dest=leaf.name, default=None, metavar=leaf.path[-1].upper(), help=text)
    for old in _renamed(cls):
        parser.add_argument(flag_name(old), dest=old, default=None, nargs="?", const="given", help=argparse.SUPPRESS)


def cli_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The options given, by dotted setting name (renamed ones under their old name)."""
    names = [leaf.name for leaf in _leaves(cls, "")] + list(_renamed(cls))
    return {name: getattr(args, name, None) for name in names}


def describe(settings: Any) -> Sequence[tuple[str, Any]]:
    """The settings as (dotted name, value) pairs, for logging at start-up (no secrets in settings)."""
    pairs: list[tuple[str, Any]] = []
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            pairs += [(f"{field.name}.{name}", inner) for name, inner in describe(value)]
        else:
            pairs.append((field.name, value))
    return pairs
