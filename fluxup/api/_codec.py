"""Decode Kubernetes JSON into FluxUp's frozen dataclasses, and encode them back.

Private to :mod:`fluxup.api`; the kind modules call it from their ``from_dict()`` and
``to_dict()``. The dataclasses are the declaration (field types, defaults, JSON names);
this module walks them, so every kind is parsed by the same rules:

* the JSON name of a field is its camelCase name unless ``metadata={JSON: ...}`` says
  otherwise (``restored_pvcs`` is ``restoredPVCs``);
* a field without a default is required; ``null`` counts as absent;
* ``str``, ``int``, ``bool``, :class:`enum.StrEnum`, :class:`datetime.datetime` (RFC 3339),
  :class:`~fluxup.api.duration.Duration`, ``tuple[X, ...]`` (JSON arrays),
  ``Mapping[str, str]`` and nested dataclasses are understood;
* keys the dataclass does not declare are ignored, as Go's ``encoding/json`` does, so a
  newer CRD does not break an older operator (``tests/api`` keeps models and CRDs equal);
* a dataclass's ``__post_init__`` may raise :class:`~fluxup.errors.InvalidObjectError`
  with a path relative to itself; the path is completed here.

Encoding leaves out ``None``, empty lists, empty maps and objects that encode empty,
unless ``nulls=True`` asks for explicit ``null`` (a JSON merge patch then deletes them).
Pure; no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Hashable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Final, Self, TypeVar

from fluxup.api.constants import API_VERSION
from fluxup.api.duration import Duration
from fluxup.errors import InvalidObjectError

__all__ = [
    "JSON",
    "FieldSpec",
    "JSONModel",
    "Resource",
    "decode",
    "encode",
    "format_time",
    "model_fields",
    "parse_time",
]

#: Key in a dataclass field's ``metadata`` that overrides its JSON name.
JSON: Final = "json"

M = TypeVar("M")


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    """How one dataclass field appears in JSON."""

    attr: str
    json: str
    hint: Any
    required: bool
    default: object  # dataclasses.MISSING when required; default_factory() otherwise


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def model_fields(cls: type[Any]) -> tuple[FieldSpec, ...]:
    """The JSON view of the dataclass ``cls``: one :class:`FieldSpec` per field."""
    return _model_fields(typing.cast(Hashable, cls))  # mypy does not see classes as Hashable


@functools.cache
def _model_fields(key: Hashable) -> tuple[FieldSpec, ...]:
    cls = typing.cast("type[Any]", key)
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            default: object = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        specs.append(
            FieldSpec(
                attr=f.name,
                json=f.metadata.get(JSON, _camel(f.name)),
                hint=hints[f.name],
                required=default is dataclasses.MISSING,
                default=default,
            )
        )
    return tuple(specs)


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 time as Kubernetes writes it (``2024-01-15T14:30:00Z``)."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; write it like 2024-01-15T14:30:00Z")
    return value.astimezone(UTC)


def format_time(value: datetime) -> str:
    """Format ``value`` the way Kubernetes does: UTC, ``Z``, seconds unless finer given."""
    utc = value.astimezone(UTC)
    if utc.microsecond:
        return utc.isoformat().replace("+00:00", "Z")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _optional_inner(hint: Any) -> Any:
    """``X`` for ``X | None``; ``hint`` itself otherwise."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


@functools.cache
def _shape(hint: Any) -> tuple[str, Any]:
    """How values of ``hint`` are decoded: a kind and its argument, worked out once per
    hint (``typing`` introspection is slow, and a fleet's lists repeat it per field)."""
    hint = _optional_inner(hint)
    origin = typing.get_origin(hint)
    if hint is str or hint is bool or hint is int or hint is datetime or hint is Duration:
        return hint.__name__, None
    if isinstance(hint, type) and issubclass(hint, enum.StrEnum):
        return "enum", (hint, {m.value: m for m in hint})
    if origin is tuple:
        (item_hint, _ellipsis) = typing.get_args(hint)
        return "tuple", item_hint
    if origin is Mapping or origin is dict:
        _key_hint, value_hint = typing.get_args(hint)
        return "map", value_hint
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return "dataclass", hint
    raise TypeError(f"fluxup.api cannot decode fields of type {hint!r}")  # a bug, not input


