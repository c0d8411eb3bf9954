"""Frozen dataclasses built from parsed YAML, each value checked against its field's type hint, so that a mistyped
config key is a one-line UserError naming the key, not a traceback deep in a stage."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

from pipeline.errors import UserError


def build(cls: type, raw: Any, where: str, extra: dict[str, Any] | None = None) -> Any:
    """An instance of the dataclass ``cls`` from a parsed YAML mapping: every key known, none missing, each value
    of its field's type (nested dataclasses, unions, literals, tuples, mappings, numbers, strings); anything else is
    a UserError naming the key. ``extra`` fields are passed as they are."""
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in (extra or {})}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (expected one of: {', '.join(fields)})")
    if missing := [name for name in fields if name not in raw]:
        raise UserError(f"{where}: missing key {missing[0]!r}")
    hints = typing.get_type_hints(cls)
    values = {name: _coerce(hints[name], raw[name], f"{where}: {name}") for name in fields}
    return cls(**values, **(extra or {}))


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        errors = []
        for candidate in inner:
            try:
                return _coerce(candidate, value, where)
            except UserError as err:
                errors.append(str(err))
        raise UserError(errors[0])
    if origin is Literal:
        if value not in args:
            raise UserError(f"{where} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where} must be a list, got {value!r}")
        if args and args[-1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise UserError(f"{where} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a mapping, got {value!r}")
        key_type, value_type = args
        return {_coerce(key_type, k, where): _coerce(value_type, v, f"{where}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where} must be a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise UserError(f"{where} must be a string, got {value!r}")
        return value
    if hint is type(None):
        if value is not None:
            raise UserError(f"{where} must be null, got {value!r}")
        return None
    raise TypeError(f"unsupported config type {hint!r} at {where}")
