"""The names of FluxUp's API: group, version, kinds, plurals, short names, category.

Shared by the operator (watches, status writes), the UI (API calls) and the webhook
(which kinds it validates). They must agree with the CRDs in ``crds/``;
``tests/api/test_models.py`` checks that they do. Pure constants; labels and annotations
live in :mod:`fluxup.api.annotations`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "MANAGED_APP",
    "OPERATOR_USERNAME",
    "ROLLBACK_REQUEST",
    "UPGRADE_REQUEST",
    "VERSION",
    "WEBHOOK_PORT",
    "Kind",
]

#: The Kubernetes user the shipped manifests run the operator as (its ServiceAccount);
#: the default of every setting that names it.
OPERATOR_USERNAME: Final = "system:serviceaccount:fluxup-system:fluxup-operator"

#: The webhook's HTTPS port in the shipped manifests (behind Service port 443); the
#: default of both ways to start it.
WEBHOOK_PORT: Final = 9443

#: The API group of every FluxUp custom resource.
GROUP: Final = "fluxup.dev"

#: The one served (and stored) version.
VERSION: Final = "v1alpha1"

#: ``apiVersion`` of FluxUp objects.
API_VERSION: Final = f"{GROUP}/{VERSION}"

#: ``kubectl get fluxup`` lists every FluxUp object in a namespace.
CATEGORY: Final = "fluxup"


@dataclass(frozen=True)
class Kind:
    """The names under which Kubernetes knows one FluxUp kind."""

    kind: str
    plural: str
    short_name: str

    @property
    def singular(self) -> str:
        """Singular resource name, e.g. ``managedapp``."""
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        """``metadata.name`` of the CustomResourceDefinition, e.g. ``managedapps.fluxup.dev``."""
        return f"{self.plural}.{GROUP}"


#: An application FluxUp manages: its HelmRelease, volumes and upgrade policy.
MANAGED_APP: Final = Kind("ManagedApp", "managedapps", "fma")

#: One upgrade of one ManagedApp, from any origin; a resumable state machine.
UPGRADE_REQUEST: Final = Kind("UpgradeRequest", "upgraderequests", "fur")

#: One rollback of an upgrade: restore volumes from snapshots and revert Git.
ROLLBACK_REQUEST: Final = Kind("RollbackRequest", "rollbackrequests", "frr")
