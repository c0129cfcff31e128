"""Converge the webhook's certificates: stored Secret and injected CA bundle.

:func:`ensure_certificates` reads the Secret, decides with :mod:`certs.renewal`, issues
what is due, injects the CA bundle into the webhook configurations *before* storing a
serving certificate from a new CA (so the API server trusts it first), and stores the
bundle with optimistic concurrency: when another replica or job wrote first (a 409), it
re-reads and converges on the winner instead of overwriting or ignoring it. I/O goes
through the small :class:`SecretStore`/:class:`CABundleTargets` protocols
(:mod:`certs.kube` implements them with kubernetes_asyncio; tests use in-memory ones).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from certs.bundle import CertBundle, build_secret_data, parse_secret_data
from certs.renewal import RenewalPlan, build_renewed_bundle, determine_renewal
from fluxup.errors import CertificateError

__all__ = [
    "CABundleTargets",
    "EnsureOutcome",
    "SecretStore",
    "StoreConflict",
    "StoredSecret",
    "ensure_certificates",
]

log = logging.getLogger(__name__)


class StoreConflict(CertificateError):
    """The Secret was created or changed by someone else since it was read."""


@dataclass(frozen=True)
class StoredSecret:
    data: Mapping[str, str]
    resource_version: str

    def __repr__(self) -> str:
        return f"StoredSecret(keys={sorted(self.data)}, resource_version={self.resource_version})"


class SecretStore(Protocol):
    """Where the bundle lives (one Secret)."""

    description: str

    async def read(self) -> StoredSecret | None: ...

    async def create(self, data: Mapping[str, str]) -> None:
        """Create the Secret; :class:`StoreConflict` if it exists."""

    async def replace(self, data: Mapping[str, str], resource_version: str) -> None:
        """Replace it if unchanged since ``resource_version``; :class:`StoreConflict` if not."""


class CABundleTargets(Protocol):
    """Webhook configurations whose ``clientConfig.caBundle`` must trust the CA."""

    async def inject(self, name: str, ca_bundle: bytes) -> bool:
        """Set every webhook's caBundle in configuration(s) ``name``; True if changed."""


@dataclass(frozen=True)
class EnsureOutcome:
    bundle: CertBundle
    plan: RenewalPlan
    stored: bool
    injected: tuple[str, ...]

    def summary(self) -> str:
        what = "issued and stored new certificates" if self.stored else "certificates are current"
        why = f" ({'; '.join(self.plan.reasons)})" if self.stored and self.plan.reasons else ""
        injected = ", ".join(self.injected) or "none changed"
        return f"{what}{why}; caBundle injected into: {injected}"


async def _inject_all(
    targets: CABundleTargets, names: Sequence[str], ca_bundle: bytes
) -> tuple[str, ...]:
    return tuple([name for name in names if await targets.inject(name, ca_bundle)])


async def ensure_certificates(
    store: SecretStore,
    targets: CABundleTargets,
    webhook_configs: Sequence[str],
    hosts: Sequence[str],
    now: dt.datetime,
    *,
    attempts: int = 5,
) -> EnsureOutcome:
    """Make the Secret hold valid certificates for ``hosts`` and the configurations trust them."""
    for _ in range(attempts):
        current = await store.read()
        bundle = parse_secret_data(current.data) if current else None
        plan = determine_renewal(bundle, hosts, now)
        if bundle is not None and not plan.needed:
            injected = await _inject_all(targets, webhook_configs, bundle.trusted_cas)
            return EnsureOutcome(bundle, plan, stored=False, injected=injected)
        renewed = build_renewed_bundle(bundle, plan, hosts, now)
        injected = await _inject_all(targets, webhook_configs, renewed.trusted_cas)
        data = build_secret_data(renewed)
        try:
            if current is None:
                await store.create(data)
            else:
                await store.replace(data, current.resource_version)
        except StoreConflict:
            log.info("%s changed concurrently; re-reading", store.description)
            continue
        log.info("stored new webhook certificates in %s: %s", store.description,
                 "; ".join(plan.reasons))
        # Trust exactly what was stored (drops a CA a losing writer may have injected).
        injected += await _inject_all(targets, webhook_configs, renewed.trusted_cas)
        return EnsureOutcome(renewed, plan, stored=True, injected=tuple(dict.fromkeys(injected)))
    raise CertificateError(
        f"{store.description} kept changing while FluxUp tried to store certificates "
        f"({attempts} attempts); another process is rewriting it — stop it and retry"
    )
