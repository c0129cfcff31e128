"""Pure admission reviews, one module per kind, and the dispatch from a request to them.

:func:`review` routes an :class:`~fluxup.api.admission.AdmissionRequest` by its kind's
group and name to :mod:`.helmrelease`, :mod:`.ocirepository` or :mod:`.fluxup_objects`;
kinds FluxUp does not gate are allowed unchanged. It never raises for any request the
envelope parser accepted. Imports only ``fluxup.api`` and ``fluxup.logic``.
"""

from __future__ import annotations

import datetime as dt

from fluxup.api.admission import AdmissionRequest
from webhook.reviews import fluxup_objects, helmrelease, ocirepository
from webhook.reviews.base import GatePolicy, Review, Reviewed, Stage, allow

__all__ = ["GatePolicy", "Reviewed", "Stage", "review"]

_ROUTES: dict[tuple[str, str], Review] = {
    (helmrelease.GROUP, helmrelease.KIND): helmrelease.review,
    (ocirepository.GROUP, ocirepository.KIND): ocirepository.review,
    **{(fluxup_objects.GROUP, kind): fluxup_objects.review for kind in fluxup_objects.KINDS},
}


def review(
    request: AdmissionRequest, stage: Stage, policy: GatePolicy, now: dt.datetime
) -> Reviewed:
    """Decide one admission request at ``stage`` (``mutate`` or ``validate``)."""
    gvk = request["kind"]
    route = _ROUTES.get((gvk["group"], gvk["kind"]))
    if route is None:
        return allow(request, "not-gated")
    return route(request, stage, policy, now)
