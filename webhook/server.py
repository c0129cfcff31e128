"""Entry point of the webhook process: serve the app over HTTPS until stopped.

:func:`run` is what ``fluxup webhook`` calls. It blocks, handles SIGINT/SIGTERM with a
graceful shutdown, and reloads the serving certificate when its files change.
:func:`create_app` (the async app factory, from :mod:`webhook.app`) is what tests serve.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from webhook.app import WebhookSettings, create_app
from webhook.tls import ReloadingTLS

__all__ = ["create_app", "run"]

log = logging.getLogger(__name__)


def run(
    host: str,
    port: int,
    cert_file: Path,
    key_file: Path,
    operator_username: str,
    *,
    allow_cross_namespace_refs: bool = False,
    cert_reload_interval: float = 2.0,
    kubeconfig: Path | None = None,
) -> None:
    """Serve ``/mutate``, ``/validate``, ``/healthz``, ``/readyz``, ``/metrics`` on
    ``https://host:port`` until SIGTERM/SIGINT. ``operator_username`` is the user
    (``system:serviceaccount:<ns>:<sa>``) allowed to approve, release and un-suspend.
    """
    tls = ReloadingTLS(Path(cert_file), Path(key_file))
    settings = WebhookSettings(
        operator_username=operator_username,
        allow_cross_namespace_refs=allow_cross_namespace_refs,
        cert_reload_interval=cert_reload_interval,
        kubeconfig=kubeconfig,
    )
    log.info("FluxUp webhook listening on https://%s:%d (operator %s)", host, port,
             operator_username)
    web.run_app(
        create_app(settings, tls),
        host=host,
        port=port,
        ssl_context=tls.server_context,
        shutdown_timeout=10.0,
        access_log=None,
        print=None,
    )
