"""Config sections read strictly: a mapping becomes a dataclass, and an unknown key is an error.

A misspelt key read leniently is silently a default (a typo in a loss weight trains with weight 0), so
every section of a training config, and the network's own settings stored in a checkpoint, are read
through `from_mapping`: an unknown key, a value of the wrong kind or a missing required key is one
clear error naming the section, the key and the keys it knows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import SpeechInpaintError

T = TypeVar("T")


def _kind_of(value: Any) -> str | None:
    """The kind of value a default stands for, or None when any value is allowed (a None default)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (tuple, list)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return None


def _matches(value: Any, kind: str | None) -> bool:
    if kind is None:
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "list":
        return isinstance(value, (list, tuple))
    return isinstance(value, Mapping)


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def from_mapping(cls: type[T], data: Any, section: str, source: str = "") -> T:
    """An instance of the dataclass `cls` from a mapping of its fields (lists become tuples where the
    default is a tuple). `section` and `source` (the file) name the place in the error."""
    try:
        return _build(cls, data)
    except SpeechInpaintError as exc:
        where = f"{source}: " if source else ""
        raise SpeechInpaintError(f"{where}the {section} section is not understood ({exc})") from None


def _build(cls: type[T], data: Any) -> T:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise SpeechInpaintError(f"expected a mapping of settings, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpeechInpaintError(f"unknown key {unknown[0]!r}; known keys: {', '.join(sorted(fields))}")
    values = {}
    for name, value in data.items():
        default = _default(fields[name])
        kind = _kind_of(default) if default is not dataclasses.MISSING else None
        if not _matches(value, kind):
            raise SpeechInpaintError(f"{name} must be a {kind}, got {value!r}")
        values[name] = tuple(value) if isinstance(default, tuple) else value
    missing = [n for n, f in fields.items() if n not in values and _default(f) is dataclasses.MISSING]
    if missing:
        raise SpeechInpaintError(f"missing key {missing[0]!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise SpeechInpaintError(str(exc)) from None


def to_mapping(instance: Any) -> dict:
    """The plain dict of a dataclass (tuples as lists), as YAML and checkpoints hold it."""
    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(instance).items()}
