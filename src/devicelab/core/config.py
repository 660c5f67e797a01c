"""Typed experiment configs: dataclasses with smoke / quick / full profiles and ``key=value`` overrides.

A config class is a dataclass whose defaults are the ``quick`` profile; the class attribute ``PROFILES`` maps
each profile name to the fields it changes. Overrides address nested dataclass fields with dots
(``model.tau=1.5``) and are parsed with YAML, so ``epochs=3``, ``lr=0.1``, ``norms=[ssn,bn]`` all work.

A numeric field declares its allowed range beside it, ``epochs: int = ranged(8, low=1)`` (or
``field(default=8, metadata={"range": (1, None)})``); :func:`from_dict` checks it, for list items too, so
``epochs=0`` is a one-line error naming the key and the range.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

PROFILE_NAMES = ("smoke", "quick", "full")


class ConfigError(ValueError):
    """A bad profile, key or value; the message names the offender and the valid choices."""


def ranged(default: Any = dataclasses.MISSING, low: float | None = None, high: float | None = None, **kwargs):
    """A dataclass field whose value (or each item of a list value) must lie in ``[low, high]``.

    ``None`` leaves that side open: ``epochs: int = ranged(8, low=1)``, ``lr: float = ranged(0.1, low=0)``.
    Other keyword arguments (``default_factory``) go to :func:`dataclasses.field`.
    """
    return dataclasses.field(default=default, metadata={"range": (low, high)}, **kwargs)


def describe_range(low: float | None, high: float | None) -> str:
    """``(1, None)`` -> ``">= 1"``; ``(0, 1)`` -> ``"0 .. 1"``."""
    if low is not None and high is not None:
        return f"{low} .. {high}"
    return f">= {low}" if low is not None else f"<= {high}"


def _check_range(key: str, value: Any, bounds: tuple[float | None, float | None]) -> None:
    low, high = bounds
    items = value if isinstance(value, list | tuple) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | float):
            continue
        if (low is not None and item < low) or (high is not None and item > high):
            raise ConfigError(f"{key}={value!r}: out of range; allowed: {describe_range(low, high)}")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against ``annotation`` (the common cases), converting int -> float where wanted."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}={value!r}: expected one of {', '.join(map(repr, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}={value!r}: bad value")
    if origin in (list, tuple):
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ConfigError(f"{key}={value!r}: expected a list")
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict or annotation is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}={value!r}: expected a mapping")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}={value!r}: expected a mapping for {annotation.__name__}")
        return from_dict(annotation, value, prefix=f"{key}.")
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}={value!r}: expected a number")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}={value!r}: expected an integer")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected true or false")
        return value
    if annotation is str:
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{key}={value!r}: expected a string")
        return str(value)
    return value


def from_dict(cls: type, values: Mapping[str, Any], prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a (possibly nested) mapping, checking keys and types."""
    types_ = _field_types(cls)
    unknown = set(values) - set(types_)
    if unknown:
        raise ConfigError(
            f"unknown key {prefix}{sorted(unknown)[0]!s} for {cls.__name__}; "
            f"valid keys: {', '.join(prefix + k for k in types_)}"
        )
    kwargs = {k: _coerce(v, types_[k], prefix + k) for k, v in values.items()}
    for f in dataclasses.fields(cls):
        if f.name in kwargs and "range" in f.metadata:
            _check_range(prefix + f.name, kwargs[f.name], f.metadata["range"])
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(config)


def config_hash(*parts: Any) -> str:
    """A short, stable hash of configs (dataclasses, dicts, lists, scalars): 16 hex digits of the SHA-256 of
    their canonical JSON. Cached artefacts store it, so one built with another config is never reused."""
    text = json.dumps([to_dict(p) for p in parts], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for p in parts[:-1]:
        if not isinstance(node.get(p), dict):
            raise ConfigError(f"{dotted}: {p} is not a nested config")
        node = node[p]
    if parts[-1] not in node:
        raise ConfigError(f"unknown key {dotted}; valid keys: {', '.join(_all_keys(tree))}")
    node[parts[-1]] = value


def _all_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            keys.extend(_all_keys(v, prefix + k + "."))
        else:
            keys.append(prefix + k)
    return keys


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["a=1", "b.c=[x, y]"]`` -> ``{"a": 1, "b.c": ["x", "y"]}`` (values parsed as YAML)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"bad override {item!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"bad override {item!r}: {e}") from None
    return out


def resolve_config(cls: type, profile: str = "quick", overrides: Mapping[str, Any] | None = None) -> Any:
    """The config of ``cls`` for ``profile`` with dotted ``overrides`` applied, every value type-checked."""
    profiles: Mapping[str, Mapping[str, Any]] = getattr(cls, "PROFILES", {})
    if profile not in PROFILE_NAMES:
        raise ConfigError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILE_NAMES)}")
    tree = to_dict(cls())
    for key, value in profiles.get(profile, {}).items():
        _set_path(tree, key, value)
    for key, value in (overrides or {}).items():
        _set_path(tree, key, value)
    return from_dict(cls, tree)


def load_config_yaml(cls: type, path) -> Any:
    """Read a ``config.yaml`` written by a run back into ``cls``."""
    try:
        with open(path) as f:
            values = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys")
    return from_dict(cls, values)
