"""One typed decoder for hubd's frozen records: JSON/TOML values and environment text into
the types the dataclasses declare.

It dispatches on the real types (`typing.get_type_hints`), not on how an annotation is
spelled, so a new field of any handled type (bool, int, float, str, None, unions of them,
tuple[X, ...], nested records) needs no change here. `hubd.config` (strict: a wrong value is
an error naming the key) and `hubd.status` (lenient: a wrong value falls back to the field's
default, an odd list item is dropped) both use it, as does `hubd.timing` for `HUBD_TIMING`.

Part of the shared kernel: imports nothing of hubd.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

_FIELD_TYPES: dict[type, dict[str, Any]] = {}

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}


def field_types(cls: type) -> dict[str, Any]:
    """A dataclass' fields and their real types, in order (cached)."""
    if cls not in _FIELD_TYPES:
        hints = typing.get_type_hints(cls)
        _FIELD_TYPES[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _FIELD_TYPES[cls]


def _options(kind: Any) -> tuple[Any, ...] | None:
    """A union's members, or None for a type that is not a union."""
    origin = typing.get_origin(kind)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(kind)
    return None


def decode(kind: Any, value: object, strict: bool = False) -> tuple[bool, Any]:
    """(True, `value` as `kind`) or (False, None) when it does not fit.

    A list becomes a tuple; lenient (the default) drops the items that do not fit, `strict`
    refuses the whole list. A nested dataclass is read with its own `from_json`.
    """
    options = _options(kind)
    if options is not None:
        for option in options:
            ok, decoded = decode(option, value, strict)
            if ok:
                return True, decoded
        return False, None
    if typing.get_origin(kind) is tuple:
        item_kind = typing.get_args(kind)[0]
        if not isinstance(value, (list, tuple)):
            return False, None
        items = [decode(item_kind, item, strict) for item in value]
        if strict and not all(ok for ok, _ in items):
            return False, None
        return True, tuple(item for ok, item in items if ok)
    if kind is type(None):
        return value is None, None
    if dataclasses.is_dataclass(kind) and hasattr(kind, "from_json"):
        return isinstance(value, Mapping), kind.from_json(value)
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else None  # type: ignore[arg-type]
    if kind is str:
        return isinstance(value, str), value
    raise TypeError(f"the codec does not handle {kind!r}")


def from_text(kind: Any, text: str) -> Any:
    """An environment variable's text as `kind` (a list: comma-separated). Raises ValueError."""
    text = text.strip()
    options = _options(kind)
    if options is not None:
        kind = next(option for option in options if option is not type(None))
    if typing.get_origin(kind) is tuple:
        item_kind = typing.get_args(kind)[0]
        return tuple(from_text(item_kind, part) for part in text.split(",") if part.strip())
    if kind is bool:
        lowered = text.lower()
        if lowered in _TRUE_WORDS:
            return True
        if lowered in _FALSE_WORDS:
            return False
        raise ValueError(text)
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    if kind is str:
        return text
    raise TypeError(f"the codec does not handle {kind!r}")


def describe(kind: Any) -> str:
    """What a value of `kind` is, for error messages ("an integer")."""
    options = _options(kind)
    if options is not None:
        kind = next(option for option in options if option is not type(None))
    if typing.get_origin(kind) is tuple:
        return f"a list of {_plural(typing.get_args(kind)[0])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, str(kind)
    )


def _plural(kind: Any) -> str:
    return {bool: "flags", int: "integers", float: "numbers", str: "strings"}.get(kind, str(kind))
