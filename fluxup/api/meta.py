"""Shapes shared by FluxUp's kinds: object metadata, references, identities, workloads.

Like Flux's ``apis/meta`` package: the kind modules (:mod:`~fluxup.api.managedapp`,
:mod:`~fluxup.api.upgraderequest`, :mod:`~fluxup.api.rollbackrequest`) compose these, and
the CRDs in ``crds/`` spell the same shapes out in OpenAPI. Pure frozen dataclasses; no
I/O, no behaviour beyond small derived values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "Identity",
    "ImageTag",
    "LocalObjectReference",
    "NamespacedObjectReference",
    "ObjectMeta",
    "WorkloadKind",
    "WorkloadReference",
    "WorkloadReplicas",
]


@dataclass(frozen=True)
class ObjectMeta:
    """The parts of ``metadata`` FluxUp reads; the rest is ignored when parsing."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LocalObjectReference:
    """A reference to an object in the referrer's own namespace."""

    name: str


@dataclass(frozen=True)
class NamespacedObjectReference:
    """A reference to an object; ``namespace`` defaults to one the referrer documents."""

    name: str
    namespace: str | None = None

    def namespace_or(self, default: str) -> str:
        """The referenced namespace, or ``default`` when the reference leaves it out."""
        return self.namespace or default


@dataclass(frozen=True)
class ImageTag:
    """An image tag at a value path of a HelmRelease's ``spec.values``.

    ``values_path`` is dotted (``image.tag``); ``tag`` is the value there, an OCI tag
    optionally pinned with ``@sha256:<digest>``; ``name`` is the image repository, for
    display (``ghcr.io/example/app``).
    """

    values_path: str
    tag: str
    name: str | None = None


@dataclass(frozen=True)
class Identity:
    """What the admission gate compares: the release's chart version and image tags.

    ``version`` is the chart version (``spec.chart.spec.version``) or, for a HelmRelease
    using ``spec.chartRef``, the OCIRepository tag. ``images`` are the tags at the value
    paths the ManagedApp names.
    """

    version: str | None = None
    images: tuple[ImageTag, ...] = ()


class WorkloadKind(enum.StrEnum):
    """Kinds of workloads FluxUp scales down (quiesce, rollback) and health-checks."""

    DEPLOYMENT = "Deployment"
    STATEFUL_SET = "StatefulSet"


@dataclass(frozen=True)
class WorkloadReference:
    """A Deployment or StatefulSet; ``namespace`` defaults to the HelmRelease's workloads'."""

    kind: WorkloadKind
    name: str
    namespace: str | None = None


@dataclass(frozen=True)
class WorkloadReplicas:
    """A workload FluxUp scaled to zero and the replica count to give back to it."""

    kind: WorkloadKind
    name: str
    namespace: str
    replicas: int