def _decode_value(hint: Any, value: object, path: str) -> object:
    kind, arg = _shape(hint)
    if kind == "str":
        if not isinstance(value, str):
            raise InvalidObjectError(path, f"expected a string, got {_describe(value)}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidObjectError(path, f"expected true or false, got {_describe(value)}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidObjectError(path, f"expected an integer, got {_describe(value)}")
        return value
    if kind == "enum":
        members: dict[str, enum.StrEnum] = arg[1]
        if not isinstance(value, str) or value not in members:
            raise InvalidObjectError(
                path, f"expected one of {', '.join(members)}, got {_describe(value)}"
            )
        return members[value]
    if kind == "datetime":
        if not isinstance(value, str):
            raise InvalidObjectError(path, f"expected an RFC 3339 time, got {_describe(value)}")
        try:
            return parse_time(value)
        except ValueError:
            raise InvalidObjectError(
                path, f"expected an RFC 3339 time like 2024-01-15T14:30:00Z, got {value!r}"
            ) from None
    if kind == "Duration":
        if not isinstance(value, str):
            raise InvalidObjectError(path, f"expected a duration, got {_describe(value)}")
        try:
            return Duration.parse(value)
        except ValueError as exc:
            raise InvalidObjectError(path, str(exc)) from None
    if kind == "tuple":
        if not isinstance(value, list | tuple):
            raise InvalidObjectError(path, f"expected a list, got {_describe(value)}")
        return tuple(_decode_value(arg, item, f"{path}[{i}]") for i, item in enumerate(value))
    if kind == "map":
        if not isinstance(value, Mapping):
            raise InvalidObjectError(path, f"expected a map, got {_describe(value)}")
        return {str(k): _decode_value(arg, v, _join(path, str(k))) for k, v in value.items()}
    return decode(arg, value, path)


def decode(cls: type[M], data: object, path: str = "") -> M:
    """Build the dataclass ``cls`` from the JSON ``data`` found at ``path``.

    Raises :class:`~fluxup.errors.InvalidObjectError` naming the first bad field.
    """
    if not isinstance(data, Mapping):
        raise InvalidObjectError(path, f"expected an object, got {_describe(data)}")
    kwargs: dict[str, Any] = {}
    for spec in model_fields(cls):
        raw = data.get(spec.json)
        if raw is None:
            if spec.required:
                raise InvalidObjectError(_join(path, spec.json), "required field is missing")
            continue
        kwargs[spec.attr] = _decode_value(spec.hint, raw, _join(path, spec.json))
    try:
        return cls(**kwargs)
    except InvalidObjectError as exc:
        raise exc.within(path) from None


def _encode_value(value: object, nulls: bool) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, tuple):
        return [_encode_value(item, nulls) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _encode_value(v, nulls) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return encode(value, nulls=nulls)
    raise TypeError(f"fluxup.api cannot encode {type(value).__name__}")  # a bug, not input


def encode(obj: object, *, nulls: bool = False) -> dict[str, Any]:
    """The JSON form of the dataclass instance ``obj`` (see the module docstring)."""
    out: dict[str, Any] = {}
    for spec in model_fields(type(obj)):
        encoded = _encode_value(getattr(obj, spec.attr), nulls)
        if encoded is None or encoded == [] or encoded == {}:
            if nulls:
                out[spec.json] = None
            continue
        out[spec.json] = encoded
    return out


class JSONModel:
    """Mixin giving a dataclass ``from_dict()`` and ``to_dict()`` through this module.

    ``_path`` is where the class sits in its object (``spec``, ``status``), so errors
    from ``ManagedAppSpec.from_dict(body["spec"])`` name ``spec.<field>``.
    """

    _path: ClassVar[str] = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse ``data``; raise :class:`~fluxup.errors.InvalidObjectError` if it is invalid."""
        return decode(cls, data, cls._path)

    def to_dict(self, *, nulls: bool = False) -> dict[str, Any]:
        """The JSON form; ``nulls=True`` writes ``null`` for unset fields (merge patches)."""
        return encode(self, nulls=nulls)


class Resource(JSONModel):
    """Mixin for a whole FluxUp object: checks ``apiVersion``/``kind`` and names it in errors.

    Subclasses are dataclasses with ``api_version``, ``kind`` and ``metadata`` fields.
    """

    #: The ``kind`` this class models.
    KIND: ClassVar[str]

    def _check_type_meta(self) -> None:
        api_version, kind = getattr(self, "api_version", None), getattr(self, "kind", None)
        if api_version != API_VERSION:
            raise InvalidObjectError("apiVersion", f"expected {API_VERSION}, got {api_version!r}")
        if kind != self.KIND:
            raise InvalidObjectError("kind", f"expected {self.KIND}, got {kind!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse a whole object; errors name it (``ManagedApp demo/podinfo: spec.x: ...``)."""
        try:
            return decode(cls, data)
        except InvalidObjectError as exc:
            raise exc.within(obj=_name_of(cls.KIND, data)) from None


def _name_of(kind: str, data: object) -> str:
    meta = data.get("metadata") if isinstance(data, Mapping) else None
    if not isinstance(meta, Mapping):
        return kind
    name, namespace = meta.get("name"), meta.get("namespace")
    if isinstance(namespace, str) and isinstance(name, str):
        return f"{kind} {namespace}/{name}"
    return f"{kind} {name}" if isinstance(name, str) else kind
