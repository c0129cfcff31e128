"""The OpenAPI 3.1 document of the JSON API, served at ``/api/openapi.json``.

Pure data built once per call; ``tests/ui/test_app.py`` checks that every API route the
app registers is described here and nothing else, so the document cannot drift.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_OPERATIONS", "build_openapi"]

_NS = {"name": "ns", "in": "path", "required": True, "schema": {"type": "string"}}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_NAMESPACE_QUERY = {"name": "namespace", "in": "query", "required": False,
                    "schema": {"type": "string"}, "description": "only this namespace"}
_PAGE_QUERY = [
    _NAMESPACE_QUERY,
    {"name": "state", "in": "query", "required": False,
     "schema": {"enum": ["Upgrading", "RollingBack", "Held", "Failed", "UpdateAvailable",
                         "UpToDate", "Suspended", "Unknown"]},
     "description": "only apps in this state"},
    {"name": "page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "default": 1},
     "description": "page from 1; past the last page the items are empty (400 if no number)"},
    {"name": "per_page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
]
_CSRF = {"name": "X-CSRF-Token", "in": "header", "required": False,
         "schema": {"type": "string"},
         "description": "required with a session cookie (from GET /api/me); not with Bearer"}

_ERR = {"description": "error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}
_OBJ = {"application/json": {"schema": {"type": "object"}}}

#: (method, path, summary, parameters, request body schema or None, success status)
API_OPERATIONS: tuple[tuple[str, str, str, list[dict[str, Any]], dict[str, Any] | None, int],
                      ...] = (
    ("get", "/api/me", "The caller: Kubernetes user, groups and CSRF token", [], None, 200),
    ("get", "/api/apps", "One page of ManagedApps with their state (page, perPage, total, "
     "pages, counts)", _PAGE_QUERY, None, 200),
    ("get", "/api/inbox", "One page of available updates; every hold; recent activity",
     _PAGE_QUERY, None, 200),
    ("get", "/api/apps/{ns}/{name}", "One app: object, history, snapshot sets, values",
     [_NS, _NAME], None, 200),
    ("get", "/api/apps/{ns}/{name}/updates", "Current version and every update candidate",
     [_NS, _NAME], None, 200),
    ("post", "/api/apps/{ns}/{name}/upgrade", "Create an UpgradeRequest as the caller",
     [_NS, _NAME, _CSRF], {"$ref": "#/components/schemas/UpgradeInput"}, 201),
    ("post", "/api/apps/{ns}/{name}/rollback", "Create a RollbackRequest as the caller",
     [_NS, _NAME, _CSRF], {"$ref": "#/components/schemas/RollbackInput"}, 201),
    ("get", "/api/upgrades", "UpgradeRequests", [_NAMESPACE_QUERY], None, 200),
    ("get", "/api/upgrades/{ns}/{name}", "One UpgradeRequest", [_NS, _NAME], None, 200),
    ("get", "/api/rollbacks", "RollbackRequests", [_NAMESPACE_QUERY], None, 200),
    ("get", "/api/rollbacks/{ns}/{name}", "One RollbackRequest", [_NS, _NAME], None, 200),
    ("get", "/api/snapshots/{ns}", "FluxUp's VolumeSnapshots in a namespace", [_NS], None, 200),
    ("delete", "/api/snapshots/{ns}/{name}", "Delete one of FluxUp's VolumeSnapshots",
     [_NS, _NAME, _CSRF], None, 204),
    ("get", "/api/stream/{kind}/{ns}/{name}",
     "Server-Sent Events: `progress` (status JSON) on every change, `done` at the end",
     [{"name": "kind", "in": "path", "required": True,
       "schema": {"enum": ["upgrades", "rollbacks"]}}, _NS, _NAME], None, 200),
    ("get", "/api/openapi.json", "This document", [], None, 200),
)

_SCHEMAS = {
    "Error": {"type": "object", "required": ["error", "message"], "properties": {
        "error": {"type": "string"}, "message": {"type": "string"}}},
    "UpgradeInput": {"type": "object", "additionalProperties": False, "properties": {
        "version": {"type": "string", "description": "chart version; default: available"},
        "images": {"type": "object", "additionalProperties": {"type": "string"},
                   "description": "value path (image.tag) to tag"},
        "dryRun": {"type": "boolean", "description": "preflight and Git diff only"}}},
    "RollbackInput": {"type": "object", "additionalProperties": False, "properties": {
        "upgradeRequest": {"type": "string"}, "snapshot": {"type": "string"}},
        "description": "exactly one of upgradeRequest or snapshot"},
}


def build_openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, summary, params, body, ok in API_OPERATIONS:
        op: dict[str, Any] = {
            "summary": summary, "parameters": params,
            "responses": {str(ok): ({"description": "ok", "content": _OBJ} if ok != 204
                                    else {"description": "deleted"}),
                          "400": _ERR, "401": _ERR, "403": _ERR, "404": _ERR},
        }
        if body is not None:
            op["requestBody"] = {"required": False,
                                 "content": {"application/json": {"schema": body}}}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "FluxUp API", "version": "v1alpha1",
                 "description": "Every call is authorized by Kubernetes RBAC as the caller "
                                "(impersonation)."},
        "paths": paths,
        "components": {"schemas": _SCHEMAS, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "fluxup_session"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "OIDC ID token"}}},
        "security": [{"session": []}, {"bearer": []}],
    }
