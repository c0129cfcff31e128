"""Review of ``source.toolkit.fluxcd.io`` OCIRepositories (v1, v1beta2).

A HelmRelease with ``spec.chartRef`` gets its chart from an OCIRepository; holding the
OCIRepository (``spec.suspend``) stops source-controller from fetching the new chart.
The identity is ``spec.ref.digest`` or ``spec.ref.tag``; ``spec.ref.semver`` and the
floating ``latest`` are never held. Deployed comes from ``status.artifact.revision`` or
``fluxup.dev/released``. Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from fluxup.api.admission import AdmissionRequest
from fluxup.logic.identity import GatedKind
from webhook.reviews.base import GatePolicy, Reviewed, Stage
from webhook.reviews.gated import review_gated

__all__ = ["GROUP", "KIND", "VERSIONS", "review"]

GROUP: Final = "source.toolkit.fluxcd.io"
KIND: Final = "OCIRepository"
VERSIONS: Final = ("v1", "v1beta2")


def review(
    request: AdmissionRequest, stage: Stage, policy: GatePolicy, now: dt.datetime
) -> Reviewed:
    """Gate one OCIRepository admission request."""
    return review_gated(GatedKind.OCI_REPOSITORY, request, stage, policy, now)
