"""Defensive navigation of decoded JSON objects and value paths into ``spec.values``.

The gate reads objects straight off the wire (AdmissionReview ``object``/``oldObject``),
so every accessor here tolerates any shape and never raises on malformed input. Value
paths name image tags inside a HelmRelease's ``spec.values``: dotted keys with optional
list indices, e.g. ``image.tag`` or ``sidecars[0].image.tag``; a backslash escapes a
literal dot (``podAnnotations.example\\.com/tag``). Used by :mod:`fluxup.logic.identity`
and :mod:`fluxup.logic.gate`; pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "ValuePath",
    "ValuePathError",
    "annotations_of",
    "get",
    "get_mapping",
    "get_str",
    "labels_of",
    "parse_value_path",
    "scalar_text",
]

_VALUES_PREFIX = ("spec", "values")


class ValuePathError(ValueError):
    """A value path cannot be parsed; the message says which and why."""


@dataclass(frozen=True)
class ValuePath:
    """A parsed path into ``spec.values``: string keys and integer list indices."""

    segments: tuple[str | int, ...]

    def __str__(self) -> str:
        out = ""
        for seg in self.segments:
            if isinstance(seg, int):
                out += f"[{seg}]"
            else:
                escaped = seg.replace("\\", "\\\\").replace(".", "\\.").replace("[", "\\[")
                out += escaped if not out else f".{escaped}"
        return out

    def lookup(self, values: object) -> object:
        """The value at this path in ``values``, or ``None`` when any step is missing."""
        node = values
        for seg in self.segments:
            if isinstance(seg, int):
                if not isinstance(node, list) or seg >= len(node):
                    return None
                node = node[seg]
            else:
                if not isinstance(node, Mapping):
                    return None
                node = node.get(seg)
        return node


def _tokenize(text: str) -> list[str | int]:
    """Split a path into keys and indices; raises ``ValueError`` saying what is wrong."""
    segments: list[str | int] = []
    key: str | None = None  # None: no key started since the last separator
    i = 0
    after_index = False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 == len(text):
                raise ValueError("ends with a lone backslash")
            key = (key or "") + text[i + 1]
            i += 2
            continue
        if ch == ".":
            if key is None and not after_index:
                raise ValueError("has an empty key")
            if key is not None:
                segments.append(key)
            key, after_index = None, False
        elif ch == "[":
            if key is not None:
                segments.append(key)
            elif not after_index:
                raise ValueError("has an index without a key before it")
            close = text.find("]", i)
            digits = text[i + 1 : close] if close > 0 else ""
            if not digits.isdigit() or not digits.isascii():
                raise ValueError("has a malformed index (write e.g. 'containers[0].tag')")
            segments.append(int(digits))
            key, after_index = None, True
            i = close
        elif after_index:
            raise ValueError("needs a '.' after an index")
        else:
            key = (key or "") + ch
        i += 1
    if key is None and not after_index:
        raise ValueError("ends with an empty key")
    if key is not None:
        segments.append(key)
    return segments


def parse_value_path(text: str) -> ValuePath:
    """Parse ``image.tag``-style paths; a leading ``spec.values.`` is accepted and dropped."""
    if not isinstance(text, str) or not text.strip():
        raise ValuePathError(f"value path {text!r} is empty; write e.g. 'image.tag'")
    try:
        segments = _tokenize(text.strip())
    except ValueError as exc:
        raise ValuePathError(f"value path {text!r} {exc}") from None
    if tuple(segments[:2]) == _VALUES_PREFIX and len(segments) > 2:
        segments = segments[2:]
    return ValuePath(tuple(segments))


def get(obj: object, *keys: str) -> object:
    """``obj[k1][k2]...`` through mappings only; ``None`` when any step is missing."""
    node = obj
    for key in keys:
        # decoded JSON objects are dicts: test for that first, the Mapping ABC check is slow
        if not isinstance(node, (dict, Mapping)):
            return None
        node = node.get(key)
    return node


def get_mapping(obj: object, *keys: str) -> Mapping[str, object] | None:
    node = get(obj, *keys)
    return node if isinstance(node, (dict, Mapping)) else None


def get_str(obj: object, *keys: str) -> str | None:
    node = get(obj, *keys)
    return node if isinstance(node, str) else None


def _string_map(obj: object, field: str) -> dict[str, str]:
    node = get(obj, "metadata", field)
    if not isinstance(node, (dict, Mapping)):
        return {}
    return {k: v for k, v in node.items() if isinstance(k, str) and isinstance(v, str)}


def annotations_of(obj: object) -> dict[str, str]:
    """String annotations of an object (anything malformed is skipped)."""
    return _string_map(obj, "annotations")


def labels_of(obj: object) -> dict[str, str]:
    """String labels of an object (anything malformed is skipped)."""
    return _string_map(obj, "labels")


def scalar_text(value: object) -> str | None:
    """A stable text form of a values entry: strings as-is, other JSON canonically."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, Mapping | Sequence):
        try:
            return json.dumps(value, sort_keys=True, separators=(",", ":"))
        except (TypeError, ValueError, RecursionError):
            return repr(value)
    return repr(value)
