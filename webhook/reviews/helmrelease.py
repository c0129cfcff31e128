"""Review of ``helm.toolkit.fluxcd.io`` HelmReleases (v2, v2beta2, v2beta1).

The identity is the chart version (``spec.chart.spec.version``; with ``spec.chartRef``
the chart is gated on the referenced OCIRepository) plus image tags at the value paths in
``fluxup.dev/image-paths``; deployed comes from ``status.history[0]``
(v2/v2beta2), ``status.lastAppliedRevision`` (v2beta1) or ``fluxup.dev/released``. The
field names are the same in every served version, so one review serves them all. Pure.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from fluxup.api.admission import AdmissionRequest
from fluxup.logic.identity import GatedKind
from webhook.reviews.base import GatePolicy, Reviewed, Stage
from webhook.reviews.gated import review_gated

__all__ = ["GROUP", "KIND", "VERSIONS", "review"]

GROUP: Final = "helm.toolkit.fluxcd.io"
KIND: Final = "HelmRelease"
VERSIONS: Final = ("v2", "v2beta2", "v2beta1")


def review(
    request: AdmissionRequest, stage: Stage, policy: GatePolicy, now: dt.datetime
) -> Reviewed:
    """Gate one HelmRelease admission request."""
    return review_gated(GatedKind.HELM_RELEASE, request, stage, policy, now)
