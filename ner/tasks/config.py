"""Nested frozen dataclass configs from plain dicts (bundle JSON, checkpoints)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build the dataclass ``cls`` from ``data``; nested dataclass fields from nested dicts.

    Raises:
        ValueError: a key that is not a field of ``cls`` (or of a nested config).
        TypeError: a value that is not a dict where a nested config is expected.
    """
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        kind = hints.get(name)
        if dataclasses.is_dataclass(kind) and isinstance(kind, type):
            value = from_dict(kind, value)
        else:
            _check_value(cls.__name__, name, kind, value)
        values[name] = value
    return cls(**values)


def _check_value(owner: str, name: str, kind: Any, value: Any) -> None:
    """Literal fields hold one of their values, numbers have the declared type, dropouts lie in
    [0, 1) and sizes are not negative (a config read from a file is checked like user input)."""
    where = f"{owner}.{name}"
    if typing.get_origin(kind) is typing.Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            raise ValueError(f"{where} must be one of {list(allowed)}, got {value!r}")
    elif kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ValueError(f"{where} must be a number, got {value!r}")
        if "dropout" in name and not 0.0 <= value < 1.0:
            raise ValueError(f"{where} must lie in [0, 1), got {value!r}")
