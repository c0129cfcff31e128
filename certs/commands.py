"""What the ``fluxup certs`` subcommands call (the CLI only parses arguments).

* :func:`certs_ensure` — ``fluxup certs ensure --namespace N --service S --secret NAME
  --webhook-config NAME...``: converge the Secret and the configurations' caBundle
  (in-cluster credentials, or a kubeconfig). Run by the install Job and the renewal
  CronJob of ``manifests/webhook``.
* :func:`certs_write` — ``fluxup certs write --dir DIR --hosts H...``: files for a
  local webhook.

Both return a one-line summary for the CLI to print; neither prints key material.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from kubernetes_asyncio import client, config

from certs.bundle import service_hosts
from certs.ensure import EnsureOutcome, ensure_certificates
from certs.files import ensure_cert_files
from certs.kube import KubeSecretStore, KubeWebhookConfigurations
from fluxup.errors import ConfigError

__all__ = ["certs_ensure", "certs_write", "ensure_certs"]


async def _api_client(kubeconfig: Path | None) -> client.ApiClient:
    if kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return client.ApiClient(configuration=configuration)
    path = str(kubeconfig) if kubeconfig else None
    return await config.new_client_from_config(config_file=path)


async def ensure_certs(
    namespace: str,
    service: str,
    secret: str,
    webhook_configs: Sequence[str],
    *,
    kubeconfig: Path | None = None,
    extra_hosts: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> EnsureOutcome:
    """Async form of :func:`certs_ensure`."""
    if not namespace or not service or not secret:
        raise ConfigError("certs ensure needs --namespace, --service and --secret")
    hosts = [*service_hosts(service, namespace), *extra_hosts]
    async with await _api_client(kubeconfig) as api:
        return await ensure_certificates(
            KubeSecretStore(api, namespace, secret),
            KubeWebhookConfigurations(api),
            list(webhook_configs),
            hosts,
            now or dt.datetime.now(dt.UTC),
        )


def certs_ensure(
    namespace: str,
    service: str,
    secret: str,
    webhook_configs: Sequence[str],
    *,
    kubeconfig: Path | None = None,
    extra_hosts: Sequence[str] = (),
) -> str:
    """Converge the webhook certificates in the cluster; returns a summary line."""
    outcome = asyncio.run(
        ensure_certs(namespace, service, secret, webhook_configs,
                     kubeconfig=kubeconfig, extra_hosts=extra_hosts)
    )
    return outcome.summary()


def certs_write(directory: Path, hosts: Sequence[str], *, renew: bool = False) -> str:
    """Write (or keep) certificate files for ``hosts`` in ``directory``; summary line."""
    if not hosts:
        raise ConfigError("certs write needs at least one --hosts name or IP address")
    files, plan = ensure_cert_files(Path(directory), list(hosts), renew=renew)
    state = "wrote new" if plan.needed else "kept current"
    return (
        f"{state} certificates in {files.directory} (serve with --cert-file {files.cert} "
        f"--key-file {files.key}; trust {files.ca_bundle})"
    )
