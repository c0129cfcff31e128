"""The mutating webhook's JSON Patch: the gate's edits addressed on the raw incoming object.

The rules (:mod:`fluxup.logic.gate`) decide from parsed views *what* to change — which
annotations to remove or set, the bypass binding to carry, whether to suspend — as
:class:`Edits`. A JSON Patch must address what the request actually sent (an
``annotations`` map that exists or not, a ``metadata`` or ``spec`` that is missing or not
an object), so this is the one place after parsing that reads the raw object again.
Called by :func:`fluxup.logic.gate.build_mutation`. Pure; never raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fluxup.api import annotations as ann
from fluxup.api.admission import PatchOperation
from fluxup.logic.gate_values import get, get_mapping

__all__ = ["Edits", "build_patch"]


@dataclass(frozen=True)
class Edits:
    """What the gate changes, applied in this order: remove the annotations ``remove``
    (those present), carry the bypass binding ``bypassed`` (``None``: remove it), add
    ``spec.suspend: true`` when ``suspend``, and set the annotations ``annotate``."""

    bypassed: str | None
    remove: tuple[str, ...] = ()
    suspend: bool = False
    annotate: tuple[tuple[str, str], ...] = ()


def _pointer(*parts: str) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _set_annotations(incoming: object, values: Mapping[str, str]) -> list[PatchOperation]:
    current = get(incoming, "metadata", "annotations")
    if isinstance(current, Mapping):
        return [
            {"op": "add", "path": _pointer("metadata", "annotations", k), "value": v}
            for k, v in values.items()
            if current.get(k) != v
        ]
    if get_mapping(incoming, "metadata") is not None:
        return [{"op": "add", "path": "/metadata/annotations", "value": dict(values)}]
    return [{"op": "add", "path": "/metadata", "value": {"annotations": dict(values)}}]


def _remove_annotations(incoming: object, names: tuple[str, ...]) -> list[PatchOperation]:
    current = get_mapping(incoming, "metadata", "annotations") or {}
    return [
        {"op": "remove", "path": _pointer("metadata", "annotations", k)}
        for k in names
        if k in current
    ]


def build_patch(incoming: object, edits: Edits) -> tuple[PatchOperation, ...]:
    """The JSON Patch that makes ``edits`` on ``incoming`` (the object as sent)."""
    patch = _remove_annotations(incoming, edits.remove)
    if edits.bypassed is None:
        patch += _remove_annotations(incoming, (ann.BYPASSED,))
    else:
        patch += _set_annotations(incoming, {ann.BYPASSED: edits.bypassed})
    if edits.suspend:
        if get_mapping(incoming, "spec") is not None:
            patch.append({"op": "add", "path": "/spec/suspend", "value": True})
        else:
            patch.append({"op": "add", "path": "/spec", "value": {"suspend": True}})
    if edits.annotate:
        patch += _set_annotations(incoming, dict(edits.annotate))
    return tuple(patch)
