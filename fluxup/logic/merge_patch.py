"""JSON Merge Patch (RFC 7386) as pure functions, to know before a write whether it
changes anything: the operator skips status writes that would leave an object as it is,
so a fleet at rest costs the API server reads, not PATCH requests, on every resync."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["apply_merge_patch", "changes"]


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """``target`` after ``patch``: ``null`` deletes a key, objects merge key by key,
    anything else (lists included) replaces. Neither argument is modified."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


def changes(target: Any, patch: Any) -> bool:
    """Applying ``patch`` to ``target`` would change it."""
    return bool(apply_merge_patch(target, patch) != target)
