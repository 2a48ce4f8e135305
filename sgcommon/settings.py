"""Layered settings (spec 3.3): defaults < YAML file < environment < command line.

A component describes its settings as a dataclass; each field has a default and a
docstring-like `help` in its metadata, and optionally the environment variable that
sets it (`env=`, default `PREFIX_FIELDNAME`). `load_settings` merges the layers and
converts types, reporting every bad value at once.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar, get_type_hints

import yaml

T = TypeVar("T")


class SettingsError(ValueError):
    """One or more settings are invalid; the message lists every problem."""


def setting(default: Any, help: str, *, env: str | None = None) -> Any:
    """Declares a settings field with its help text and optional environment variable name."""
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata={"help": help, "env": env})
    return dataclasses.field(default=default, metadata={"help": help, "env": env})


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
        if raw is None and typ != str:
            return None
        if isinstance(raw, (dict, list)):
            raise SettingsError(f"{where}: expected a string, got {raw!r}")
        return str(raw)
    raise SettingsError(f"{where}: unsupported setting type {typ!r}")


def env_name(prefix: str, field: dataclasses.Field) -> str:
    return field.metadata.get("env") or f"{prefix}{field.name.upper()}"


def load_settings(
    cls: type[T],
    *,
    prefix: str,
    yaml_path: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> T:
    """Builds `cls` from its defaults, the YAML file, the environment and `overrides` (CLI)."""
    env = os.environ if env is None else env
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    raw: dict[str, tuple[Any, str]] = {}
    errors: list[str] = []
    if yaml_path:
        try:
            with open(yaml_path, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise SettingsError(f"{yaml_path}: cannot read: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise SettingsError(f"{yaml_path}: not valid YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise SettingsError(f"{yaml_path}: expected a mapping of settings")
        for key, value in doc.items():
            if key not in fields:
                errors.append(f"{yaml_path}: unknown setting {key!r}")
            else:
                raw[key] = (value, f"{yaml_path}: {key}")
    for name, field in fields.items():
        var = env_name(prefix, field)
        if env.get(var, "") != "":
            raw[name] = (env[var], var)
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = (value, f"--{name.replace('_', '-')}")
    values: dict[str, Any] = {}
    for name, (value, where) in raw.items():
        try:
            values[name] = _convert(value, hints[name], where)
        except SettingsError as exc:
            errors.append(str(exc))
    if errors:
        raise SettingsError("; ".join(errors))
    return cls(**values)


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, prefix: str) -> None:
    """Adds one `--field-name` option per settings field, defaulting to None (= not given)."""
    hints = get_type_hints(cls)
    for field in dataclasses.fields(cls):
        typ = hints[field.name]
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
        text = f"{field.metadata.get('help', '')} (env {env_name(prefix, field)}; default {default!r})"
        flag = f"--{field.name.replace('_', '-')}"
        if typ is bool:
            parser.add_argument(flag, dest=field.name, default=None, action=argparse.BooleanOptionalAction, help=text)
        else:
            parser.add_argument(flag, dest=field.name, default=None, help=text)


def cli_overrides(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    return {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}


def describe(settings: Any) -> Sequence[tuple[str, Any]]:
    """The settings as (name, value) pairs, for logging at start-up (no secrets in settings)."""
    return [(f.name, getattr(settings, f.name)) for f in dataclasses.fields(settings)]
