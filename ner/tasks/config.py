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
        values[name] = value
    return cls(**values)
