"""Turning view models into HTML and JSON: the jinja2 environment and JSON encoding.

Used by the page and API routes. Templates live in ``fluxup/ui/templates`` (packaged
with FluxUp, autoescaped); JSON encoding turns FluxUp's frozen dataclasses, enums and
datetimes into plain JSON. No I/O beyond loading templates from the package.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping
from typing import Any

import jinja2
from aiohttp import web
from ruamel.yaml import YAML

from fluxup.logic.inbox import describe_age
from fluxup.ui.auth import user_of
from fluxup.ui.keys import CLOCK, TEMPLATES

__all__ = ["build_templates", "page", "plain", "to_json", "to_yaml"]


def plain(value: Any) -> Any:
    """Dataclasses, enums, datetimes and tuples as JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Mapping):
        return {str(plain(k)): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def to_json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(plain(value), status=status,
                             dumps=lambda v: json.dumps(v, separators=(",", ":")))


def to_yaml(value: Any) -> str:
    import io

    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(value, out)
    return out.getvalue()


def build_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fluxup.ui", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["yaml"] = to_yaml
    env.filters["when"] = lambda d: d.strftime("%Y-%m-%d %H:%M:%S UTC") if d else "—"
    return env


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    env = request.app[TEMPLATES]
    now = request.app[CLOCK]()
    user = user_of(request)
    html = env.get_template(template).render(
        user=user, csrf=user.csrf, now=now, age=lambda d: describe_age(d, now),
        path=request.path, **context)
    return web.Response(text=html, content_type="text/html", status=status)
