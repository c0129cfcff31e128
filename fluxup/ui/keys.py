"""Typed ``AppKey``s: what :func:`fluxup.ui.app.build_app` puts into the aiohttp app.

One module so the routes and middlewares share the keys without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Final

import jinja2
from aiohttp import web

from fluxup.adapters.events import EventRecorder
from fluxup.adapters.impersonation import Impersonator
from fluxup.adapters.kube import Kube
from fluxup.logic.inbox import Inbox
from fluxup.ui.listcache import ListCache
from fluxup.ui.oidc import OIDCClient
from fluxup.ui.session import SessionCodec
from fluxup.ui.settings import UiSettings

__all__ = ["AUDIT", "CLOCK", "CODEC", "IMPERSONATOR", "INBOX_CACHE", "OIDC", "OPERATOR_KUBE",
           "OPERATOR_SETTINGS", "SETTINGS", "STREAM_INTERVAL", "TEMPLATES"]

SETTINGS: Final = web.AppKey("settings", UiSettings)
CODEC: Final = web.AppKey("codec", SessionCodec)
OIDC: Final = web.AppKey("oidc", OIDCClient)
IMPERSONATOR: Final = web.AppKey("impersonator", Impersonator)
AUDIT: Final = web.AppKey("audit", EventRecorder)
TEMPLATES: Final = web.AppKey("templates", jinja2.Environment)
CLOCK: Final = web.AppKey[Callable[[], datetime]]("clock")
STREAM_INTERVAL: Final = web.AppKey("stream_interval", float)
#: The operator's own client: only to learn which namespaces hold ManagedApps (names,
#: never contents) when a person may not list them cluster-wide.
OPERATOR_KUBE: Final = web.AppKey("operator_kube", Kube)
#: The operator's effective settings, shown read-only on the settings page.
OPERATOR_SETTINGS: Final = web.AppKey("operator_settings", dict)
#: Each identity's inbox lists for a few seconds (see :mod:`fluxup.ui.listcache`).
INBOX_CACHE: Final = web.AppKey[ListCache[Inbox]]("inbox_cache")
